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

"""``make upstream-check``: the series applied and tested as upstream would.

For glance_store and glance, in turn:

1. a fresh unpack of the pinned sdist (cached under build/upstream/cache)
   becomes a git repository, and ``git am`` applies the series;
2. the patched trees run from source in a virtualenv that *views* this
   project's one (:func:`make_view`): its site-packages holds links to
   every package of ``.venv`` except this project's own, glance_store
   and glance, whose patched trees come instead (glance_store with the
   egg-info pbr writes from its patched setup.cfg, so that its entry
   points, the Datera one among them, are what stevedore sees). No
   package is installed for the check beyond stestr and doc8, pinned in
   this project's test requirements;
3. each project's own runner, as its tox.ini runs it
   (``stestr run --slowest``), runs the unit tests the series adds and
   touches: glance_store's ``tests/unit/datera`` and ``test_opts``,
   glance's ``test_discovery_stores``;
4. flake8 with the project's own configuration (its tox.ini ``[flake8]``
   section, hacking and, for glance, its local checks) runs on every
   Python file the series adds or changes, and doc8 (glance_store's pep8
   environment) on its documentation; each series must add a release
   note in reno's format.

Every command is printed before it runs; the first failure stops the
check with its exit status.
"""

import fnmatch
import glob
import os
import shlex
import subprocess
import sys
import time

import yaml

from tools.upstream import sdist

#: What of the project's site-packages the view leaves out.
VIEW_EXCLUDES = (
    'datera_glance*', 'datera_edf_sim*', '__editable__*datera*',
    '__editable___datera*', 'glance_store', 'glance_store-*',
    'glance', 'glance-*',
)

#: pbr writes the egg-info only: no AUTHORS, ChangeLog or reno notes.
PBR_ENV = {'SKIP_GENERATE_AUTHORS': '1', 'SKIP_WRITE_GIT_CHANGELOG': '1',
           'SKIP_GENERATE_RENO': '1'}


class CheckFailed(Exception):
    """A step of the check failed; the message says which."""


def run(argv, cwd, env=None, capture=False):
    """Run a command, printed first; raise CheckFailed when it fails."""
    print('+ (cd %s && %s)' % (os.path.relpath(cwd),
                               ' '.join(shlex.quote(a) for a in argv)),
          flush=True)
    result = subprocess.run(argv, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if result.returncode:
        raise CheckFailed('%s exited %d' % (argv[0], result.returncode))
    return result.stdout


def make_view(project_python, view_dir, trees):
    """A virtualenv seeing the project's packages, but the patched trees.

    :returns: the view's python
    """
    subprocess.run([project_python, '-m', 'venv', '--without-pip',
                    '--clear', view_dir], check=True)
    source = subprocess.run(
        [project_python, '-c', 'import sysconfig; '
         'print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    python = os.path.join(view_dir, 'bin', 'python')
    target = subprocess.run(
        [python, '-c', 'import sysconfig; '
         'print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    for name in sorted(os.listdir(source)):
        if any(fnmatch.fnmatch(name, pattern) for pattern in VIEW_EXCLUDES):
            continue
        os.symlink(os.path.join(source, name), os.path.join(target, name))
    with open(os.path.join(target, 'zz-upstream-trees.pth'), 'w') as f:
        f.writelines(tree + '\n' for tree in trees)
    return python


def changed_files(tree, env, pattern):
    """Files the series adds or changes (not deletes) matching pattern."""
    out = sdist.git(tree, 'diff', '--name-only', '--diff-filter=AM',
                    'HEAD~%d' % _series_length(tree, env), 'HEAD',
                    env=env, capture=True)
    return [path for path in out.split() if fnmatch.fnmatch(path, pattern)]


def _series_length(tree, env):
    count = sdist.git(tree, 'rev-list', '--count', 'HEAD', env=env,
                      capture=True)
    return int(count) - 1       # all but the sdist baseline


def apply_series(paths, project, env):
    """A fresh pinned sdist tree with the project's series applied."""
    version = sdist.pinned_version(paths.constraints, project)
    tree = sdist.fresh_tree(project, version, paths.cache,
                            paths.work('check', project), paths.pip)
    patches = sorted(glob.glob(os.path.join(paths.patches(project),
                                            '*.patch')))
    if not patches:
        raise CheckFailed('no patches in %s: run make upstream'
                          % paths.patches(project))
    run(['git', 'am', '--quiet'] + patches, tree, env=env)
    print('git am: %d patches applied to %s %s' % (len(patches), project,
                                                   version), flush=True)
    return tree


def flake8(python, tree, files, env):
    """flake8 from tree, so that its tox.ini [flake8] settings apply."""
    if files:
        run([python, '-m', 'flake8'] + files, tree, env=env)
        print('flake8: %d files clean' % len(files), flush=True)


#: stestr's workers: the view's interpreter, and oslotest's logging
#: captured (shown for failed tests only).
def _test_env(env, python):
    return dict(env, PYTHON=python, OS_LOG_CAPTURE='1')


def check_glance_store(paths, python, tree, env):
    test_env = dict(_test_env(env, python), **PBR_ENV)
    test_env['PBR_VERSION'] = sdist.pinned_version(paths.constraints,
                                                   'glance_store')
    # The patched setup.cfg's entry points, as an install would see them.
    run([python, 'setup.py', '--quiet', 'egg_info'], tree, env=test_env)
    run([python, '-m', 'stestr', '--test-path',
         './glance_store/tests/unit/datera', 'run', '--slowest'], tree,
        env=test_env)
    run([python, '-m', 'stestr', 'run', '--slowest', '--no-discover',
         'glance_store.tests.unit.test_opts'], tree, env=test_env)
    flake8(python, tree, changed_files(tree, env, '*.py'), env)
    docs = changed_files(tree, env, 'doc/*.rst')
    if docs:
        run([python, '-m', 'doc8'] + docs, tree, env=env)
    check_release_notes(tree, env)


#: reno's sections; each but the prelude a list of strings.
RENO_SECTIONS = {'prelude', 'features', 'issues', 'upgrade', 'deprecations',
                 'critical', 'security', 'fixes', 'other'}


def check_release_notes(tree, env):
    """The series' release notes: one or more, in reno's format."""
    notes = changed_files(tree, env, 'releasenotes/notes/*.yaml')
    if not notes:
        raise CheckFailed('the series adds no release note')
    for note in notes:
        print('+ reno note %s' % note, flush=True)
        with open(os.path.join(tree, note)) as f:
            data = yaml.safe_load(f)
        if (not isinstance(data, dict) or not data or
                set(data) - RENO_SECTIONS or
                not all(isinstance(value, list) and value and
                        all(isinstance(item, str) for item in value)
                        for key, value in data.items()
                        if key != 'prelude')):
            raise CheckFailed('%s is not a reno note' % note)


def check_glance(paths, python, tree, env):
    test_env = _test_env(env, python)
    # As glance's tox.ini sets it for oslo.db's test databases.
    test_env['OS_TEST_DBAPI_ADMIN_CONNECTION'] = (
        'sqlite:////tmp/placeholder-never-created-nor-used.db')
    run([python, '-m', 'stestr', 'run', '--slowest', '--no-discover',
         'glance.tests.unit.v2.test_discovery_stores'], tree, env=test_env)
    flake8(python, tree, changed_files(tree, env, '*.py'), env)
    check_release_notes(tree, env)


def check(paths):
    """The whole check; raises CheckFailed at the first failure."""
    started = time.monotonic()
    env = sdist.git_env('upstream check', 'check@example.invalid',
                        sdist.BASELINE_DATE)
    trees = {project: apply_series(paths, project, env)
             for project in ('glance_store', 'glance')}
    python = make_view(paths.python,
                       os.path.join(paths.build, 'work', 'check', 'venv'),
                       [trees['glance_store'], trees['glance']])
    check_glance_store(paths, python, trees['glance_store'], env)
    check_glance(paths, python, trees['glance'], env)
    print('upstream-check passed in %.0f s' % (time.monotonic() - started))


def main(paths):
    try:
        check(paths)
    except (CheckFailed, subprocess.CalledProcessError) as e:
        print('upstream-check FAILED: %s' % e, file=sys.stderr)
        return 1
    return 0
