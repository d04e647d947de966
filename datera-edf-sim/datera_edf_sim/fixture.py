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

"""Run a Datera EDF simulator in a subprocess, for tests and demos.

::

    with running_simulator() as sim:
        api = dfs_sdk.get_api(sim.host, sim.username, sim.password, ...)
        sim.fail_next('POST', r'/app_instances$', kind='503')
        ...
        assert [r for r in sim.requests() if r['method'] == 'POST']

The simulator is ``python -m datera_edf_sim.cli serve`` run with
the same interpreter, so it works from a virtualenv without its scripts on
PATH. Its log goes to ``<data_dir>/simulator.log``.
"""

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import requests as requests_lib

from datera_edf_sim import defaults

LOG_FILE = 'simulator.log'
START_TIMEOUT = 60
STOP_TIMEOUT = 30
_ADMIN_TIMEOUT = 60

# Ready-line fields copied onto the SimulatorProcess.
_READY_FIELDS = ('api_url', 'http_url', 'host', 'port', 'http_port',
                 'ca_file', 'export_dir', 'data_dir', 'username', 'password',
                 'admin_url')


class SimulatorError(Exception):
    """The simulator did not start, stop or answer as expected."""


class SimulatorProcess(object):
    """A ``datera-edf-sim serve`` subprocess and a client for its admin API.

    :param data_dir: the simulator's data directory (created if missing).
    :param block_devices: export loop devices (needs root) instead of files.
    :param serve_options: further ``serve`` options by their Python names:
        ``port``, ``http_port`` (default 0: free ports), ``bind``,
        ``username``, ``password``, ``sw_version``, ``key_ttl``,
        ``resize_seconds``, ``snapshot_seconds``, ``data_ips`` (list or
        comma-separated string), ``export_owner`` (``"user[:group]"`` or
        ``(uid, gid)``), ``log_level``.

    After :meth:`start`, the ready line's fields are attributes:
    ``api_url``, ``http_url``, ``host``, ``port``, ``http_port``,
    ``ca_file``, ``export_dir``, ``data_dir``, ``username``, ``password``,
    ``admin_url``; ``info`` holds the whole line.
    """

    def __init__(self, data_dir, block_devices=False, **serve_options):
        self.data_dir = os.path.abspath(str(data_dir))
        self.block_devices = block_devices
        self.serve_options = dict(serve_options)
        self.serve_options.setdefault('port', 0)
        self.serve_options.setdefault('http_port', 0)
        self.info = None
        self.process = None
        self.log_file = os.path.join(self.data_dir, LOG_FILE)
        self._session = None
        for field in _READY_FIELDS:
            if field != 'data_dir':
                setattr(self, field, None)

    def command(self):
        """The command line that runs this simulator."""
        cmd = [sys.executable, '-m', 'datera_edf_sim.cli', 'serve',
               '--data-dir', self.data_dir, '--watch-stdin']
        if self.block_devices:
            cmd.append('--block-devices')
        for name, value in sorted(self.serve_options.items()):
            if value is None:
                continue
            if name == 'data_ips' and not isinstance(value, str):
                value = ','.join(value)
            if name == 'export_owner' and not isinstance(value, str):
                value = '%d:%d' % tuple(value)      # (uid, gid)
            cmd += ['--' + name.replace('_', '-'), str(value)]
        return cmd

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self, timeout=START_TIMEOUT):
        """Start the simulator and wait until it serves.

        :raises SimulatorError: it exited or said nothing within
            ``timeout`` seconds; the message ends with its log.
        """
        if self.running:
            raise SimulatorError('simulator already running')
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.log_file, 'ab') as log:
            # stdin stays open and unused: if this process dies without
            # stopping the simulator, the pipe closes and it stops itself.
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, close_fds=True)
        try:
            line = self._read_ready_line(timeout)
            info = json.loads(line)
        except Exception:
            self._kill()
            # Reported here; a later stop() has nothing more to say.
            self.process = None
            raise
        self.info = info
        for field in _READY_FIELDS:
            setattr(self, field, info.get(field))
        # A restart must come back where clients already point.
        self.serve_options['port'] = info['port']
        self.serve_options['http_port'] = info['http_port']
        self._session = requests_lib.Session()
        return self

    def _read_ready_line(self, timeout):
        deadline = time.monotonic() + timeout
        data = b''
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b'\n' not in data:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SimulatorError(
                        'simulator not ready after %ss%s' % (
                            timeout, self._log_tail()))
                if not selector.select(remaining):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait(timeout=STOP_TIMEOUT)
                    raise SimulatorError(
                        'simulator exited with status %s before it was '
                        'ready%s' % (self.process.returncode,
                                     self._log_tail()))
                data += chunk
        return data.split(b'\n', 1)[0].decode('utf-8')

    def log_tail(self, lines=60):
        """The last ``lines`` lines of the simulator's log ('' if none)."""
        try:
            with open(self.log_file, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def _log_tail(self, lines=40):
        tail = self.log_tail(lines)
        return '; log %s:\n%s' % (self.log_file, tail) if tail else ''

    def stop(self, timeout=STOP_TIMEOUT):
        """Stop the simulator (SIGTERM) and wait for it; its data stays.

        It is killed if it does not stop within ``timeout`` seconds.
        """
        if self._session is not None:
            self._session.close()
            self._session = None
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise SimulatorError('simulator did not stop within %ss%s' % (
                    timeout, self._log_tail()))
        self._close_pipes()
        returncode = self.process.returncode
        self.process = None
        if returncode not in (0, -signal.SIGTERM):
            raise SimulatorError('simulator exited with status %s%s' % (
                returncode, self._log_tail()))

    def restart(self, timeout=START_TIMEOUT):
        """Stop and start again on the same data directory and ports."""
        self.stop()
        return self.start(timeout=timeout)

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_pipes()

    def _close_pipes(self):
        if self.process is not None:
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe:
                    pipe.close()

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # Admin API client

    def store_options(self):
        """Datera store options that point a store at this simulator.

        HTTPS verified with the simulator's CA, and the ``local``
        transport through its exports (there is no iSCSI here).
        """
        return {
            'datera_san_ip': self.host,
            'datera_san_port': self.port,
            'datera_san_login': self.username,
            'datera_san_password': self.password,
            'datera_ca_certificates_file': self.ca_file,
            'datera_transport': 'local',
            'datera_local_export_dir': self.export_dir,
        }

    def _admin(self, method, path, body=None):
        if not self.running or self._session is None:
            raise SimulatorError('simulator is not running')
        resp = self._session.request(
            method, self.admin_url + path, json=body, timeout=_ADMIN_TIMEOUT)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            message = data.get('message') if isinstance(data, dict) else None
            raise SimulatorError('%s %s: %d %s' % (
                method, path, resp.status_code, message or resp.text))
        return data

    def fail_next(self, method, path_pattern, count=1, kind='503', skip=0,
                  ai_id=None, tenant=None):
        """Fail the next ``count`` requests matching a method and path.

        ``method`` None or '*' matches any method; the regex
        ``path_pattern`` is searched in the path as sent
        (``/v2.2/app_instances``). The first ``skip`` matching requests go
        through untouched, so ``skip=k-1`` hits the k-th one.

        :param kind: ``'503'``, ``'500'``, ``'drop'`` (connection closed
            without an answer, nothing done) or ``'drop_after'`` (done,
            then the connection is closed without an answer); or an action
            taken just before the request, which then runs normally:
            ``'expire_keys'`` (every login key ends: the request gets 401),
            ``'force_offline'`` (another host forces app instance
            ``ai_id`` of ``tenant`` offline; by default the one the
            request's path names) or ``'full'`` (the capacity becomes what
            is in use: creates and grows fail).
        """
        body = {'method': method, 'path_pattern': path_pattern,
                'count': count, 'kind': str(kind)}
        # Only what differs from the defaults: an older simulator still
        # understands the rest.
        if skip:
            body['skip'] = skip
        if ai_id:
            body['ai_id'] = ai_id
        if tenant:
            body['tenant'] = tenant
        self._admin('POST', '/faults', body)

    def add_latency(self, seconds, method=None, path_pattern=None,
                    count=None, skip=0):
        """Delay matching requests (all by default) by ``seconds``.

        With ``count``, only that many matching requests are delayed,
        after ``skip`` that are not.
        """
        body = {'seconds': seconds, 'method': method,
                'path_pattern': path_pattern}
        if count is not None:
            body['count'] = count
        if skip:
            body['skip'] = skip
        self._admin('POST', '/latency', body)

    def wait_idle(self, timeout=_ADMIN_TIMEOUT / 2):
        """Wait until the simulator handles no API request.

        E.g. a delayed one its client gave up on. False if one still runs
        after ``timeout`` seconds.
        """
        return self._admin('POST', '/wait_idle', {'timeout': timeout})['idle']

    def clear_faults(self):
        """Remove pending failures and latency."""
        self._admin('DELETE', '/faults')

    def faults(self):
        """Pending failures and latency rules."""
        return self._admin('GET', '/faults')

    def expire_keys(self):
        """Invalidate every login key now (clients get 401 and re-login)."""
        self._admin('POST', '/expire_keys')

    def force_offline(self, ai_id, tenant=defaults.ROOT_TENANT):
        """Take an app instance offline as an admin or other host would."""
        return self._admin('POST', '/force_offline',
                           {'tenant': tenant, 'ai_id': ai_id})

    def set_capacity(self, gib):
        """Cluster capacity in GiB; None: unlimited."""
        self._admin('PUT', '/capacity', {'gib': gib})

    def requests(self):
        """The request log, oldest first.

        ``[{"method", "path", "api_path", "version", "tenant", "status",
        "fault", "time", "clone"}]``: ``path`` is as sent (with ``/v2.x``),
        ``api_path`` without it; ``status`` is None for a dropped
        connection; ``clone`` is, for an app instance create that clones,
        ``{"clone_volume_src": <source path>}`` (or the snapshot's or app
        instance's field), else None.
        """
        return self._admin('GET', '/requests')

    def clear_requests(self):
        self._admin('DELETE', '/requests')

    def volume_file(self, ai_id):
        """The file behind an app instance's volume (a loop device's too)."""
        for ai in self.state().get('app_instances', []):
            if ai['id'] == ai_id:
                volume = ai['storage_instances'][0]['volumes'][0]['uuid']
                break
        else:
            raise SimulatorError('no app instance %s' % ai_id)
        for root, _dirs, files in os.walk(self.data_dir):
            for name in files:
                if name.startswith(volume):
                    return os.path.join(root, name)
        raise SimulatorError('no backing file for volume %s' % volume)

    def corrupt(self, ai_id, offset):
        """Change one byte of an app instance's volume.

        As a failing disk or an intruder would, behind every client's back.
        """
        with open(self.volume_file(ai_id), 'r+b') as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x5a]))

    def state(self):
        """The model's JSON snapshot (tenants, app instances, exports)."""
        return self._admin('GET', '/state')


@contextlib.contextmanager
def running_simulator(data_dir=None, block_devices=False, **serve_options):
    """A started :class:`SimulatorProcess`, stopped on exit.

    Without ``data_dir`` a temporary directory is used and removed
    afterwards; a given ``data_dir`` is kept.
    """
    tmp = None
    if data_dir is None:
        tmp = data_dir = tempfile.mkdtemp(prefix='edf-sim-')
    sim = SimulatorProcess(data_dir, block_devices=block_devices,
                           **serve_options)
    try:
        sim.start()
        yield sim
    finally:
        try:
            sim.stop()
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
