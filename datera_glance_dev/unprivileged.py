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

"""A glance-api host set up as the README's deployment recipe says.

glance-api runs as an unprivileged service user. os-brick's privileged
steps, and the store's own, run in oslo.privsep daemons that glance-api
starts through its root helper, ``sudo glance-rootwrap <rootwrap.conf>``:

* a sudoers file lets the service user run exactly that rootwrap with
  that configuration (:func:`sudoers_line`);
* ``rootwrap.conf`` names the folder of filters and the folders commands
  are looked up in, the virtualenv's ``bin`` among them
  (:func:`rootwrap_conf`);
* the rootwrap filters are the project's ``datera.filters``, root's and
  read-only.

:class:`ServiceHost` makes exactly those files (and the service user, when
it does not exist) and removes them again; the README shows the same lines
for ``glance`` and ``/etc/glance`` (a test checks they agree). It needs
root.
"""

import configparser
import io
import os
import pwd
import shutil
import subprocess
import sys
import uuid

#: The project's rootwrap filters, as shipped in the source tree.
FILTERS_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    'etc', 'glance', 'rootwrap.d', 'datera.filters')

#: Where distributions look for commands, after the virtualenv's bin.
SYSTEM_EXEC_DIRS = ('/sbin', '/usr/sbin', '/bin', '/usr/bin',
                    '/usr/local/bin', '/usr/local/sbin')

SUDOERS_DIR = '/etc/sudoers.d'


class ServiceHostError(RuntimeError):
    """The host could not be set up (not root, no sudo, bad sudoers)."""


def sudoers_line(user, rootwrap, rootwrap_config):
    """The sudoers rule letting ``user`` run ``rootwrap`` and nothing else.

    ``rootwrap`` is glance-rootwrap's absolute path: sudo's secure_path
    does not search a virtualenv, and a relative command in a sudoers rule
    matches nothing.
    """
    return '%s ALL = (root) NOPASSWD: %s %s *' % (user, rootwrap,
                                                  rootwrap_config)


def rootwrap_conf(filters_path, bindir):
    """The contents of a ``rootwrap.conf`` for glance in ``bindir``.

    :param filters_path: the folder of rootwrap filters
        (``/etc/glance/rootwrap.d``)
    :param bindir: where ``privsep-helper`` lives (the virtualenv's
        ``bin``, or ``/usr/bin`` for distribution packages); searched first
    """
    exec_dirs = [bindir] + [d for d in SYSTEM_EXEC_DIRS if d != bindir]
    parser = configparser.RawConfigParser()
    parser['DEFAULT'] = {
        'filters_path': filters_path,
        'exec_dirs': ','.join(exec_dirs),
        'use_syslog': 'False',
    }
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def root_helper_options(rootwrap, rootwrap_config):
    """The store options that make glance-api use this root helper."""
    return {'datera_glance_rootwrap_path': 'sudo ' + rootwrap,
            'datera_glance_rootwrap_config': rootwrap_config}


class ServiceHost:
    """The service user, sudoers rule and rootwrap files of a glance host.

    :param user: the service user; created (a system user without a home
        or a login shell) when missing, and removed again by
        :meth:`remove` only then.
    :param etc_dir: the folder for ``rootwrap.conf``, ``rootwrap.d`` and
        glance-api's configuration; must be under /etc (the filters admit
        a privsep daemon only for a configuration file there) and not
        exist yet.
    :param bindir: the folder of ``glance-rootwrap`` and
        ``privsep-helper``; the running interpreter's by default.
    """

    def __init__(self, user, etc_dir, bindir=None):
        self.user = user
        self.etc_dir = os.path.abspath(etc_dir)
        self.bindir = bindir or os.path.dirname(sys.executable)
        self.filters_dir = os.path.join(self.etc_dir, 'rootwrap.d')
        self.rootwrap_config = os.path.join(self.etc_dir, 'rootwrap.conf')
        self.rootwrap = os.path.join(self.bindir, 'glance-rootwrap')
        self.sudoers_file = os.path.join(
            SUDOERS_DIR, 'datera-glance-%s' % uuid.uuid4().hex[:8])
        self._created_user = False
        self._made = []

    @property
    def passwd(self):
        return pwd.getpwnam(self.user)

    def root_helper_options(self):
        return root_helper_options(self.rootwrap, self.rootwrap_config)

    def install(self):
        """Make the user, the rootwrap files and the sudoers rule."""
        if os.geteuid() != 0:
            raise ServiceHostError('setting up a service user needs root')
        if not self.etc_dir.startswith('/etc/'):
            raise ServiceHostError('%s is not under /etc' % self.etc_dir)
        sudo = shutil.which('sudo')
        if not sudo:
            raise ServiceHostError('sudo is not installed (make deps)')
        try:
            self._install()
        except BaseException:
            self.remove()
            raise
        return self

    def _install(self):
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            _run(['useradd', '--system', '--no-create-home',
                  '--home-dir', '/nonexistent', '--shell',
                  '/usr/sbin/nologin', '--user-group', self.user])
            self._created_user = True
        os.mkdir(self.etc_dir, 0o755)
        self._made.append(self.etc_dir)
        os.mkdir(self.filters_dir, 0o755)
        target = os.path.join(self.filters_dir, 'datera.filters')
        shutil.copyfile(FILTERS_FILE, target)
        os.chmod(target, 0o644)
        with open(self.rootwrap_config, 'w') as f:
            f.write(rootwrap_conf(self.filters_dir, self.bindir))
        os.chmod(self.rootwrap_config, 0o644)
        line = sudoers_line(self.user, self.rootwrap, self.rootwrap_config)
        tmp = self.sudoers_file + '.new'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        with os.fdopen(fd, 'w') as f:
            f.write(line + '\n')
        self._made.append(tmp)
        # A sudoers file sudo cannot parse disables sudo for everyone.
        _run(['visudo', '--check', '--quiet', '--file', tmp])
        os.rename(tmp, self.sudoers_file)
        self._made.append(self.sudoers_file)

    def remove(self):
        """Remove what :meth:`install` made; safe to repeat."""
        for path in reversed(self._made):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self._made = []
        if self._created_user:
            _run(['userdel', self.user])
            self._created_user = False

    def run_as_user(self, args, **kwargs):
        """Run a command as the service user; the CompletedProcess."""
        entry = self.passwd
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
               'HOME': '/', 'USER': entry.pw_name,
               'LOGNAME': entry.pw_name}
        return subprocess.run(args, user=entry.pw_uid, group=entry.pw_gid,
                              extra_groups=[], env=env, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, **kwargs)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.remove()


def _run(args):
    result = subprocess.run(args, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    if result.returncode:
        raise ServiceHostError('%s failed (%d): %s' % (
            ' '.join(args), result.returncode,
            (result.stdout + result.stderr).strip()))
    return result
