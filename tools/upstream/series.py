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

"""Commits on a fresh sdist tree, written out with ``git format-patch``.

The patches carry the maintainer's identity (:func:`identity`) and the
date of the last commit of their inputs (:data:`INPUTS`), and ``git
format-patch --zero-commit`` leaves the commit ids out: the same inputs
give the same bytes, so a diff of two generations shows what a change of
the driver did to the series.
"""

import dataclasses
import glob
import os
import re
import subprocess

from tools.upstream import glance_series
from tools.upstream import glance_store_series
from tools.upstream import sdist


@dataclasses.dataclass
class Paths:
    """Where things are: the repository and its build/upstream folder."""

    root: str
    python: str

    @property
    def build(self):
        return os.path.join(self.root, 'build', 'upstream')

    @property
    def cache(self):
        return os.path.join(self.build, 'cache')

    @property
    def constraints(self):
        return os.path.join(self.root, 'constraints.txt')

    def patches(self, project):
        return os.path.join(self.build, project)

    def work(self, purpose, project):
        return os.path.join(self.build, 'work', purpose, project)

    @property
    def pip(self):
        return [self.python, '-m', 'pip']


def identity(root):
    """(name, email) the patches are written by, and the maintainer.

    ``UPSTREAM_MAINTAINER="Name <email>"`` in the environment, else the
    repository's git ``user.name`` and ``user.email``, else the first
    line of AUTHORS.
    """
    given = os.environ.get('UPSTREAM_MAINTAINER', '')
    match = re.fullmatch(r'\s*(.+?)\s*<([^>]+)>\s*', given)
    if match:
        return match.group(1), match.group(2)

    def config(key):
        result = subprocess.run(['git', '-C', root, 'config', key],
                                capture_output=True, text=True)
        return result.stdout.strip()
    name, email = config('user.name'), config('user.email')
    if name and email:
        return name, email
    with open(os.path.join(root, 'AUTHORS')) as f:
        match = re.match(r'(.+?)\s*<([^>]+)>', f.readline())
    if not match:
        raise RuntimeError('no git identity and no AUTHORS entry')
    return match.group(1), match.group(2)


#: What the series are made of: a commit touching none of them leaves
#: the patches as they were, their dates included.
INPUTS = ('datera_glance', 'etc/glance/rootwrap.d', 'tools/upstream',
          'constraints.txt')


def commit_date(root):
    """The date of the last commit of the series' inputs (else fixed)."""
    result = subprocess.run(['git', '-C', root, 'log', '-1', '--format=%cI',
                             '--'] + list(INPUTS),
                            capture_output=True, text=True)
    return result.stdout.strip() or sdist.BASELINE_DATE


def write_files(tree, files):
    for path, text in files.items():
        full = os.path.join(tree, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(text)


def build_series(tree, commits, out_dir, env):
    """Commit each (subject, body, make) on tree; format-patch to out_dir.

    :returns: the patch files, in order
    """
    for subject, body, make in commits:
        write_files(tree, make(tree))
        sdist.git(tree, 'add', '--all', env=env)
        sdist.git(tree, 'commit', '--quiet', '--no-verify', '--message',
                  '%s\n\n%s' % (subject, body), env=env)
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, '*.patch')):
        os.unlink(old)
    names = sdist.git(tree, 'format-patch', '--zero-commit',
                      '--no-signature', '--output-directory', out_dir,
                      'HEAD~%d' % len(commits), env=env, capture=True)
    return [line.strip() for line in names.splitlines() if line.strip()]


def generate(paths, projects=('glance_store', 'glance')):
    """Write build/upstream/<project>/*.patch; {project: [patch paths]}."""
    name, email = identity(paths.root)
    env = sdist.git_env(name, email, commit_date(paths.root))
    series = {
        'glance_store': lambda: glance_store_series.commits(
            paths.root, (name, email)),
        'glance': glance_series.commits,
    }
    written = {}
    for project in projects:
        # The driver is generated (and checked) before anything else.
        commits = series[project]()
        version = sdist.pinned_version(paths.constraints, project)
        tree = sdist.fresh_tree(project, version, paths.cache,
                                paths.work('generate', project), paths.pip)
        out_dir = paths.patches(project)
        written[project] = build_series(tree, commits, out_dir, env)
        with open(os.path.join(out_dir, 'BASE'), 'w') as f:
            f.write('%s==%s (the sdist; apply with git am onto it)\n'
                    % (project, version))
    return written
