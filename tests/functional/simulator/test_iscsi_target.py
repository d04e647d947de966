"""The simulator's real iSCSI target (``serve --iscsi-target``).

A simulator process is driven through its REST API (the SDK) and a real
initiator checks what it serves: libiscsi's tools (``iscsi-ls``,
``iscsi-readcapacity16``, ``iscsi-inq``) and, for data and for sessions
that stay logged in, libiscsi itself through ctypes. tgt's LUN 0 is its
controller; the volume is LUN 1 (see ``iscsi_target``'s docstring).

These need root and the Debian packages ``tgt`` and ``libiscsi-bin``; CI
has all three.
"""

import ctypes
import ctypes.util
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

from datera_edf_sim import dataplane
from datera_edf_sim import fixture
from datera_edf_sim import iscsi_target
from datera_glance_dev import polling
from tests.functional.simulator import helpers
from tests.functional.simulator.helpers import HOST1
from tests.functional.simulator.helpers import HOST2
from tests import sdk_helpers

GiB = helpers.GiB
LUN = iscsi_target.VOLUME_LUN
_TOOLS = ('tgtd', 'tgtadm', 'iscsi-ls', 'iscsi-readcapacity16', 'iscsi-inq')


def _skip_reason():
    if os.geteuid() != 0:
        return 'the iSCSI target (tgtd) needs root (CI runs as root)'
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return ('%s not installed: apt-get install tgt libiscsi-bin'
                % ', '.join(missing))
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None,
                                reason=_skip_reason() or '')


@pytest.fixture
def sim(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'edf-sim'),
                                   iscsi_target=True) as sim:
        yield sim


@pytest.fixture
def api(sim):
    return _api(sim)


def _api(sim):
    api = sdk_helpers.make_api(sim)
    helpers.register_host(api, HOST1)
    helpers.register_host(api, HOST2)
    return api


def _export(api, size=1, hosts=(HOST1,)):
    """An online app instance exported to ``hosts``: (id, iqn, ips)."""
    ai = helpers.create_ai(api, size=size)
    for host in hosts:
        helpers.allow(api, ai['id'], host)
    helpers.set_state(api, ai['id'], 'online')
    access = helpers.storage_instance(api, ai['id'])['access']
    return ai['id'], access['iqn'], list(access['ips'])


def _grow(api, ai_id, size):
    helpers.storage_instance(api, ai_id).volumes.get(
        'volume-1', tenant='/root').set(size=size, tenant='/root')


# The initiator side: libiscsi's tools

def _run(args):
    return subprocess.run(args, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def _listed(initiator, ip):
    """``{target_iqn: {lun: type}}`` that ``iscsi-ls`` shows ``initiator``."""
    proc = _run(['iscsi-ls', '-s', '-i', initiator, 'iscsi://%s' % ip])
    assert proc.returncode == 0, proc.stderr
    found, target = {}, None
    for line in proc.stdout.splitlines():
        match = re.match(r'Target:(\S+) Portal:', line)
        if match:
            target = found.setdefault(match.group(1), {})
            continue
        match = re.match(r'Lun:(\d+)\s+Type:(\S+)', line)
        if match and target is not None:
            target[int(match.group(1))] = match.group(2)
    return found


def _readcapacity(initiator, ip, iqn, lun=LUN):
    return _run(['iscsi-readcapacity16', '-i', initiator,
                 'iscsi://%s/%s/%d' % (ip, iqn, lun)])


def _capacity(initiator, ip, iqn):
    """The LUN's size in bytes as the initiator reads it."""
    proc = _readcapacity(initiator, ip, iqn)
    assert proc.returncode == 0, proc.stderr
    return int(re.search(r'Total size:(\d+)', proc.stdout).group(1))


def _refused(initiator, ip, iqn):
    proc = _readcapacity(initiator, ip, iqn)
    return proc.returncode != 0 and 'Target not found' in proc.stderr


def _tgt(sim):
    """What the simulator's tgtd has, parsed."""
    proc = _run(['tgtadm', '-C', str(sim.info['iscsi_target']
                                     ['control_port']),
                 '--lld', 'iscsi', '--op', 'show', '--mode', 'target'])
    assert proc.returncode == 0, proc.stderr
    return iscsi_target.parse_show_targets(proc.stdout)


def _mb(size):
    """A size as tgt shows it: decimal megabytes, rounded."""
    return round(size / 10 ** 6)


def _gone(pid):
    """Whether a process has exited (a zombie counts as exited)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def _children(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
        return f.read().split()


def _listening(ip, port=dataplane.ISCSI_PORT):
    """Whether a socket listens on exactly ``ip:port`` (IPv4).

    Read from /proc/net/tcp, not by connecting: a tgtd that could not
    bind its portals listens on every address instead, and another
    test's could answer for ours.
    """
    wanted = '%08X:%04X' % (
        int.from_bytes(socket.inet_aton(ip), 'little'), port)
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == '0A':  # LISTEN
                return True
    return False


# The initiator side: libiscsi through ctypes, for data and open sessions

class _Iovec(ctypes.Structure):
    _fields_ = [('iov_base', ctypes.c_void_p), ('iov_len', ctypes.c_size_t)]


def _libiscsi():
    lib = ctypes.CDLL(ctypes.util.find_library('iscsi') or 'libiscsi.so.7')
    ptr, cstr, cint = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    io_args = [ptr, cint, ctypes.c_uint32, ctypes.c_uint32, cint, cint,
               cint, cint, cint, cint, ctypes.POINTER(_Iovec), cint]
    for name, restype, argtypes in (
            ('iscsi_create_context', ptr, [cstr]),
            ('iscsi_destroy_context', cint, [ptr]),
            ('iscsi_get_error', cstr, [ptr]),
            ('iscsi_set_targetname', cint, [ptr, cstr]),
            ('iscsi_set_session_type', cint, [ptr, cint]),
            ('iscsi_set_timeout', cint, [ptr, cint]),
            ('iscsi_set_noautoreconnect', None, [ptr, cint]),
            ('iscsi_full_connect_sync', cint, [ptr, cstr, cint]),
            ('iscsi_logout_sync', cint, [ptr]),
            ('iscsi_read10_iov_sync', ptr, io_args),
            ('iscsi_write10_sync', ptr,
             [ptr, cint, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32,
              cint, cint, cint, cint, cint, cint]),
            ('scsi_free_scsi_task', None, [ptr])):
        func = getattr(lib, name)
        func.restype, func.argtypes = restype, argtypes
    return lib


class Session(object):
    """One logged-in libiscsi session to a LUN, kept open.

    It does not reconnect by itself, so a session the target ends stays
    ended.
    """

    _NORMAL = 2  # ISCSI_SESSION_NORMAL
    BLOCK = 512

    def __init__(self, initiator, ip, iqn, lun=LUN):
        self.lib = _libiscsi()
        self.lun = lun
        self.ctx = self.lib.iscsi_create_context(initiator.encode())
        assert self.ctx, 'iscsi_create_context failed'
        self.lib.iscsi_set_targetname(self.ctx, iqn.encode())
        self.lib.iscsi_set_session_type(self.ctx, self._NORMAL)
        self.lib.iscsi_set_timeout(self.ctx, 30)
        self.lib.iscsi_set_noautoreconnect(self.ctx, 1)
        portal = iscsi_target.portal_name(ip).encode()
        if self.lib.iscsi_full_connect_sync(self.ctx, portal, lun) != 0:
            error = self._error()
            self.lib.iscsi_destroy_context(self.ctx)
            raise OSError('login failed: %s' % error)

    def _error(self):
        return (self.lib.iscsi_get_error(self.ctx) or b'').decode()

    def _check(self, task):
        if not task:
            raise OSError(self._error())
        # struct scsi_task starts with its SCSI status (0: GOOD).
        status = ctypes.cast(task, ctypes.POINTER(ctypes.c_int))[0]
        self.lib.scsi_free_scsi_task(task)
        if status != 0:
            raise OSError('SCSI status %#x: %s' % (status, self._error()))

    def read(self, offset, length):
        # Into our buffer: the task's own data buffer is not reachable
        # without libiscsi's headers.
        buf = ctypes.create_string_buffer(length)
        iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), length)
        self._check(self.lib.iscsi_read10_iov_sync(
            self.ctx, self.lun, offset // self.BLOCK, length, self.BLOCK,
            0, 0, 0, 0, 0, ctypes.byref(iov), 1))
        return buf.raw

    def write(self, offset, data):
        self._check(self.lib.iscsi_write10_sync(
            self.ctx, self.lun, offset // self.BLOCK, bytes(data), len(data),
            self.BLOCK, 0, 0, 0, 0, 0))

    def close(self):
        if self.ctx:
            self.lib.iscsi_logout_sync(self.ctx)
            self.lib.iscsi_destroy_context(self.ctx)
            self.ctx = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _sessions(sim, iqn):
    return [s['initiator'] for s in _tgt(sim).get(iqn, {}).get(
        'sessions', [])]


# The ready line and the portals

def test_ready_line_names_portals_on_fresh_loopback_addresses(sim, api):
    info = sim.info['iscsi_target']
    _ai_id, _iqn, ips = _export(api)
    assert info['portals'] == ['%s:3260' % ip for ip in ips]
    [one, two] = ips
    assert re.match(r'^127\.\d+\.\d+\.1$', one)
    assert two == one[:-1] + '2'
    assert isinstance(info['control_port'], int)
    assert not _gone(info['pid'])
    assert all(_listening(ip) for ip in ips)


def test_data_ips_given_are_the_portals(tmp_path):
    ips = iscsi_target.pick_loopback_ips(2)
    with fixture.running_simulator(str(tmp_path / 'sim'), iscsi_target=True,
                                   data_ips=ips) as sim:
        assert sim.info['iscsi_target']['portals'] == [
            '%s:3260' % ip for ip in ips]
        _ai_id, iqn, access_ips = _export(_api(sim))
        assert access_ips == ips
        assert iqn in _listed(HOST1, ips[1])


def test_without_the_option_there_is_no_target(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   iscsi_target=False) as sim:
        assert sim.info['iscsi_target'] is None
        assert _children(sim.process.pid) == []
        assert not os.path.exists(os.path.join(sim.data_dir, 'tgtd.log'))


# What an initiator sees

def test_an_exported_volume_is_seen_at_every_portal(sim, api):
    _ai_id, iqn, ips = _export(api, size=2)
    for ip in ips:
        # tgt's controller is LUN 0, the volume LUN 1.
        assert _listed(HOST1, ip)[iqn] == {0: 'STORAGE_ARRAY_CONTROLLER',
                                           1: 'DIRECT_ACCESS'}
        assert _capacity(HOST1, ip, iqn) == 2 * GiB
    inq = _run(['iscsi-inq', '-i', HOST1, 'iscsi://%s/%s/%d' % (
        ips[0], iqn, LUN)])
    assert inq.returncode == 0, inq.stderr
    assert 'Peripheral Device Type:DIRECT_ACCESS' in inq.stdout


def test_an_initiator_outside_the_acl_is_refused(sim, api):
    _ai_id, iqn, ips = _export(api, hosts=[HOST1])
    for ip in ips:
        assert iqn not in _listed(HOST2, ip)
        assert _refused(HOST2, ip, iqn)


def test_acl_changes_are_followed(sim, api):
    ai_id, iqn, [ip, _] = _export(api, hosts=[HOST1])
    helpers.allow(api, ai_id, HOST2)
    assert _capacity(HOST2, ip, iqn) == GiB
    assert _capacity(HOST1, ip, iqn) == GiB
    helpers.disallow(api, ai_id, HOST1)
    assert _refused(HOST1, ip, iqn)
    assert _capacity(HOST2, ip, iqn) == GiB
    assert _tgt(sim)[iqn]['acl'] == [HOST2]


def test_removing_an_initiator_ends_its_session_only(sim, api):
    ai_id, iqn, [ip, _] = _export(api, hosts=[HOST1, HOST2])
    with Session(HOST1, ip, iqn) as one, Session(HOST2, ip, iqn) as two:
        one.read(0, 512)
        assert sorted(_sessions(sim, iqn)) == [HOST1, HOST2]
        helpers.disallow(api, ai_id, HOST1)
        assert _sessions(sim, iqn) == [HOST2]
        with pytest.raises(OSError):
            one.read(0, 512)
        two.read(0, 512)


def test_a_grow_shows_at_the_target_with_a_session_logged_in(sim, api):
    ai_id, iqn, [ip, _] = _export(api, size=1)
    with Session(HOST1, ip, iqn) as session:
        with pytest.raises(OSError):
            session.read(GiB, 512)  # past the end
        [before] = _tgt(sim)[iqn]['sessions']
        _grow(api, ai_id, 3)
        assert _capacity(HOST1, ip, iqn) == 3 * GiB
        # The same session reads the new end, without a new login.
        assert session.read(3 * GiB - 512, 512) == bytes(512)
        [after] = _tgt(sim)[iqn]['sessions']
        assert after['sid'] == before['sid']
    assert _tgt(sim)[iqn]['lun_size_mb'] == _mb(3 * GiB)


def test_offline_removes_the_target_and_online_brings_it_back(sim, api):
    ai_id, iqn, [ip, _] = _export(api)
    # tgt drops a discovery session when it has no target at all; another
    # app instance stays exported so that iscsi-ls has something to list.
    _other_id, other, _ips = _export(api)
    with Session(HOST1, ip, iqn) as session:
        helpers.set_state(api, ai_id, 'offline')
        assert list(_tgt(sim)) == [other]
        with pytest.raises(OSError):
            session.read(0, 512)
    assert list(_listed(HOST1, ip)) == [other]
    assert _refused(HOST1, ip, iqn)
    helpers.set_state(api, ai_id, 'online')
    assert _capacity(HOST1, ip, iqn) == GiB


def test_delete_removes_the_target(sim, api):
    ai_id, iqn, [ip, _] = _export(api)
    other_id, other, _ips = _export(api)
    with Session(HOST1, ip, iqn):
        api.app_instances.get(ai_id, tenant='/root').delete(
            tenant='/root', force=True)
        assert list(_tgt(sim)) == [other]
    assert _refused(HOST1, ip, iqn)
    assert _capacity(HOST1, ip, other) == GiB


def test_data_in_the_volume_file_is_read_over_iscsi_and_back(sim, api):
    ai_id, iqn, ips = _export(api)
    pattern = os.urandom(4096)
    with open(sim.volume_file(ai_id), 'r+b') as f:
        f.seek(GiB // 2)
        f.write(pattern)
    written = os.urandom(8192)
    for ip in ips:
        with Session(HOST1, ip, iqn) as session:
            assert session.read(GiB // 2, 4096) == pattern
            session.write(GiB // 4, written)
    with open(sim.volume_file(ai_id), 'rb') as f:
        f.seek(GiB // 4)
        assert f.read(8192) == written


def test_with_block_devices_the_target_serves_the_file(tmp_path):
    if shutil.which('losetup') is None:
        pytest.skip('losetup is not installed')
    with fixture.running_simulator(str(tmp_path / 'sim'), block_devices=True,
                                   iscsi_target=True) as sim:
        ai_id, iqn, [ip, _] = _export(_api(sim), size=2)
        assert _tgt(sim)[iqn]['backing'] == sim.volume_file(ai_id)
        assert _capacity(HOST1, ip, iqn) == 2 * GiB


# Several simulators, restarts, and the end of tgtd

def test_two_simulators_do_not_interfere(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'a'),
                                   iscsi_target=True) as sim_a, \
            fixture.running_simulator(str(tmp_path / 'b'),
                                      iscsi_target=True) as sim_b:
        info_a = sim_a.info['iscsi_target']
        info_b = sim_b.info['iscsi_target']
        assert info_a['control_port'] != info_b['control_port']
        assert not set(info_a['portals']) & set(info_b['portals'])
        _id_a, iqn_a, [ip_a, _] = _export(_api(sim_a), size=1)
        _id_b, iqn_b, [ip_b, _] = _export(_api(sim_b), size=2)
        assert list(_listed(HOST1, ip_a)) == [iqn_a]
        assert list(_listed(HOST1, ip_b)) == [iqn_b]
        assert _refused(HOST1, ip_b, iqn_a)
        assert list(_tgt(sim_a)) == [iqn_a]
        assert list(_tgt(sim_b)) == [iqn_b]
        sim_a.stop()
        assert _capacity(HOST1, ip_b, iqn_b) == 2 * GiB


def test_a_restart_keeps_the_portals_and_the_exports(sim, api):
    portals = sim.info['iscsi_target']['portals']
    _ai_id, iqn, [ip, _] = _export(api, size=2)
    sim.restart()
    assert sim.info['iscsi_target']['portals'] == portals
    assert _capacity(HOST1, ip, iqn) == 2 * GiB


def test_stopping_the_simulator_stops_tgtd(sim, api):
    pid = sim.info['iscsi_target']['pid']
    control = '/var/run/tgtd/socket.%d' % sim.info['iscsi_target'][
        'control_port']
    _ai_id, iqn, [ip, _] = _export(api)
    assert os.path.exists(control)
    with Session(HOST1, ip, iqn):
        sim.stop()
        # The simulator waits for tgtd before it exits.
        assert _gone(pid)
    assert not _listening(ip)
    # nor are tgtd's IPC socket and lock file left behind
    assert not os.path.exists(control)
    assert not os.path.exists(control + '.lock')


def test_a_simulator_killed_with_sigkill_takes_tgtd_along(sim, api):
    pid = sim.info['iscsi_target']['pid']
    _ai_id, iqn, [ip, _] = _export(api)
    sim.process.kill()
    # tgtd's main thread turns zombie before its I/O threads have let go
    # of the portals: wait for both.
    polling.wait_for(lambda: _gone(pid) and not _listening(ip), timeout=30,
                     message='tgtd %d gone and its portal closed' % pid)
    with pytest.raises(fixture.SimulatorError, match='status -9'):
        sim.stop()
    # A killed simulator cannot remove tgtd's IPC socket and lock file;
    # nobody holds the lock any more, so they are safe to remove.
    control = '/var/run/tgtd/socket.%d' % sim.info['iscsi_target'][
        'control_port']
    for path in (control, control + '.lock'):
        os.unlink(path)


def test_serve_without_tgtd_says_so(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no tgtd there
    proc = subprocess.run(
        [sys.executable, '-m', 'datera_edf_sim.cli', 'serve',
         '--data-dir', str(tmp_path / 'sim'), '--port', '0',
         '--http-port', '0', '--iscsi-target'],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, env=env)
    assert proc.returncode == 1
    assert proc.stdout == ''
    assert 'tgtd not found on PATH' in proc.stderr


# The data plane and TgtTarget in this process

@pytest.fixture
def tgt(tmp_path):
    target = iscsi_target.TgtTarget(iscsi_target.pick_loopback_ips(1),
                                    log_file=str(tmp_path / 'tgtd.log'))
    target.start()
    yield target
    target.close()


def test_the_data_plane_mirrors_exports_into_tgt(tmp_path, tgt):
    plane = dataplane.DataPlane(str(tmp_path / 'data'),
                                str(tmp_path / 'exports'), iscsi_target=tgt)
    target_iqn = 'iqn.2013-05.com.daterainc:tc:01:sn:0123456789abcdef'
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', target_iqn, ['127.0.0.1'], 'vol-a',
                       [HOST1, HOST2])
    shown = tgt.targets()[target_iqn]
    assert shown['backing'] == plane.volume_path('vol-a')
    assert sorted(shown['acl']) == [HOST1, HOST2]
    assert shown['lun_size_mb'] == _mb(GiB)
    plane.sync_exports('si-a', target_iqn, ['127.0.0.1'], 'vol-a', [HOST2])
    assert tgt.targets()[target_iqn]['acl'] == [HOST2]
    plane.grow_volume('vol-a', 2)
    assert tgt.targets()[target_iqn]['lun_size_mb'] == _mb(2 * GiB)
    plane.sync_exports('si-a', target_iqn, ['127.0.0.1'], 'vol-a', [])
    assert tgt.targets() == {}
    plane.sync_exports('si-a', target_iqn, ['127.0.0.1'], 'vol-a', [HOST1])
    plane.delete_volume('vol-a')
    assert tgt.targets() == {}
    plane.create_volume('vol-b', 1)
    plane.sync_exports('si-b', target_iqn, ['127.0.0.1'], 'vol-b', [HOST1])
    pid = tgt.pid
    plane.close()
    assert tgt.pid is None
    assert _gone(pid)


def test_a_failed_tgt_change_leaves_no_export(tmp_path, tgt):
    plane = dataplane.DataPlane(str(tmp_path / 'data'),
                                str(tmp_path / 'exports'), iscsi_target=tgt)
    plane.create_volume('vol-a', 1)
    with pytest.raises(dataplane.DataPlaneError, match='tgt cannot take'):
        plane.sync_exports('si-a', 'iqn.2013-05.x:bad,name', ['127.0.0.1'],
                           'vol-a', [HOST1])
    assert plane.exported_initiators('si-a') == set()
    assert tgt.targets() == {}
    plane.close()


def test_a_busy_portal_is_a_clear_error(tmp_path):
    [ip] = iscsi_target.pick_loopback_ips(1)
    with socket.socket() as busy:
        busy.bind((ip, dataplane.ISCSI_PORT))
        busy.listen()
        target = iscsi_target.TgtTarget([ip])
        with pytest.raises(dataplane.DataPlaneError,
                           match='cannot listen on iSCSI portal %s:3260'
                           % re.escape(ip)):
            target.start()
        assert target.pid is None


def test_tgtadm_errors_carry_its_message(tgt):
    with pytest.raises(dataplane.DataPlaneError,
                       match="tgtadm .* failed .*can't find the target"):
        tgt._tgtadm(['--op', 'delete', '--mode', 'target', '--tid', '99'])
