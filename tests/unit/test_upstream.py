#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The upstream series generator's pure parts (tools/upstream).

The series itself (``git am`` onto the pinned sdists, glance_store's and
glance's own test runners and flake8) is checked by ``make
upstream-check``; these tests need neither the network nor the sdists.
"""

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

from tools.upstream import driver
from tools.upstream import glance_store_series
from tools.upstream import sdist
from tools.upstream import transform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, 'datera_glance')
ROOTWRAP = os.path.join(ROOT, driver.ROOTWRAP_SOURCE)
MAP = driver.MODULE_MAP


@pytest.fixture(scope='module')
def generated():
    """The in-tree driver generated from this checkout."""
    return driver.build(SOURCE, ROOTWRAP)


def _dedent(text):
    return textwrap.dedent(text).lstrip('\n')


# -- import rewriting ---------------------------------------------------------

@pytest.mark.parametrize('before, after', [
    ('from datera_glance.i18n import _\n',
     'from glance_store.i18n import _\n'),
    ('from datera_glance import attach\n',
     'from glance_store._drivers.datera import attach\n'),
    ('from datera_glance.edf import client\n',
     'from glance_store._drivers.datera.edf import client\n'),
    ('import datera_glance.store\n',
     'import glance_store._drivers.datera.store\n'),
    ('see :mod:`datera_glance.lifecycle`.',
     'see :mod:`glance_store._drivers.datera.lifecycle`.'),
    ("PrivContext('datera_glance', pypath=x)",
     "PrivContext('glance_store._drivers.datera', pypath=x)"),
    # Option names and other words that merely start the same stay.
    ("conf.datera_glance_rootwrap_path", "conf.datera_glance_rootwrap_path"),
    ("cfg_section='datera_glance_privileged'",
     "cfg_section='datera_glance_privileged'"),
    ('my_datera_glance.x', 'my_datera_glance.x'),
    ('other.datera_glance.x', 'other.datera_glance.x'),
])
def test_rename_modules(before, after):
    assert transform.rename_modules(before, MAP) == after


def test_rename_prefers_the_longest_prefix():
    text = 'datera_glance.i18n.x datera_glance.i18nx'
    assert transform.rename_modules(text, MAP) == (
        'glance_store.i18n.x glance_store._drivers.datera.i18nx')


@pytest.mark.parametrize('line, key', [
    ('from glance_store import exceptions',
     'glance_store.exceptions'),
    ('from glance_store._drivers.datera import edf',
     'glance_store._drivers.datera.edf'),
    ('from glance_store.i18n import _', 'glance_store.i18n._'),
    # hacking leaves these unchecked; the module sorts them.
    ('from glance_store.i18n import _, _LE', 'glance_store.i18n'),
    ('import glance_store.location', 'glance_store.location'),
    ('from a import b as c', 'a.b'),
])
def test_import_sort_key_is_hackings(line, key):
    assert transform.import_sort_key(line) == key


def test_regroup_imports():
    text = _dedent('''
        """Doc."""

        import os

        from glance_store import exceptions
        # a comment about oslo
        from oslo_config import cfg

        from glance_store.i18n import _
        from glance_store._drivers.datera import names

        LOG = 1
        from glance_store import later  # not in the import block
    ''')
    assert transform.regroup_imports(text) == _dedent('''
        """Doc."""

        import os

        # a comment about oslo
        from oslo_config import cfg

        from glance_store._drivers.datera import names
        from glance_store import exceptions
        from glance_store.i18n import _

        LOG = 1
        from glance_store import later  # not in the import block
    ''')


def test_regroup_leaves_modules_without_package_imports_alone():
    text = 'import os\n\nx = os\n'
    assert transform.regroup_imports(text) == text


def test_drop_unused_imports_keeps_noqa():
    text = _dedent('''
        import os
        import socket
        # why operator is imported
        import operator
        from dfs_sdk import api  # noqa: F401

        x = os.sep
    ''')
    assert transform.drop_unused_imports(text) == _dedent('''
        import os
        from dfs_sdk import api  # noqa: F401

        x = os.sep
    ''')


# -- checked edits ------------------------------------------------------------

MODULE = _dedent('''
    """Doc."""

    import re

    _RE = re.compile('x')


    def kept():
        return 1


    # Says what goes.
    @decorator
    def goes():
        return 2


    class Thing(object):

        def method(self, conf):
            a = 1

            if conf.local:
                a = 2
            # about b
            b = 3
            return a + b


    OPTS = [
        cfg.StrOpt('one',
                   help='1'),
        cfg.StrOpt('two', help='2'),
        cfg.StrOpt('three'),
    ]
''')


def test_replace_must_find_the_text_exactly_once():
    assert transform.Replace('kept', 'stays', 2).apply(
        'kept kept', 'm.py') == 'stays stays'
    with pytest.raises(transform.TransformError,
                       match=r'm.py: Replace.*found the text 0 times'):
        transform.Replace('absent', 'x').apply(MODULE, 'm.py')
    with pytest.raises(transform.TransformError, match='found the text 2'):
        transform.Replace('return', 'x').apply('return return', 'm.py')


def test_drop_definition_takes_decorators_and_comments():
    text = transform.DropDefinition('goes').apply(MODULE, 'm.py')
    assert 'goes' not in text and 'Says what goes' not in text
    assert '    return 1\n\n\nclass Thing(object):' in text
    compile(text, 'm.py', 'exec')


def test_drop_definition_of_an_assignment():
    text = transform.DropDefinition('_RE').apply(MODULE, 'm.py')
    assert '_RE' not in text
    assert 'import re\n\n\ndef kept' in text


def test_drop_definition_must_find_one():
    with pytest.raises(transform.TransformError, match='found 0'):
        transform.DropDefinition('absent').apply(MODULE, 'm.py')


def test_drop_statement_in_a_method():
    text = transform.DropStatement('Thing.method', 'if conf.local').apply(
        MODULE, 'm.py')
    assert ('        a = 1\n\n        # about b\n'
            '        b = 3\n') in text
    assert 'conf.local' not in text
    with pytest.raises(transform.TransformError, match='found 0'):
        transform.DropStatement('Thing.method', 'if other').apply(
            MODULE, 'm.py')


def test_drop_list_item():
    text = transform.DropListItem('OPTS', ('one', 'three')).apply(
        MODULE, 'm.py')
    assert text.endswith("OPTS = [\n    cfg.StrOpt('two', help='2'),\n]\n")
    with pytest.raises(transform.TransformError, match="items named 'four'"):
        transform.DropListItem('OPTS', ('four',)).apply(MODULE, 'm.py')


def test_reflow_wraps_comments_and_docstrings_only():
    long_words = ' '.join(['word'] * 20)
    text = _dedent('''
        def f():
            """Summary.

            %s
            more.
            """
            # %s
            return 1
    ''' % (long_words, long_words))
    out = transform.reflow_long_lines(text)
    assert all(len(line) <= transform.MAX_LINE
               for line in out.splitlines())
    assert (' '.join(out.replace('#', '').split()) ==
            ' '.join(text.replace('#', '').split()))
    assert out.count('    # word') == 2
    with pytest.raises(transform.TransformError, match='not in a comment'):
        transform.reflow_long_lines('x = "%s"\n' % long_words)


def test_validate_reports_pyflakes_and_long_lines():
    with pytest.raises(transform.TransformError) as e:
        transform.validate('import os\nx = "%s"\n' % ('y' * 80), 'm.py')
    assert "m.py:1: 'os' imported but unused" in str(e.value)
    assert 'm.py:2: longer than 79 columns' in str(e.value)


# -- the in-tree driver -------------------------------------------------------

def test_every_module_goes_in_tree_but_the_excluded(generated):
    modules = {path[len(driver.TARGET_DIR) + 1:] for path in generated
               if path.startswith(driver.TARGET_DIR)}
    assert 'store.py' in modules and 'edf/client.py' in modules
    for rel in driver.source_modules(SOURCE):
        assert rel in modules
    for left_out in ('i18n.py', 'inventory.py', 'cmd/manage.py',
                     'cmd/__init__.py'):
        assert left_out not in modules
        assert os.path.exists(os.path.join(SOURCE, left_out))


def test_no_reference_to_the_package_is_left(generated):
    for path, text in generated.items():
        words = re.findall(r'\bdatera_glance\w*', text)
        assert set(words) <= {'datera_glance_rootwrap_path',
                              'datera_glance_rootwrap_config',
                              'datera_glance_privileged'}, path


def test_the_local_transport_stays_out(generated):
    options = generated['%s/options.py' % driver.TARGET_DIR]
    names = driver.option_names(generated)
    for name in driver.LEFT_OUT_OPTIONS:
        assert name not in names
        assert name not in options
    assert 'datera_san_ip' in names
    code = '\n'.join(generated.values())
    for word in ('LocalTransport', 'local_export_dir', "'local'",
                 'allow_default_store', 'simulator'):
        assert word not in code


def test_the_store_imports_without_the_extra(generated):
    store = generated['%s/store.py' % driver.TARGET_DIR]
    assert ('try:\n'
            '    from glance_store._drivers.datera import attach\n'
            '    from glance_store._drivers.datera import edf\n'
            'except ImportError:\n') in store
    assert 'pip install glance_store[datera]' in store


def test_rootwrap_filters_name_the_in_tree_context(generated):
    filters = generated[driver.ROOTWRAP_TARGET]
    assert ('--privsep_context, '
            'glance_store._drivers.datera.privileged.device_access,'
            in filters)
    assert all(len(line) <= 79 for line in filters.splitlines()
               if line.startswith('#'))


def test_generated_modules_pass_glance_stores_flake8(generated, tmp_path):
    """flake8 and hacking with glance_store's [flake8] settings."""
    for path, text in generated.items():
        if path.endswith('.py'):
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(text)
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--isolated',
         '--ignore=H301,H404,H405,W503,W504', 'glance_store'],
        cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_change_of_the_driver_shows_up(tmp_path):
    source = tmp_path / 'datera_glance'
    shutil.copytree(SOURCE, source,
                    ignore=shutil.ignore_patterns('__pycache__'))
    stream = source / 'stream.py'
    stream.write_text(stream.read_text().replace(
        'MAX_GROW_STEP_GIB = 8', 'MAX_GROW_STEP_GIB = 16'))
    before = driver.build(SOURCE)
    after = driver.build(str(source))
    changed = [path for path in before if before[path] != after[path]]
    assert changed == ['%s/stream.py' % driver.TARGET_DIR]
    assert 'MAX_GROW_STEP_GIB = 16' in after[changed[0]]


def test_an_edit_that_no_longer_fits_stops_the_generator(tmp_path):
    source = tmp_path / 'datera_glance'
    shutil.copytree(SOURCE, source,
                    ignore=shutil.ignore_patterns('__pycache__'))
    store = source / 'store.py'
    store.write_text(store.read_text().replace(
        'options.allow_default_store()', 'options.allow_default_store(1)'))
    with pytest.raises(transform.TransformError,
                       match=r'datera_glance/store.py: DropStatement'):
        driver.build(str(source))


# -- the series' edits of glance_store ---------------------------------------

SDIST_SETUP_CFG = (
    '[entry_points]\n'
    'glance_store.drivers = \n'
    '\ts3 = glance_store._drivers.s3:Store\n'
    '\t\n'
    '[extras]\n'
    's3 = \n'
    '\tboto3>=1.9.199 # Apache-2.0\n'
    '\n')

# glance_store's git tree: spaces, and no blank after '='.
GIT_SETUP_CFG = SDIST_SETUP_CFG.replace('\t', '    ')
GIT_SETUP_CFG = GIT_SETUP_CFG.replace(' = \n', ' =\n')


@pytest.mark.parametrize('text', [SDIST_SETUP_CFG, GIT_SETUP_CFG])
def test_setup_cfg_edits_keep_its_indentation(text):
    indent = '\t' if '\t' in text else '    '
    out = glance_store_series._insert_after_line(
        text, re.escape('s3 = glance_store._drivers.s3:Store'),
        ['datera = glance_store._drivers.datera.store:Store'], 'setup.cfg')
    assert ('%ss3 = glance_store._drivers.s3:Store\n'
            '%sdatera = glance_store._drivers.datera.store:Store\n'
            % (indent, indent)) in out
    out = glance_store_series._add_extra(out, 'datera', ['a>=1', 'b>=2'],
                                         'setup.cfg')
    assert ('boto3>=1.9.199 # Apache-2.0\ndatera =\n%sa>=1\n%sb>=2\n'
            % (indent, indent)) in out


def test_insert_after_line_must_match_once():
    with pytest.raises(transform.TransformError, match='0 lines match'):
        glance_store_series._insert_after_line('x\n', 'y', ['z'], 'f')


def test_release_note_name_is_stable():
    path = glance_store_series.release_note_path()
    assert path == glance_store_series.release_note_path()
    assert re.fullmatch(r'releasenotes/notes/add-datera-store-driver-'
                        r'[0-9a-f]{16}\.yaml', path)


def test_user_guide_lists_the_in_tree_options(generated):
    page = glance_store_series.user_guide(generated)
    for name in driver.option_names(generated):
        assert '   * - ``%s``' % name in page
    assert 'datera_transport' not in page
    assert '``7718``' in page
    assert all(len(line) <= 79 for line in page.splitlines())


# -- sdists ---------------------------------------------------------------

def test_pinned_version(tmp_path):
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('glance==33.0.0\nglance_store==5.7.0  # x\n')
    assert sdist.pinned_version(str(constraints), 'glance-store') == '5.7.0'
    assert sdist.pinned_version(str(constraints), 'glance') == '33.0.0'
    with pytest.raises(LookupError):
        sdist.pinned_version(str(constraints), 'nova')


def test_the_project_pins_both_sdists():
    constraints = os.path.join(ROOT, 'constraints.txt')
    assert sdist.pinned_version(constraints, 'glance_store')
    assert sdist.pinned_version(constraints, 'glance')


def _tarball(path, names):
    with tarfile.open(path, 'w:gz') as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b'x'))


def test_unpack(tmp_path):
    archive = str(tmp_path / 'p-1.0.tar.gz')
    _tarball(archive, ['p-1.0/setup.cfg', 'p-1.0/p/__init__.py'])
    tree = sdist.unpack(archive, str(tmp_path / 'out'))
    assert tree == str(tmp_path / 'out' / 'p-1.0')
    assert os.path.isfile(os.path.join(tree, 'p', '__init__.py'))


@pytest.mark.parametrize('names', [
    ['p-1.0/../../evil'], ['/etc/evil'], ['p-1.0/a', 'q-1.0/b']])
def test_unpack_refuses_members_outside_one_folder(tmp_path, names):
    archive = str(tmp_path / 'p-1.0.tar.gz')
    _tarball(archive, names)
    with pytest.raises(RuntimeError, match='unexpected member'):
        sdist.unpack(archive, str(tmp_path / 'out'))
