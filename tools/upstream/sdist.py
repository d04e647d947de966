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

"""The pinned sdists: downloaded once, unpacked fresh, committed as a base.

The version of each project is the one constraints.txt pins. The sdist
is fetched with pip (``pip download --no-deps --no-binary :all:``) into
a cache folder under build/ and reused from there. Each use unpacks it
into a new folder, which becomes a git repository whose first commit is
the sdist as released: the baseline of ``git format-patch`` and of
``git am``.

Git runs with a fixed identity and date and without the user's or the
system's configuration, so that the same inputs give byte-identical
patches.
"""

import glob
import os
import re
import shutil
import subprocess
import tarfile

BASELINE_DATE = '2000-01-01T00:00:00+00:00'


def pinned_version(constraints_file, name):
    """The version constraints.txt pins for ``name`` (``name==X``)."""
    wanted = normalize(name)
    with open(constraints_file) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            project, sep, version = line.partition('==')
            if sep and normalize(project) == wanted:
                return version.strip()
    raise LookupError('%s pins no version of %s' % (constraints_file, name))


def normalize(name):
    """PEP 503 name normalization: glance_store == glance-store."""
    return re.sub(r'[-_.]+', '-', name).lower()


def _cached(cache_dir, name, version):
    for path in glob.glob(os.path.join(cache_dir, '*.tar.gz')):
        base = os.path.basename(path)[:-len('.tar.gz')]
        project, _sep, ver = base.rpartition('-')
        if normalize(project) == normalize(name) and ver == version:
            return path
    return None


def fetch(name, version, cache_dir, pip):
    """The sdist archive of name==version, downloaded into cache_dir once.

    :param pip: the pip command, a list (``[python, '-m', 'pip']``)
    """
    os.makedirs(cache_dir, exist_ok=True)
    path = _cached(cache_dir, name, version)
    if path is None:
        subprocess.run(pip + ['download', '--quiet', '--no-deps',
                              '--no-binary', ':all:',
                              '%s==%s' % (name, version), '-d', cache_dir],
                       check=True)
        path = _cached(cache_dir, name, version)
        if path is None:
            raise RuntimeError('pip left no sdist of %s %s in %s'
                               % (name, version, cache_dir))
    return path


def unpack(archive, dest):
    """Unpack the sdist into dest (emptied first); the source tree's path.

    Members must stay inside the archive's one top folder.
    """
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        tops = {m.name.split('/', 1)[0] for m in members}
        for member in members:
            parts = member.name.split('/')
            if (member.name.startswith('/') or '..' in parts or
                    not (member.isfile() or member.isdir()) or
                    len(tops) != 1):
                raise RuntimeError('unexpected member %s in %s'
                                   % (member.name, archive))
            # Owned by whoever unpacks it (root would get the archive's
            # owners, and git refuses a repository of another user).
            member.uid, member.gid = os.getuid(), os.getgid()
            member.uname = member.gname = ''
        tar.extractall(dest, members=members)
    return os.path.join(dest, tops.pop())


def git_env(name, email, date):
    """Environment of every git command: fixed identity and date only."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith('GIT_'):
            del env[key]
    env.update({
        'GIT_AUTHOR_NAME': name, 'GIT_AUTHOR_EMAIL': email,
        'GIT_AUTHOR_DATE': date,
        'GIT_COMMITTER_NAME': name, 'GIT_COMMITTER_EMAIL': email,
        'GIT_COMMITTER_DATE': date,
        'GIT_CONFIG_GLOBAL': os.devnull, 'GIT_CONFIG_NOSYSTEM': '1',
        'TZ': 'UTC', 'LC_ALL': 'C',
    })
    return env


def git(tree, *args, env, capture=False):
    """Run git in tree; its output when capture."""
    result = subprocess.run(['git', '-C', tree] + list(args), env=env,
                            check=True, text=True,
                            stdout=subprocess.PIPE if capture else None)
    return result.stdout if capture else None


def baseline(tree, project, version):
    """Make tree a git repository whose one commit is the sdist as is."""
    env = git_env('%s sdist' % project, 'sdist@example.invalid',
                  BASELINE_DATE)
    git(tree, 'init', '--quiet', '--initial-branch', 'master', env=env)
    git(tree, 'add', '--all', '--force', env=env)
    git(tree, 'commit', '--quiet', '--no-verify', '--message',
        '%s %s as released (sdist)' % (project, version), env=env)
    return git(tree, 'rev-parse', 'HEAD', env=env, capture=True).strip()


def fresh_tree(name, version, cache_dir, work_dir, pip):
    """A new git repository of the pinned sdist; its path."""
    archive = fetch(name, version, cache_dir, pip)
    tree = unpack(archive, work_dir)
    baseline(tree, name, version)
    return tree
