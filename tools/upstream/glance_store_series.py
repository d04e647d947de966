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

"""The glance_store series: the Datera store in-tree, in four commits.

1. the driver package, generated from ``datera_glance``
   (:func:`tools.upstream.driver.build`), and its rootwrap filters;
2. its registration: the ``glance_store.drivers`` entry points (and the
   legacy ``glance.store.datera.Store`` name, as every driver has one),
   ``'datera'`` among ``default_store``'s choices, the ``datera`` extra,
   dfs_sdk in the test requirements and the options in ``test_opts.py``;
3. unit tests in glance_store's style (``tests/unit/datera/``, from the
   templates folder);
4. documentation: the driver table with its maintainer, a user guide
   page whose option table comes from the options, and a release note.

Each commit is a function of the tree as the previous commits left it,
returning ``{path: new text}``; every edit of an existing glance_store
file is checked (:class:`tools.upstream.transform.Replace`), so that a
glance_store release that no longer fits stops the generator.
"""

import hashlib
import os
import re
import textwrap

from tools.upstream import driver
from tools.upstream import transform

PROJECT = 'glance_store'
_HERE = os.path.dirname(os.path.abspath(__file__))
#: Files the series adds as they are (the unit tests).
TEMPLATES = os.path.join(_HERE, 'templates', PROJECT)
#: The user guide page (its option table is filled in) and release note.
DOC_TEMPLATES = os.path.join(_HERE, 'templates', 'glance_store_docs')
RELEASE_NOTE_SLUG = 'add-datera-store-driver'
DOC_PAGE = 'doc/source/user/datera.rst'

#: The datera extra: what the driver imports beyond glance_store's own
#: requirements (os-brick and oslo.privsep with the cinder extra's bounds).
EXTRA_REQUIREMENTS = [
    'dfs_sdk>=1.2.27 # Apache-2.0',
    'os-brick>=6.3.0 # Apache-2.0',
    'oslo.privsep>=1.23.0 # Apache-2.0',
    'oslo.rootwrap>=5.8.0 # Apache-2.0',
    'tenacity>=6.3.1 # Apache-2.0',
]


def _read(tree, path):
    with open(os.path.join(tree, path)) as f:
        return f.read()


def _replace(text, old, new, where):
    return transform.Replace(old, new).apply(text, where)


def _insert_after_line(text, pattern, new_lines, where):
    """Insert lines after the one line matching pattern, same indentation.

    setup.cfg in an sdist is indented with tabs (setuptools rewrites it),
    in glance_store's git tree with spaces: the new lines take the
    indentation of the line they follow.
    """
    matches = list(re.finditer(r'^([ \t]*)%s[ \t]*\n' % pattern, text,
                               re.M))
    if len(matches) != 1:
        raise transform.TransformError(
            '%s: %d lines match %r, expected 1' % (where, len(matches),
                                                   pattern))
    match = matches[0]
    indent = match.group(1)
    block = ''.join('%s%s\n' % (indent, line) for line in new_lines)
    return text[:match.end()] + block + text[match.end():]


def _add_extra(text, name, requirements, where):
    """Add an [extras] entry after s3's, indented the way s3's is.

    (Without the blank after ``=`` that setuptools leaves in an sdist's
    setup.cfg: it is trailing whitespace to git.)
    """
    matches = list(re.finditer(r'^s3 =[ \t]*\n([ \t]+)boto3>=[^\n]*\n',
                               text, re.M))
    if len(matches) != 1:
        raise transform.TransformError('%s: no single s3 extra' % where)
    match = matches[0]
    block = '%s =\n' % name + ''.join(
        '%s%s\n' % (match.group(1), line) for line in requirements)
    return text[:match.end()] + block + text[match.end():]


def release_note_path():
    """reno's ``<slug>-<16 hex>.yaml``, the same on every run."""
    digest = hashlib.sha1(RELEASE_NOTE_SLUG.encode()).hexdigest()[:16]
    return 'releasenotes/notes/%s-%s.yaml' % (RELEASE_NOTE_SLUG, digest)


# -- commit 1: the driver -----------------------------------------------------

def driver_files(source_root):
    """The generated driver package and rootwrap filters file."""
    return driver.build(os.path.join(source_root, driver.SOURCE_PACKAGE),
                        os.path.join(source_root, driver.ROOTWRAP_SOURCE))


def commit_driver(tree, driver_files):
    return dict(driver_files)


# -- commit 2: registration ---------------------------------------------------

def commit_registration(tree, driver_files):
    files = {}
    where = 'setup.cfg'
    text = _read(tree, where)
    text = _insert_after_line(
        text, re.escape('s3 = glance_store._drivers.s3:Store'),
        ['datera = glance_store._drivers.datera.store:Store'], where)
    text = _insert_after_line(
        text, re.escape('glance.store.s3.Store = glance_store._drivers.s3:'
                        'Store'),
        ['glance.store.datera.Store = '
         'glance_store._drivers.datera.store:Store'], where)
    text = _insert_after_line(
        text, re.escape('etc/glance/rootwrap.d/glance_cinder_store.filters'),
        [driver.ROOTWRAP_TARGET], where)
    files[where] = _add_extra(text, 'datera', EXTRA_REQUIREMENTS, where)

    where = 'glance_store/backend.py'
    text = _read(tree, where)
    text = _replace(text, "'cinder', 'vsphere', 's3'),\n",
                    "'cinder', 'vsphere', 's3', 'datera'),\n", where)
    text = _replace(text, '\n        * s3\n',
                    '\n        * s3\n        * datera\n', where)
    text = _replace(text, '\n    * s3\n', '\n    * s3\n    * datera\n', where)
    files[where] = text

    where = 'test-requirements.txt'
    files[where] = _insert_after_line(
        _read(tree, where), re.escape('boto3>=') + r'[^\n]*',
        [EXTRA_REQUIREMENTS[0]], where)

    where = 'glance_store/tests/unit/test_opts.py'
    names = driver.option_names(driver_files)
    files[where] = _insert_after_line(
        _read(tree, where), re.escape("'cinder_attachment_retry_attempts',"),
        ["'%s'," % name for name in names], where)
    return files


# -- commit 3: tests ----------------------------------------------------------

def template_files(project_templates):
    """{path: text} of every file under a templates folder."""
    files = {}
    for folder, dirs, names in os.walk(project_templates):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in sorted(names):
            if name.endswith('.pyc'):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, project_templates)
            with open(path) as f:
                files[rel.replace(os.sep, '/')] = f.read()
    return files


def commit_tests(tree, driver_files):
    return template_files(TEMPLATES)


# -- commit 4: documentation --------------------------------------------------

def _option_rows(driver_files):
    """(name, type, default, summary) of the in-tree options."""
    from datera_glance import options

    by_name = {opt.name: opt for opt in options.OPTIONS}
    rows = []
    for name in driver.option_names(driver_files):
        opt = by_name[name]
        kind = type(opt.type).__name__.replace('String', 'string').lower()
        default = opt.default
        if default is None:
            default = '(unset)'
        elif isinstance(default, bool):
            default = str(default).lower()
        summary = ' '.join(opt.help.strip().split('\n\n')[0].split())
        rows.append((name, kind, '``%s``' % default
                     if default != '(unset)' else default, summary))
    return rows


def _list_table(rows):
    lines = ['.. list-table::', '   :header-rows: 1',
             '   :widths: 30 10 20 40', '',
             '   * - Option', '     - Type', '     - Default',
             '     - Description']
    for name, kind, default, summary in rows:
        lines.append('   * - ``%s``' % name)
        lines.append('     - %s' % kind)
        lines.append('     - %s' % default)
        wrapped = textwrap.wrap(summary, 72)
        lines.append('     - %s' % wrapped[0])
        lines.extend('       %s' % line for line in wrapped[1:])
    return '\n'.join(lines) + '\n'


def user_guide(driver_files):
    """doc/source/user/datera.rst, with the option table."""
    with open(os.path.join(DOC_TEMPLATES, 'datera.rst')) as f:
        page = f.read()
    return page.replace('.. OPTIONS TABLE\n',
                        _list_table(_option_rows(driver_files)))


def commit_docs(tree, driver_files, maintainer):
    files = {}
    name, email = maintainer
    where = 'doc/source/user/drivers.rst'
    text = _read(tree, where)
    files[where] = _replace(
        text, '     - nao-shark\n',
        '     - nao-shark\n'
        '   * - Datera EDF\n'
        '     - Supported\n'
        '     - %s\n'
        '     - %s\n'
        '     -\n' % (name, email), where)
    where = 'doc/source/user/index.rst'
    files[where] = _replace(_read(tree, where), '   drivers\n',
                            '   drivers\n   datera\n', where)
    files[DOC_PAGE] = user_guide(driver_files)
    with open(os.path.join(DOC_TEMPLATES, 'release-note.yaml')) as f:
        files[release_note_path()] = f.read()
    return files


# -- the series ---------------------------------------------------------------

COMMITS = [
    ('Add a Datera EDF store driver', """\
Add glance_store._drivers.datera, a store that keeps each image in an
app instance of a Datera EDF cluster and moves the data over iSCSI
with os-brick, as the cinder store does, with oslo.privsep for the
privileged steps (etc/glance/rootwrap.d/glance_datera_store.filters).

The store reads with offset and length, takes images of unknown size
(the volume grows while the data arrives), writes all-zero buffers
only when asked to (datera_thin_provisioning), records the image's
length, checksum, multihash and per-chunk digests in the app
instance's metadata and checks reads against them. Location URIs keep
the form of the original out-of-tree Datera driver
(datera://<san ip>:<port>/app_instances/OS-IMAGE-<image id>), and its
images stay readable and deletable, as do its option names.

dfs_sdk and os-brick are optional: without them the store disables
itself, naming the datera extra. The store is registered in the next
change.

The code is generated from the datera-glance project's datera_glance
package (tools/upstream there), which is where its development and
functional tests against an EDF simulator happen.
""", commit_driver),
    ('Register the Datera store', """\
Add the datera and glance.store.datera.Store entry points, 'datera'
among the choices of the deprecated default_store option, a datera
extra (dfs_sdk and the os-brick, oslo.privsep, oslo.rootwrap and
tenacity it uses), the rootwrap filters to the data files, dfs_sdk to
the test requirements and the store's options to test_opts.
""", commit_registration),
    ('Add unit tests for the Datera store', """\
Single and multi store tests with the Datera REST client
(edf.EdfClient) and os-brick's iSCSI connector faked: a file per
volume stands for the LUN, so the store's own attach, write, read and
lifecycle code runs. They cover add of known and unknown size
(including a volume that grows), get with offset and length,
get_size, delete, NotFound, Duplicate, size mismatches, StorageFull,
configuration errors, the capability checks and location URI parsing.
""", commit_tests),
    ('Document the Datera store', """\
Add the Datera EDF store to the driver table with its maintainer, a
user guide page (installation, privileges, configuration, options)
and a release note.
""", commit_docs),
]


def commits(source_root, maintainer):
    """[(subject, body, function of the tree -> {path: text})]."""
    generated = driver_files(source_root)
    result = []
    for subject, body, make in COMMITS:
        if make is commit_docs:
            def make_files(tree, make=make):
                return make(tree, generated, maintainer)
        else:
            def make_files(tree, make=make):
                return make(tree, generated)
        result.append((subject, body, make_files))
    return result
