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

"""A real glance-api in a private folder, for end-to-end tests and the demo.

glance-api no longer runs standalone: it is a WSGI application
(``glance.wsgi.api:application``) that reads its configuration from the
folder named by ``OS_GLANCE_CONFIG_DIR``. :class:`GlanceApi` writes that
folder (``glance-api.conf``, ``glance-api-paste.ini``, ``policy.yaml``),
creates the SQLite database with ``glance-manage db_sync``, serves the
application with gunicorn on a free port of 127.0.0.1 and stops it again.
It is the glance and glance_store from PyPI, unpatched, finding the driver
through its ``glance_store.drivers`` entry point exactly as an operator's
glance-api does. The application is glance's own, loaded through
:mod:`datera_glance_dev.wsgi`, which only makes SQLite transactions
wait for each other instead of failing under concurrent requests.

Two layouts are supported, the two that operators use:

* multi-store: ``[DEFAULT] enabled_backends = name:store,...``, a default
  backend, each backend's options in its own group, and the reserved
  ``os_glance_staging_store`` / ``os_glance_tasks_store`` groups;
* legacy single store: ``[glance_store] stores = ...`` and
  ``default_store = ...`` with every store option in ``[glance_store]``, as
  the original Datera driver's README configured it.

There is no keystone: a small paste filter
(:mod:`datera_glance_dev.noauth`) gives every request an admin context
in a fixed project, and ``policy.yaml`` maps every glance policy to the
empty rule so that context is let through.

os-brick's privileged calls go through oslo.privsep. In production its
daemon is started through sudo and rootwrap. A glance-api given a ``user``
runs as that user and does exactly that, with the root helper of the
store's options (:mod:`datera_glance_dev.unprivileged` sets up the
sudoers and rootwrap files); otherwise it runs as this process's user, and
as root the ``[privsep_osbrick] helper_command`` starts the same
``privsep-helper`` directly.
"""

import configparser
import contextlib
import dataclasses
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

from datera_glance_dev import gunicorn_conf
from datera_glance_dev import polling

#: The checkout that holds this harness (never installed on a host).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The pipeline glance ships, reduced to what runs without keystone: the
#: ``noauth`` filter gives each request an admin context in a fixed project.
PASTE_INI = """\
[composite:glance-api]
paste.composite_factory = glance.api:root_app_factory
/: api
/healthcheck: healthcheck

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
default = cors http_proxy_to_wsgi versionnegotiation noauth rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory
backends = disable_by_file
disable_by_file_path = {healthcheck_disable}

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:noauth]
paste.filter_factory = datera_glance_dev.noauth:filter_factory

[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = glance
oslo_config_program = glance-api

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory
"""  # noqa: E501

_LISTENING = re.compile(r'Listening at: http://[^:\s]+:(\d+)')


class GlanceApiError(RuntimeError):
    """glance-api could not be configured, started or stopped."""


@dataclasses.dataclass
class Backend:
    """One image store as glance-api sees it.

    :param name: the backend's name in ``enabled_backends`` (multi-store);
        ignored by the legacy single-store layout.
    :param store: the store driver's name (``datera``, ``file``).
    :param options: the store's options, written to the backend's group
        (multi-store) or to ``[glance_store]`` (single store).
    :param description: the backend's ``store_description``.
    """

    name: str
    store: str
    options: dict
    description: str = ''


def file_backend(datadir, name='file1'):
    """A glance ``file`` store keeping images under ``datadir``."""
    return Backend(name=name, store='file',
                   options={'filesystem_store_datadir': datadir},
                   description='Local file store')


def datera_backend(sim, name='datera1', **options):
    """A Datera store using the simulator ``sim``.

    ``sim`` is a running
    :class:`datera_edf_sim.fixture.SimulatorProcess`; its
    ``store_options()`` make the store talk HTTPS to it, verified with the
    simulator's CA, and attach volumes with the ``local`` transport
    through the simulator's exports.
    Keyword arguments add or override options (``datera_chunk_size=...``);
    a value of ``None`` removes an option.
    """
    opts = sim.store_options()
    opts.update(options)
    opts = {k: v for k, v in opts.items() if v is not None}
    return Backend(name=name, store='datera', options=opts,
                   description='Datera EDF (simulator)')


def policy_rules():
    """Every glance policy name, from the installed glance."""
    from glance import policies
    return sorted({rule.name for rule in policies.list_rules()})


def _conf_value(value):
    """A Python value as oslo.config reads it from a file."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return ','.join(str(v) for v in value)
    return str(value)


class GlanceApi:
    """A glance-api process with its own configuration, database and log.

    :param work_dir: a folder for everything this instance writes; created
        when missing.
    :param backends: the :class:`Backend` list, in ``enabled_backends``
        order.
    :param default: the name of the default backend; the first one when
        omitted.
    :param legacy: use the single-store layout (``stores``,
        ``default_store``) instead of ``enabled_backends``.
    :param debug: glance-api's ``debug`` option.
    :param extra_config: ``{section: {option: value}}`` written last, to add
        or override anything.
    :param bindir: where ``gunicorn``, ``glance-manage`` and
        ``privsep-helper`` live; the running interpreter's folder by
        default.
    :param threads: gunicorn threads of the single worker, i.e. how many
        requests glance-api serves at once.
    :param stop_with_parent: glance-api stops by itself when this process
        dies without stopping it (a killed test run); ``False`` lets it
        outlive this process (``make demo KEEP=1``).
    :param user: run glance-manage and glance-api as this user (needs
        root), which then owns ``work_dir``; privileged steps then go
        through the stores' root helper (sudo and rootwrap), as in
        production. None: this process's user.
    :param config_dir: where the configuration files go; ``<work_dir>/etc``
        by default. Rootwrap admits a privsep daemon only for a
        configuration file under /etc, so a glance-api with a ``user``
        needs one there.
    :param direct_privsep: start privsep daemons with ``privsep-helper``
        itself (``[privsep_osbrick] helper_command``), which only root
        can; False: through the stores' root helper, as in production.
        By default True without a ``user``, else False.
    """

    def __init__(self, work_dir, backends, default=None, legacy=False,
                 debug=True, extra_config=None, bindir=None, threads=4,
                 stop_with_parent=True, user=None, config_dir=None,
                 direct_privsep=None):
        if not backends:
            raise ValueError('at least one backend is needed')
        self.work_dir = os.path.abspath(work_dir)
        self.backends = list(backends)
        self.default = default or self.backends[0].name
        if self.default not in [b.name for b in self.backends]:
            raise ValueError('default backend %r is not among the backends'
                             % self.default)
        self.legacy = legacy
        self.debug = debug
        self.extra_config = extra_config or {}
        self.bindir = bindir or os.path.dirname(sys.executable)
        self.threads = threads
        self.stop_with_parent = stop_with_parent
        self.user = pwd.getpwnam(user) if user else None
        self.direct_privsep = (self.user is None if direct_privsep is None
                               else direct_privsep)
        self.config_dir = config_dir or os.path.join(self.work_dir, 'etc')
        self.data_dir = os.path.join(self.work_dir, 'data')
        self.config_file = os.path.join(self.config_dir, 'glance-api.conf')
        self.log_file = os.path.join(self.work_dir, 'glance-api.log')
        self.port = None
        self.process = None
        self._log_handle = None

    # configuration ------------------------------------------------------

    @property
    def url(self):
        """The image API endpoint, once started."""
        if self.port is None:
            raise GlanceApiError('glance-api is not running')
        return 'http://127.0.0.1:%d' % self.port

    @property
    def default_backend(self):
        return next(b for b in self.backends if b.name == self.default)

    def _path(self, *parts):
        return os.path.join(self.data_dir, *parts)

    def config(self):
        """The glance-api.conf contents as ``{section: {option: value}}``."""
        for sub in ('staging', 'tasks', 'cache', 'locks'):
            os.makedirs(self._path(sub), exist_ok=True)
        conf = {
            'DEFAULT': {
                'debug': self.debug,
                'use_stderr': True,
                # The interoperable import methods that need no keystone.
                'enabled_import_methods':
                    '[glance-direct,web-download,copy-image]',
                'image_cache_dir': self._path('cache'),
            },
            'database': {
                # A writer waits for the lock up to the timeout (pysqlite's
                # default is 5 s) rather than failing.
                'connection': 'sqlite:///%s?timeout=60' % self._path(
                    'glance.sqlite'),
            },
            'paste_deploy': {
                'config_file': os.path.join(self.config_dir,
                                            'glance-api-paste.ini'),
            },
            'oslo_policy': {
                'policy_file': os.path.join(self.config_dir, 'policy.yaml'),
            },
            'oslo_concurrency': {'lock_path': self._path('locks')},
        }
        if self.direct_privsep:
            # Start os-brick's privsep daemon without sudo (as root); the
            # helper and its arguments are otherwise the production ones.
            conf['privsep_osbrick'] = {
                'helper_command': '%s --config-file %s' % (
                    os.path.join(self.bindir, 'privsep-helper'),
                    self.config_file)}
        if self.legacy:
            store = {
                'stores': ','.join(dict.fromkeys(
                    b.store for b in self.backends)),
                'default_store': self.default_backend.store,
            }
            for backend in self.backends:
                store.update(backend.options)
            conf['glance_store'] = store
            # The legacy layout stages imports through node_staging_uri.
            conf['DEFAULT']['node_staging_uri'] = (
                'file://' + self._path('staging'))
            conf['task'] = {'work_dir': self._path('tasks')}
        else:
            conf['DEFAULT']['enabled_backends'] = ','.join(
                '%s:%s' % (b.name, b.store) for b in self.backends)
            conf['glance_store'] = {'default_backend': self.default}
            for backend in self.backends:
                group = dict(backend.options)
                if backend.description:
                    group['store_description'] = backend.description
                conf[backend.name] = group
            conf['os_glance_staging_store'] = {
                'filesystem_store_datadir': self._path('staging')}
            conf['os_glance_tasks_store'] = {
                'filesystem_store_datadir': self._path('tasks')}
        for section, options in self.extra_config.items():
            conf.setdefault(section, {}).update(options)
        return conf

    def write_config(self):
        """Write glance-api.conf, the paste ini and policy.yaml."""
        os.makedirs(self.config_dir, exist_ok=True)
        parser = configparser.RawConfigParser()
        parser.optionxform = str
        for section, options in self.config().items():
            if section != 'DEFAULT':
                parser.add_section(section)
            for key, value in options.items():
                if value is not None:
                    parser.set(section, key, _conf_value(value))
        with open(self.config_file, 'w') as f:
            parser.write(f)
        paste = PASTE_INI.format(healthcheck_disable=os.path.join(
            self.config_dir, 'healthcheck_disable'))
        with open(os.path.join(self.config_dir,
                               'glance-api-paste.ini'), 'w') as f:
            f.write(paste)
        with open(os.path.join(self.config_dir, 'policy.yaml'), 'w') as f:
            f.write('# Every glance policy open: there is no keystone.\n')
            for name in policy_rules():
                f.write('%s: ""\n' % json.dumps(name))
        if self.user is not None:
            # As a distribution installs them: root's, readable by the
            # service's group (glance-api.conf holds passwords).
            for name in ('glance-api.conf', 'glance-api-paste.ini',
                         'policy.yaml'):
                path = os.path.join(self.config_dir, name)
                os.chown(path, 0, self.user.pw_gid)
                os.chmod(path, 0o640)

    def db_sync(self, template=None):
        """Create the SQLite database, or copy an already synced one.

        :param template: a database file made by an earlier ``db_sync``;
            copying it saves the migrations' time (several seconds).
        """
        target = self._path('glance.sqlite')
        self._make_data_dir()
        if template:
            shutil.copyfile(template, target)
            self._give_to_user(target)
        else:
            self._run([os.path.join(self.bindir, 'glance-manage'),
                       '--config-file', self.config_file, 'db_sync'])
        # Write-ahead logging: readers never block the writer, so requests
        # served at once by glance-api's threads do not fail with
        # "database is locked" (a setting kept in the file).
        with contextlib.closing(sqlite3.connect(target)) as db:
            db.execute('PRAGMA journal_mode=WAL')
        for name in os.listdir(self.data_dir):
            if name.startswith('glance.sqlite'):
                self._give_to_user(self._path(name))

    def _make_data_dir(self):
        os.makedirs(self.data_dir, exist_ok=True)
        if self.user is not None:
            self._give_to_user(self.work_dir)
            for top, dirs, files in os.walk(self.work_dir):
                for name in dirs + files:
                    self._give_to_user(os.path.join(top, name))

    def _give_to_user(self, path):
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _as_user(self):
        """Popen arguments that run a command as ``user``."""
        if self.user is None:
            return {}
        return {'user': self.user.pw_uid, 'group': self.user.pw_gid,
                'extra_groups': []}

    @property
    def database_file(self):
        return self._path('glance.sqlite')

    def _run(self, args):
        result = subprocess.run(args, capture_output=True, text=True,
                                env=self._env(), cwd=self.data_dir,
                                **self._as_user())
        if result.returncode:
            raise GlanceApiError('%s failed (%d):\n%s%s' % (
                ' '.join(args), result.returncode, result.stdout,
                result.stderr))
        return result

    def _env(self):
        env = dict(os.environ)
        # The harness (the noauth filter, the WSGI wrapper, gunicorn's
        # settings) is not installed: glance-api finds it in the checkout.
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO_ROOT] + [p for p in env.get('PYTHONPATH', '').split(
                os.pathsep) if p])
        env['OS_GLANCE_CONFIG_DIR'] = self.config_dir
        env['PATH'] = self.bindir + os.pathsep + env.get('PATH', '')
        env['PYTHONUNBUFFERED'] = '1'
        if self.user is not None:
            env['HOME'] = self.work_dir
            env['USER'] = env['LOGNAME'] = self.user.pw_name
        return env

    # process ------------------------------------------------------------

    def start(self, timeout=90):
        """Start gunicorn and wait until glance-api answers.

        Writes the configuration and creates the database first when that
        was not done yet. Raises :class:`GlanceApiError` with the end of
        the log when glance-api exits or does not answer within
        ``timeout`` seconds.
        """
        if self.process is not None:
            raise GlanceApiError('glance-api is already running')
        if not os.path.exists(self.config_file):
            self.write_config()
        if not os.path.exists(self.database_file):
            self.db_sync()
        self._make_data_dir()
        offset = self._log_size()
        self._log_handle = open(self.log_file, 'ab')
        args = [
            os.path.join(self.bindir, 'gunicorn'),
            # Port 0: the kernel picks a free port, and gunicorn logs it.
            '--bind', '127.0.0.1:0',
            '--workers', '1', '--worker-class', 'gthread',
            '--threads', str(self.threads),
            # An upload of several GiB is one long request.
            '--timeout', '600', '--graceful-timeout', '10',
            '--error-logfile', '-', '--access-logfile', '-',
            '--name', 'glance-api',
            '--config', 'python:datera_glance_dev.gunicorn_conf',
            # glance.wsgi.api:application, with SQLite made safe for
            # concurrent requests.
            'datera_glance_dev.wsgi:application',
        ]
        env = self._env()
        if self.stop_with_parent:
            env[gunicorn_conf.WATCH_VARIABLE] = '1'
        # A session of its own, so that stop() can end the privsep daemon
        # and anything else glance-api started along with it. Its stdin is
        # a pipe nobody writes to: it closes when this process dies.
        self.process = subprocess.Popen(
            args, cwd=self.data_dir, env=env,
            stdin=(subprocess.PIPE if self.stop_with_parent
                   else subprocess.DEVNULL),
            stdout=self._log_handle, stderr=subprocess.STDOUT,
            start_new_session=True, **self._as_user())
        try:
            self.port = int(self.wait_for_log(_LISTENING, timeout=timeout,
                                              offset=offset).group(1))
            self._wait_ready(time.monotonic() + timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _wait_ready(self, deadline):
        # glance-api builds its stores while the worker boots; the health
        # check answers only once that is done.
        url = self.url + '/healthcheck'
        last = []

        def healthy():
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except (urllib.error.URLError, OSError) as e:
                last[:] = [e]
                return False
        try:
            polling.wait_for(healthy, interval=0.1, message='health check',
                             timeout=max(0.0, deadline - time.monotonic()))
        except AssertionError:
            raise GlanceApiError('glance-api did not answer on %s (%s):\n%s'
                                 % (url, last[0] if last else None,
                                    self.log_tail()))

    def _check_alive(self):
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise GlanceApiError('glance-api exited (%s):\n%s'
                                 % (code, self.log_tail()))

    def stop(self, timeout=20, graceful=False):
        """Stop glance-api and everything it started; safe to repeat.

        :param graceful: let requests in flight finish (gunicorn's SIGTERM,
            which takes a few seconds even when idle) instead of stopping
            at once (SIGQUIT).
        """
        proc, self.process = self.process, None
        self.port = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM if graceful
                                 else signal.SIGQUIT)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Whatever is left of the session (a hung worker, the privsep
            # daemon) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if proc.stdin:
                proc.stdin.close()
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def restart(self, timeout=90):
        """Stop and start again with the current configuration files."""
        self.stop()
        return self.start(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # log ----------------------------------------------------------------

    def _log_size(self):
        try:
            return os.path.getsize(self.log_file)
        except FileNotFoundError:
            return 0

    def read_log(self, offset=0):
        """glance-api's log (gunicorn and glance) from ``offset`` bytes."""
        try:
            with open(self.log_file, 'rb') as f:
                f.seek(offset)
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def log_tail(self, lines=60):
        return '\n'.join(self.read_log().splitlines()[-lines:])

    def wait_for_log(self, pattern, timeout=30, offset=0):
        """Wait until a line matching ``pattern`` appears; return the match.

        Raises :class:`GlanceApiError` when glance-api exits first or the
        time runs out.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def logged():
            match = regex.search(self.read_log(offset))
            if not match and self.process is not None and (
                    self.process.poll() is not None):
                self._check_alive()
            return match
        try:
            return polling.wait_for(logged, timeout=timeout, interval=0.1,
                                    message='log line %r' % regex.pattern)
        except AssertionError:
            raise GlanceApiError('no log line matching %r within %ss:\n%s'
                                 % (regex.pattern, timeout,
                                    self.log_tail()))

    # clients ------------------------------------------------------------

    def glance_command(self, *args):
        """The ``glance`` CLI command line against this glance-api."""
        return [os.path.join(self.bindir, 'glance'),
                '--os-image-url', self.url, '--os-auth-token', 'no-keystone',
                *args]

    def run_glance(self, *args, check=True, timeout=600, stdin_file=None):
        """Run the real ``glance`` CLI; returns the CompletedProcess.

        :param stdin_file: a file whose contents the CLI reads as image
            data from its standard input; otherwise its standard input is
            a terminal, as for an operator typing the command (the CLI
            takes any other standard input for image data).

        Raises :class:`GlanceApiError` with its output when it fails and
        ``check`` is true.
        """
        cmd = self.glance_command(*args)
        with contextlib.ExitStack() as stack:
            if stdin_file is not None:
                stdin = stack.enter_context(open(stdin_file, 'rb'))
            else:
                master, stdin = os.openpty()
                stack.callback(os.close, master)
                stack.callback(os.close, stdin)
            result = subprocess.run(cmd, capture_output=True, text=True,
                                    timeout=timeout, stdin=stdin)
        if check and result.returncode:
            raise GlanceApiError('%s failed (%d):\n%s%s' % (
                ' '.join(cmd), result.returncode, result.stdout,
                result.stderr))
        return result

    def client(self):
        """A python-glanceclient v2 client for this glance-api."""
        from glanceclient import client
        return client.Client('2', endpoint=self.url, token='no-keystone')
