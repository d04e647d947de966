#!/usr/bin/env python3
"""Render the README's option table from the code, with oslo-config-generator.

The table in README.rst sits between the two marker comments below and is
never edited by hand::

    python tools/gen_options_table.py --write README.rst   # regenerate
    python tools/gen_options_table.py --check README.rst   # exit 1 on drift

The data comes from ``oslo-config-generator --namespace datera_glance
--format json``, the same generator and entry point that render the sample
configuration, so the table says what glance-api will actually accept.
"""

import argparse
import json
import subprocess
import sys
import textwrap

BEGIN = '.. BEGIN GENERATED OPTIONS TABLE (tools/gen_options_table.py)'
END = '.. END GENERATED OPTIONS TABLE'


def generator_data(namespace='datera_glance'):
    """The generator's machine-readable description of the options."""
    out = subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator',
         '--namespace', namespace, '--format', 'json'],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _default(opt):
    value = opt['default']
    if value is None or value == '':
        return '(unset)'
    if isinstance(value, bool):
        return '``%s``' % str(value).lower()
    return '``%s``' % value


def _summary(opt):
    """The help's prose (up to "Possible values"), and the choices."""
    paragraphs = []
    for paragraph in opt['help'].strip().split('\n\n'):
        if paragraph.startswith(('Possible values', 'Related options')):
            break
        paragraphs.append(' '.join(paragraph.split()))
    text = ' '.join(paragraphs).replace('REQUIRED.', '**Required.**')
    if opt['choices']:
        text += ' One of: %s.' % ', '.join(
            '``%s``' % choice[0] for choice in opt['choices'])
    return text


def render(data=None):
    """The option table as reStructuredText, markers included."""
    data = data or generator_data()
    lines = [BEGIN, '', '.. list-table::', '   :header-rows: 1',
             '   :widths: 30 12 18 40', '',
             '   * - Option', '     - Type', '     - Default',
             '     - Meaning']
    for group, content in data['options'].items():
        for opt in content['opts']:
            lines += [
                '   * - ``%s``' % opt['name'],
                '     - %s' % opt['type'].replace(' value', ''),
                '     - %s' % _default(opt),
            ]
            wrapped = textwrap.wrap(_summary(opt), 66, break_long_words=False,
                                    break_on_hyphens=False)
            lines.append('     - ' + wrapped[0])
            lines += ['       ' + w for w in wrapped[1:]]
    lines += ['', END]
    return '\n'.join(lines)


def replace_block(text, table):
    """``text`` with the generated block replaced by ``table``."""
    try:
        start = text.index(BEGIN)
        end = text.index(END, start) + len(END)
    except ValueError:
        raise SystemExit('the README has no generated-table markers')
    return text[:start] + table + text[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--write', metavar='README',
                       help='replace the table in this file')
    group.add_argument('--check', metavar='README',
                       help='exit 1 when the table in this file is stale')
    args = parser.parse_args(argv)
    table = render()
    path = args.write or args.check
    if not path:
        print(table)
        return 0
    with open(path) as f:
        text = f.read()
    updated = replace_block(text, table)
    if args.check:
        if updated != text:
            sys.stderr.write('%s: the option table differs from the code; '
                             'run python tools/gen_options_table.py '
                             '--write %s\n' % (path, path))
            return 1
        return 0
    if updated != text:
        with open(path, 'w') as f:
            f.write(updated)
    return 0


if __name__ == '__main__':
    sys.exit(main())
