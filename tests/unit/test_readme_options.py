"""The README's option table is generated from the code and stays so."""

import os
import subprocess
import sys

from datera_glance import options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
README = os.path.join(ROOT, 'README.rst')
TOOL = os.path.join(ROOT, 'tools', 'gen_options_table.py')


def _table():
    with open(README) as f:
        text = f.read()
    start = text.index('.. BEGIN GENERATED OPTIONS TABLE')
    return text[start:text.index('.. END GENERATED OPTIONS TABLE', start)]


def test_readme_option_table_matches_the_code():
    result = subprocess.run([sys.executable, TOOL, '--check', README],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_readme_option_table_lists_every_option_with_its_default():
    table = _table()
    opts = [opt for _group, group_opts in options.list_opts()
            for opt in group_opts]
    assert opts
    for opt in opts:
        row = table.split('* - ``%s``' % opt.name, 1)
        assert len(row) == 2, '%s missing from README' % opt.name
        if opt.default not in (None, ''):
            default = (str(opt.default).lower()
                       if isinstance(opt.default, bool) else opt.default)
            assert '``%s``' % default in row[1].split('* - ')[0]
