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

"""A real iSCSI target behind the simulator's exports: one ``tgtd`` each.

With it, what the REST API says about an exported storage instance is
true on the wire: a real initiator (libiscsi's tools, open-iscsi through
os-brick in a test harness) logs in at the portals of ``access.ips``
with the target IQN of ``access.iqn`` and finds the volume there, and
only the initiators in the storage instance's ACL may log in.

Design
======

* **One tgtd per simulator.** :class:`TgtTarget` starts its own
  ``tgtd -f -C <control port> --iscsi portal=IP:3260,...`` (the Linux SCSI
  target framework, Debian package ``tgt``), listening on the simulator's
  data IPs only. Each simulator uses its own loopback addresses
  (127.x.y.1 and 127.x.y.2: Linux routes all of 127.0.0.0/8 to ``lo``),
  so several simulators, each with its tgtd on port 3260, run side by
  side. The control port ``N`` names tgtd's IPC socket
  ``/var/run/tgtd/socket.N`` and its lock ``socket.N.lock``; a free one is
  picked from a random start, and ``tgtadm -C N`` talks to ours only.

* **The model stays the truth.** The data plane calls :meth:`sync` with
  every change of a storage instance's export set, exactly as it makes
  its export links; tgtd is started empty and only ever holds what the
  model says, so there is nothing to reconcile after a restart.

* **LUN numbering.** A tgt target's LUN 0 is always its controller
  (``Type: controller``, SCSI type 0x0c, no backing store), so the
  volume is **LUN 1**, backed by the volume's file (also when the data
  plane exports loop devices: tgt reads the same bytes through the
  file). A Datera storage instance presents its volume as LUN 0, which is
  what the REST API, the driver and its by-path names say
  (``...-lun-0``); an initiator-side test harness maps the driver's LUN 0
  to tgt's LUN 1 (see :data:`VOLUME_LUN`).

* **ACL by initiator name.** Each target admits exactly the initiator
  names given (``tgtadm --op bind --mode target --initiator-name IQN``;
  ``-I`` would be an initiator *address*). tgt refuses a login from any
  other name with "Target not found", and a target with no ACL entry
  admits nobody; an empty set deletes the target. New names are bound
  before old ones are unbound, so a host that stays in the ACL is never
  refused in between. An initiator taken out of the ACL also loses the
  sessions it has (tgt alone would let them live on), so the ACL holds
  for hosts already logged in, not only for the next login.

* **Growing.** tgt reads a LUN's size when it opens the backing store.
  ``--op update`` with ``online=0,path=<same file>,online=1`` closes and
  reopens it within one request, which tgtd handles in its single event
  loop: no SCSI command sees the LUN offline or missing, and sessions
  stay logged in. (Deleting LUN 1 and adding it again would leave a
  moment in which tgt answers commands for LUN 1 from the controller, and
  is refused while commands are in flight.)

* **Never outliving the simulator.** tgtd is started with
  ``PR_SET_PDEATHSIG=SIGKILL``: the kernel kills it when the thread that
  started it ends, so a simulator killed with SIGKILL takes its tgtd
  along. Start it from a thread that lives as long as the simulator (the
  main thread does). :meth:`close` deletes every target (closing their
  sessions), asks tgtd to exit (``tgtadm --op delete --mode system``;
  tgtd ignores SIGTERM), waits, and kills it if it is still there.

Every command is an argument list; a failure raises :class:`TgtError`
(a :class:`~datera_edf_sim.dataplane.DataPlaneError`) with
tgtadm's own message. This needs root (tgtd's IPC directory is
``/var/run/tgtd``).
"""

import ctypes
import ctypes.util
import fcntl
import ipaddress
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

from datera_edf_sim import dataplane
from datera_edf_sim import naming as names

LOG = logging.getLogger(__name__)

# The LUN that carries the volume; tgt keeps LUN 0 for its controller.
VOLUME_LUN = 1
ISCSI_PORT = dataplane.ISCSI_PORT
TGTD_RUN_DIR = '/var/run/tgtd'
START_TIMEOUT = 20
STOP_TIMEOUT = 10
# Control ports are picked from here (tgtd's own default is 0; it takes
# none above 32767).
CONTROL_PORTS = (10000, 32768)
# A tgtadm request is a round trip on a local socket; one that does not
# answer within this means tgtd hangs.
TGTADM_TIMEOUT = 30
# How often a wait for tgtd to come up looks again.
_POLL = 0.05
# Attempts at a control port that another tgtd took between our check
# and our start.
_START_ATTEMPTS = 5
_PR_SET_PDEATHSIG = 1

_TARGET_RE = re.compile(r'^Target (?P<tid>\d+): (?P<iqn>\S+)$')
_PORTAL_RE = re.compile(r'^Portal: (?P<portal>\S+),(?P<tpgt>\d+)$')
_SECTIONS = {
    'System information:': 'system',
    'I_T nexus information:': 'nexus',
    'LUN information:': 'lun',
    'Account information:': 'account',
    'ACL information:': 'acl',
}
# What may not appear in a name or path tgtadm passes on inside its
# comma-separated parameter strings.
_UNSAFE = re.compile(r'[\s,\x00-\x1f]')


class TgtError(dataplane.DataPlaneError):
    """tgtd could not be started, or a tgtadm request failed."""


class _PortTaken(TgtError):
    """Another tgtd took our control port between the check and the start."""


class _Target(object):
    """What we told tgtd about one storage instance's target."""

    def __init__(self, tid, iqn, backing):
        self.tid = tid
        self.iqn = iqn
        self.backing = backing
        self.initiators = set()


class TgtTarget(object):
    """A ``tgtd`` of our own mirroring the simulator's exports.

    :param portal_ips: the addresses tgtd listens on (port ``port`` each):
        the simulator's data IPs. IPv6 addresses (``::1``) work too.
    :param port: the iSCSI port of every portal.
    :param log_file: where tgtd's output goes (appended); None discards
        it. Its tail is part of a start error.
    :param control_port: tgtd's control port; None picks a free one.
    :param start_timeout: seconds tgtd may take to come up.

    Call :meth:`start` before anything else and :meth:`close` at the end.
    All methods are thread-safe.
    """

    def __init__(self, portal_ips, port=ISCSI_PORT, log_file=None,
                 control_port=None, start_timeout=START_TIMEOUT):
        if not portal_ips:
            raise TgtError('an iSCSI target needs at least one portal')
        self.portal_ips = tuple(str(ipaddress.ip_address(ip))
                                for ip in portal_ips)
        self.port = port
        self.portals = [portal_name(ip, port) for ip in self.portal_ips]
        self.log_file = log_file
        self.control_port = control_port
        self.start_timeout = start_timeout
        self._requested_control_port = control_port
        self._lock = threading.RLock()
        self._proc = None
        self._targets = {}  # si_uuid -> _Target
        self._closed = False

    @staticmethod
    def check_usable():
        """Raise TgtError unless this process can run its own tgtd."""
        if os.geteuid() != 0:
            raise TgtError('the iSCSI target backend needs root (tgtd '
                           'keeps its control socket in %s)' % TGTD_RUN_DIR)
        for program in ('tgtd', 'tgtadm'):
            if shutil.which(program) is None:
                raise TgtError(
                    '%s not found on PATH: the iSCSI target backend needs '
                    'the Linux SCSI target framework (Debian package tgt)'
                    % program)

    @property
    def pid(self):
        """tgtd's process id while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def info(self):
        """What clients need: ``{"control_port", "portals", "pid"}``."""
        return {'control_port': self.control_port,
                'portals': list(self.portals),
                'pid': self.pid}

    # Lifecycle

    def start(self):
        """Start tgtd and wait until it listens on every portal.

        :raises TgtError: no root or no tgtd, a portal address is in use,
            or tgtd did not come up within ``start_timeout`` seconds.
        """
        with self._lock:
            if self._proc is not None:
                raise TgtError('tgtd already started')
            if self._closed:
                raise TgtError('this iSCSI target was closed')
            self.check_usable()
            for ip in self.portal_ips:
                check_portal_free(ip, self.port)
            os.makedirs(TGTD_RUN_DIR, exist_ok=True)
            rng = random.Random()
            for attempt in range(_START_ATTEMPTS):
                port = self._requested_control_port
                if port is None:
                    port = _free_control_port(rng)
                try:
                    self._start_tgtd(port)
                    break
                except _PortTaken:
                    if (self._requested_control_port is not None
                            or attempt == _START_ATTEMPTS - 1):
                        raise
                    LOG.info('tgtd control port %d was taken; trying '
                             'another', port)
            LOG.info('tgtd %d serving iSCSI on %s (control port %d)',
                     self._proc.pid, ', '.join(self.portals),
                     self.control_port)

    def _start_tgtd(self, control_port):
        log_offset = _file_size(self.log_file)
        args = ['tgtd', '-f', '-C', str(control_port), '--iscsi',
                ','.join('portal=' + p for p in self.portals)]
        LOG.debug('starting %s', ' '.join(args))
        log = (open(self.log_file, 'ab') if self.log_file
               else subprocess.DEVNULL)
        try:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, close_fds=True,
                # Its own session: a Ctrl-C meant for the simulator must
                # not stop tgtd under it; the simulator stops it in order.
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()))
        except OSError as e:
            raise TgtError('cannot run tgtd: %s' % e)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        self._proc = proc
        self.control_port = control_port
        try:
            self._wait_ready(proc, control_port, log_offset)
        except BaseException:
            self._kill()
            raise

    def _wait_ready(self, proc, control_port, log_offset):
        """Wait until our tgtd answers on its control port with our portals.

        Portals are bound before tgtd serves requests, so the first answer
        is final. tgtd that cannot bind a portal does not fail: it listens
        on every address instead, which is why the list is checked.
        """
        # /var/run is usually a link to /run: compare what the link says.
        lock_path = os.path.realpath(_lock_path(control_port))
        wanted = {_portal_key(p) for p in self.portals}
        deadline = time.monotonic() + self.start_timeout
        while True:
            status = proc.poll()
            if status is not None:
                tail = _log_since(self.log_file, log_offset)
                if 'another tgtd' in tail:
                    raise _PortTaken('control port %d is in use' %
                                     control_port)
                raise TgtError('tgtd exited with status %d before it was '
                               'ready%s' % (status, _tail_note(tail)))
            # Only once our tgtd holds the lock is the socket ours: before
            # that, another tgtd on this port could answer.
            if _holds_open(proc.pid, lock_path):
                try:
                    out = self._tgtadm(['--op', 'show', '--mode', 'portal'],
                                       timeout=5)
                except TgtError:
                    out = None
                if out is not None:
                    listening = parse_show_portals(out)
                    if {_portal_key(p) for p in listening} == wanted:
                        return
                    raise TgtError(
                        'tgtd listens on %s instead of %s: is an address '
                        'in use?%s' % (
                            ', '.join(listening) or 'nothing',
                            ', '.join(self.portals),
                            _tail_note(_log_since(self.log_file,
                                                  log_offset))))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TgtError('tgtd not ready after %ss%s' % (
                    self.start_timeout,
                    _tail_note(_log_since(self.log_file, log_offset))))
            try:
                # Returns at once if tgtd exits; else it is the interval
                # between looks at the control socket.
                proc.wait(timeout=min(_POLL, remaining))
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        """Delete every target, stop tgtd; idempotent.

        Sessions still logged in are closed. Changes after this raise
        TgtError.
        """
        with self._lock:
            self._closed = True
            if self._proc is None:
                return
            if self._proc.poll() is None:
                try:
                    for target in self._all_targets_in_tgtd():
                        self._delete_target(target)
                    # tgtd ignores SIGTERM; this is how it is told to exit.
                    self._tgtadm(['--op', 'delete', '--mode', 'system'],
                                 lld=False, timeout=STOP_TIMEOUT)
                except TgtError as e:
                    LOG.warning('tgtd did not stop cleanly: %s', e)
                try:
                    self._proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    LOG.warning('tgtd did not exit within %ss; killing it',
                                STOP_TIMEOUT)
            # Whatever tgtd still had goes with it.
            self._targets.clear()
            self._kill()
            # tgtd leaves its IPC socket and lock file behind; nothing of
            # this simulator's may outlive it.
            for path in (_lock_path(self.control_port),
                         _lock_path(self.control_port)[:-len('.lock')]):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            LOG.info('tgtd stopped')

    def _kill(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Targets

    def sync(self, si_uuid, target_iqn, backing_path, initiator_iqns):
        """Make a storage instance's target match its export.

        The target ``target_iqn`` gets LUN 1 backed by ``backing_path``
        and an ACL of exactly ``initiator_iqns``; an empty set deletes it.
        """
        initiators = set(initiator_iqns or ())
        with self._lock:
            self._check_running()
            if not initiators:
                self.remove(si_uuid)
                return
            for name in [target_iqn, backing_path] + sorted(initiators):
                if not name or _UNSAFE.search(name):
                    raise TgtError('tgt cannot take %r' % name)
            target = self._targets.get(si_uuid)
            if target is not None and target.iqn != target_iqn:
                self.remove(si_uuid)
                target = None
            if target is None:
                target = self._create_target(si_uuid, target_iqn,
                                             backing_path)
            elif target.backing != backing_path:
                self._reopen(target, backing_path)
            # Bind before unbinding: a host that stays is never refused.
            for iqn in sorted(initiators - target.initiators):
                self._tgtadm(['--op', 'bind', '--mode', 'target',
                              '--tid', str(target.tid),
                              '--initiator-name', iqn])
                target.initiators.add(iqn)
            removed = target.initiators - initiators
            for iqn in sorted(removed):
                self._tgtadm(['--op', 'unbind', '--mode', 'target',
                              '--tid', str(target.tid),
                              '--initiator-name', iqn])
                target.initiators.discard(iqn)
            if removed:
                self._close_sessions(target, removed)
            LOG.debug('tgt target %d %s: LUN %d %s, ACL %s', target.tid,
                      target_iqn, VOLUME_LUN, backing_path,
                      ', '.join(sorted(initiators)))

    def remove(self, si_uuid):
        """Delete a storage instance's target (and its sessions), if any."""
        with self._lock:
            target = self._targets.get(si_uuid)
            if target is not None:
                self._check_running()
                self._delete_target(target)
                # Only now: a failed delete is tried again next time.
                del self._targets[si_uuid]

    def refresh(self, backing_path):
        """Make tgt see the current size of a grown backing file.

        Every LUN backed by ``backing_path`` is reopened in place; logged
        in sessions stay.
        """
        with self._lock:
            for target in list(self._targets.values()):
                if target.backing == backing_path:
                    self._check_running()
                    self._reopen(target, backing_path)

    def targets(self):
        """What tgtd has, parsed from ``tgtadm --op show --mode target``.

        :returns: ``{target_iqn: {"tid", "state", "backing",
            "lun_size_mb", "acl", "sessions", "luns"}}``, see
            :func:`parse_show_targets`.
        """
        with self._lock:
            self._check_running()
            return parse_show_targets(
                self._tgtadm(['--op', 'show', '--mode', 'target']))

    # Internals

    def _check_running(self):
        if self._closed:
            raise TgtError('the iSCSI target is stopped')
        if self._proc is None:
            raise TgtError('tgtd is not started')
        if self._proc.poll() is not None:
            raise TgtError('tgtd exited with status %d' %
                           self._proc.returncode)

    def _tgtadm(self, args, lld=True, timeout=TGTADM_TIMEOUT):
        cmd = ['tgtadm', '-C', str(self.control_port)]
        if lld:
            cmd += ['--lld', 'iscsi']
        cmd += args
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TgtError('%s: no answer within %ss' % (' '.join(cmd),
                                                         timeout))
        except OSError as e:
            raise TgtError('cannot run tgtadm: %s' % e)
        if proc.returncode != 0:
            raise TgtError('%s failed (exit %d): %s' % (
                ' '.join(cmd), proc.returncode,
                proc.stderr.strip() or proc.stdout.strip()))
        return proc.stdout

    def _free_tid(self):
        used = {t.tid for t in self._targets.values()}
        tid = 1
        while tid in used:
            tid += 1
        return tid

    def _create_target(self, si_uuid, target_iqn, backing_path):
        if not os.path.exists(backing_path):
            raise TgtError('no backing file %s' % backing_path)
        target = _Target(self._free_tid(), target_iqn, backing_path)
        self._tgtadm(['--op', 'new', '--mode', 'target',
                      '--tid', str(target.tid), '--targetname', target_iqn])
        try:
            # The LUN comes before the ACL: whoever may log in finds the
            # volume at once. Until then the empty ACL admits nobody.
            self._tgtadm(['--op', 'new', '--mode', 'logicalunit',
                          '--tid', str(target.tid),
                          '--lun', str(VOLUME_LUN),
                          '--backing-store', backing_path])
        except TgtError:
            try:
                self._delete_target(target)
            except TgtError as e:
                LOG.warning('could not remove half-made target %s: %s',
                            target_iqn, e)
            raise
        self._targets[si_uuid] = target
        return target

    def _delete_target(self, target):
        # --force: tgt otherwise refuses while an initiator is logged in,
        # and an unexport must take the volume away from every host.
        self._tgtadm(['--op', 'delete', '--force', '--mode', 'target',
                      '--tid', str(target.tid)])
        LOG.debug('deleted tgt target %d %s', target.tid, target.iqn)

    def _reopen(self, target, backing_path):
        # One request: tgtd takes the LUN offline, reopens the backing
        # store (reading its size) and brings it back before it handles
        # the next command. See the module docstring.
        self._tgtadm(['--op', 'update', '--mode', 'logicalunit',
                      '--tid', str(target.tid), '--lun', str(VOLUME_LUN),
                      '--params',
                      'online=0,path=%s,online=1' % backing_path])
        target.backing = backing_path

    def _close_sessions(self, target, initiators):
        """End the sessions of initiators no longer in the ACL."""
        shown = parse_show_targets(
            self._tgtadm(['--op', 'show', '--mode', 'target'])).get(
                target.iqn)
        for session in (shown or {}).get('sessions', ()):
            if session['initiator'] not in initiators:
                continue
            for conn in session['connections']:
                try:
                    self._tgtadm(['--op', 'delete', '--mode', 'conn',
                                  '--tid', str(target.tid),
                                  '--sid', str(session['sid']),
                                  '--cid', str(conn['cid'])])
                    LOG.info('closed the session of %s with %s: no longer '
                             'in its ACL', session['initiator'], target.iqn)
                except TgtError as e:
                    # It may have logged out meanwhile.
                    LOG.debug('could not close a session: %s', e)

    def _all_targets_in_tgtd(self):
        known = list(self._targets.values())
        try:
            shown = parse_show_targets(
                self._tgtadm(['--op', 'show', '--mode', 'target']))
        except TgtError as e:
            LOG.warning('cannot list tgtd targets: %s', e)
            return known
        tids = {t.tid for t in known}
        for iqn, entry in shown.items():
            if entry['tid'] not in tids:
                known.append(_Target(entry['tid'], iqn, entry['backing']))
        return known


# Parsing tgtadm's output

def parse_show_targets(text):
    """Parse ``tgtadm --lld iscsi --op show --mode target``.

    :returns: ``{target_iqn: {...}}`` with

        - ``tid``: tgt's target id;
        - ``state``: e.g. ``"ready"``;
        - ``luns``: ``{lun: {"type", "size_mb", "block_size", "online",
          "backing"}}`` (``backing`` None for the controller);
        - ``backing`` and ``lun_size_mb``: those of LUN 1, the volume
          (None without it). tgt shows sizes only in decimal megabytes,
          rounded; ``iscsi-readcapacity16`` tells the exact size;
        - ``acl``: the ACL entries (initiator names) in tgt's order;
        - ``sessions``: ``[{"sid", "initiator", "connections":
          [{"cid", "ip"}]}]``.
    """
    targets = {}
    target = section = lun = session = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _TARGET_RE.match(line)
        if match and not raw[0].isspace():
            target = {'tid': int(match.group('tid')), 'state': None,
                      'luns': {}, 'backing': None, 'lun_size_mb': None,
                      'acl': [], 'sessions': []}
            targets[match.group('iqn')] = target
            section = lun = session = None
            continue
        if target is None:
            continue
        if line in _SECTIONS:
            section = _SECTIONS[line]
            continue
        key, _sep, value = line.partition(':')
        value = value.strip()
        if section == 'system' and key == 'State':
            target['state'] = value
        elif section == 'nexus':
            if key == 'I_T nexus':
                session = {'sid': int(value), 'initiator': None,
                           'connections': []}
                target['sessions'].append(session)
            elif session is None:
                continue
            elif key == 'Initiator':
                session['initiator'] = value.split()[0] if value else None
            elif key == 'Connection':
                session['connections'].append({'cid': int(value),
                                               'ip': None})
            elif key == 'IP Address' and session['connections']:
                session['connections'][-1]['ip'] = value
        elif section == 'lun':
            if key == 'LUN':
                lun = {'type': None, 'size_mb': None, 'block_size': None,
                       'online': None, 'backing': None}
                target['luns'][int(value)] = lun
            elif lun is None:
                continue
            elif key == 'Type':
                lun['type'] = value
            elif key == 'Size':
                size = re.match(r'(\d+) MB, Block size: (\d+)', value)
                if size:
                    lun['size_mb'] = int(size.group(1))
                    lun['block_size'] = int(size.group(2))
            elif key == 'Online':
                lun['online'] = value == 'Yes'
            elif key == 'Backing store path':
                lun['backing'] = value if value not in ('', 'None') else None
        elif section == 'acl':
            # Initiator names contain colons: the whole line is the entry.
            target['acl'].append(line)
    for target in targets.values():
        volume = target['luns'].get(VOLUME_LUN)
        if volume is not None:
            target['backing'] = volume['backing']
            target['lun_size_mb'] = volume['size_mb']
    return targets


def parse_show_portals(text):
    """Parse ``tgtadm --lld iscsi --op show --mode portal``: portal names.

    ``Portal: 127.0.0.1:3260,1`` gives ``127.0.0.1:3260``.
    """
    portals = []
    for line in text.splitlines():
        match = _PORTAL_RE.match(line.strip())
        if match:
            portals.append(match.group('portal'))
    return portals


def portal_name(ip, port=ISCSI_PORT):
    """``ip:port`` as iSCSI and tgt write it (``[::1]:3260`` for IPv6)."""
    return names.portal(ip, port)


def _portal_key(portal):
    host, _sep, port = portal.rpartition(':')
    return ipaddress.ip_address(host.strip('[]')), int(port)


# Addresses and ports

def check_portal_free(ip, port=ISCSI_PORT):
    """Raise TgtError if nothing of ours could listen on ``ip:port``.

    tgtd would not fail on a busy portal: it would listen on every
    address instead, so this is checked first (and again after start).
    """
    family = socket.AF_INET6 if ':' in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As tgtd does: a closed connection's TIME_WAIT must not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
    except OSError as e:
        raise TgtError('cannot listen on iSCSI portal %s: %s' % (
            portal_name(ip, port), e.strerror or e))
    finally:
        sock.close()


def portal_free(ip, port=ISCSI_PORT):
    """Whether ``ip:port`` can be listened on."""
    try:
        check_portal_free(ip, port)
    except TgtError:
        return False
    return True


def pick_loopback_ips(count=2, port=ISCSI_PORT, rng=None, attempts=100):
    """``count`` addresses 127.x.y.1, 127.x.y.2, ... free on ``port``.

    ``x`` and ``y`` are random, so simulators started at the same time
    pick different ones; every address of 127.0.0.0/8 is on ``lo``.
    """
    rng = rng or random.Random()
    for _attempt in range(attempts):
        # 127.0.y.z stays clear: 127.0.0.1 and friends are in common use.
        x, y = rng.randint(1, 254), rng.randint(0, 255)
        ips = ['127.%d.%d.%d' % (x, y, n + 1) for n in range(count)]
        if all(portal_free(ip, port) for ip in ips):
            return ips
    raise TgtError('no free loopback addresses for iSCSI portals after %d '
                   'tries' % attempts)


def _lock_path(control_port):
    return os.path.join(TGTD_RUN_DIR, 'socket.%d.lock' % control_port)


def _control_port_free(control_port):
    """Whether no tgtd holds the lock of ``control_port``."""
    try:
        fd = os.open(_lock_path(control_port), os.O_WRONLY | os.O_CREAT,
                     0o644)
    except OSError:
        return False
    try:
        # tgtd takes a POSIX lock on the first byte (lockf F_TLOCK).
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1)
    except OSError:
        return False
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1)
        return True
    finally:
        os.close(fd)


def _free_control_port(rng):
    low, high = CONTROL_PORTS
    start = rng.randrange(low, high)
    for offset in range(high - low):
        port = low + (start - low + offset) % (high - low)
        if _control_port_free(port):
            return port
    raise TgtError('no free tgtd control port in %d-%d' % CONTROL_PORTS)


def _holds_open(pid, path):
    """Whether process ``pid`` has ``path`` open."""
    fd_dir = '/proc/%d/fd' % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(os.path.join(fd_dir, name)) == path:
                return True
        except OSError:
            continue
    return False


# The child process

_libc = None


def _die_with_parent(parent_pid):
    """A preexec_fn that makes the kernel kill the child with its parent.

    PR_SET_PDEATHSIG fires when the *thread* that forked ends.
    """
    global _libc
    if _libc is None:
        # Loaded here, not in the child: after fork only the call is safe.
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                            use_errno=True)
    prctl = _libc.prctl

    def preexec():
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died before the request took effect.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


# Logs

def _file_size(path):
    try:
        return os.path.getsize(path) if path else 0
    except OSError:
        return 0


def _log_since(path, offset, limit=4000):
    if not path:
        return ''
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return text[-limit:]


def _tail_note(tail):
    # tgtd's usual complaints about RDMA and limits say nothing here.
    lines = [line for line in tail.splitlines()
             if 'iser_ib_init' not in line and "can't adjust" not in line]
    return ('; tgtd said:\n' + '\n'.join(lines)) if lines else ''
