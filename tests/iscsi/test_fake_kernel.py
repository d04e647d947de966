"""os-brick's real ISCSIConnector against a real tgtd, on the fake kernel.

Each test gets a FakeKernel and a tgtd of its own (conftest.py).  The host
LUN 0 that the connection properties name is tgt's LUN 1 (fake_kernel.py,
"LUN mapping").
"""

import os
import stat
import subprocess

import pytest

from os_brick import exception


MiB = 1 << 20


def props(target, portal=0, lun=0, iqn=None, **extra):
    """Connection properties as cinder's iSCSI drivers give them."""
    result = {'target_discovered': False,
              'target_portal': (target.portals[portal]
                                if isinstance(portal, int) else portal),
              'target_iqn': iqn or target.iqn,
              'target_lun': lun,
              'discard': False}
    result.update(extra)
    return result


def multipath_props(target, lun=0):
    result = props(target, lun=lun)
    result.update(target_portals=list(target.portals),
                  target_iqns=[target.iqn] * len(target.portals),
                  target_luns=[lun] * len(target.portals))
    return result


def blockdev_size(path):
    return int(subprocess.run(['blockdev', '--getsize64', path],
                              capture_output=True, text=True,
                              check=True).stdout)


def iscsiadm(*args):
    return subprocess.run(['iscsiadm'] + list(args), capture_output=True,
                          text=True)


def test_connect_write_read_extend_disconnect(fake_kernel, tgt_target, brick):
    conn = brick()
    con_props = props(tgt_target)
    info = conn.connect_volume(con_props)

    path = info['path']
    assert info['type'] == 'block'
    assert path.startswith('/dev/sd')
    assert stat.S_ISBLK(os.stat(path).st_mode)
    [dev] = fake_kernel.devices()
    assert '/dev/' + dev['name'] == path
    # tgt's NAA designator of tid/LUN 1, as udev's scsi_id shows it
    assert info['scsi_wwn'] == dev['udev_id']
    assert info['scsi_wwn'].startswith('36')
    assert info['scsi_wwn'].endswith('%04x0001' % tgt_target.tid)
    assert dev['target_lun'] == 1 and dev['lun'] == 0
    by_path = '/dev/disk/by-path/ip-%s-iscsi-%s-lun-0' % (
        tgt_target.portals[0], tgt_target.iqn)
    assert os.path.realpath(by_path) == path
    assert blockdev_size(path) == 64 * MiB

    # Bytes written through the device are the LUN file's bytes ...
    payload = os.urandom(3 * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, payload, 5 * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(tgt_target.lun_file, 'rb') as f:
        f.seek(5 * MiB)
        assert f.read(len(payload)) == payload
    # ... and the other way round.
    other = os.urandom(4096)
    with open(tgt_target.lun_file, 'r+b') as f:
        f.seek(7 * MiB)
        f.write(other)
    subprocess.run(['blockdev', '--flushbufs', path], check=True)
    with open(path, 'rb') as f:
        f.seek(7 * MiB)
        assert f.read(len(other)) == other

    # Extend: the target grows the LUN, os-brick rescans.
    tgt_target.grow(96 * MiB)
    assert conn.extend_volume(con_props) == 96 * MiB
    assert blockdev_size(path) == 96 * MiB
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, payload, 90 * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(tgt_target.lun_file, 'rb') as f:
        f.seek(90 * MiB)
        assert f.read(len(payload)) == payload

    conn.disconnect_volume(con_props, info)
    assert fake_kernel.leftovers() == {}
    assert not os.path.exists(path)


def _login_failures(fake_kernel):
    return [line.split()[1:] for line in fake_kernel.calls()
            if line.split()[1] == 'login-failed']


def test_initiator_not_in_acl_fails_and_leaves_nothing(fake_kernel,
                                                       tgt_target, brick):
    fake_kernel.set_initiator_name('iqn.1993-08.org.debian:01:intruder')
    conn = brick()
    with pytest.raises(exception.VolumeDeviceNotFound):
        conn.connect_volume(props(tgt_target))
    assert fake_kernel.leftovers() == {}
    failures = _login_failures(fake_kernel)
    # tgt refuses an initiator missing from the ACL with "target not
    # found" (0x0203), which open-iscsi reports as exit code 19.
    assert failures and all(f[4] == 'iqn.1993-08.org.debian:01:intruder' and
                            f[5] == '19' for f in failures)
    assert 'Target not found' in ' '.join(failures[0])


def test_wrong_target_iqn_fails_cleanly(fake_kernel, tgt_target, brick):
    conn = brick()
    with pytest.raises(exception.VolumeDeviceNotFound):
        conn.connect_volume(props(tgt_target, iqn=tgt_target.iqn + '-gone'))
    assert fake_kernel.leftovers() == {}
    assert {f[5] for f in _login_failures(fake_kernel)} == {'19'}


def test_wrong_portal_fails_cleanly(fake_kernel, tgt_target, brick):
    nowhere = tgt_target.portals[0].replace('.1:3260', '.9:3260')
    conn = brick()
    with pytest.raises(exception.VolumeDeviceNotFound):
        conn.connect_volume(props(tgt_target, portal=nowhere))
    assert fake_kernel.leftovers() == {}
    assert {f[5] for f in _login_failures(fake_kernel)} == {'8'}


def test_wrong_lun_fails_and_leaves_nothing(fake_kernel, tgt_target, brick,
                                            fast_brick_clock):
    conn = brick(device_scan_attempts=1)
    with pytest.raises(exception.VolumeDeviceNotFound):
        conn.connect_volume(props(tgt_target, lun=5))
    assert fake_kernel.leftovers() == {}
    scans = [line for line in fake_kernel.calls()
             if line.split()[1] == 'write' and line.endswith("'- - 5'")]
    # os-brick's three tries, each with its manual-scan-mode first scan and
    # device_scan_attempts + 1 more; every login worked, but tgt's LUN 6
    # is not there.
    assert len(scans) == 9
    assert not _login_failures(fake_kernel)


def test_chap(fake_kernel, tgt_target, brick):
    tgt_target.tgtadm('--op', 'new', '--mode', 'account', '--user', 'glance',
                      '--password', 'sekrit-12chars')
    tgt_target.tgtadm('--op', 'bind', '--mode', 'account', '--tid',
                      str(tgt_target.tid), '--user', 'glance')
    conn = brick()
    good = props(tgt_target, auth_method='CHAP', auth_username='glance',
                 auth_password='sekrit-12chars')
    info = conn.connect_volume(good)
    assert blockdev_size(info['path']) == 64 * MiB
    conn.disconnect_volume(good, info)
    assert fake_kernel.leftovers() == {}

    bad = dict(good, auth_password='wrong-password')
    with pytest.raises(exception.VolumeDeviceNotFound):
        conn.connect_volume(bad)
    assert fake_kernel.leftovers() == {}
    # Authentication failure: open-iscsi's 24.
    assert {f[5] for f in _login_failures(fake_kernel)} == {'24'}


def test_iscsiadm_login_exit_codes(fake_kernel, tgt_target):
    portal, iqn = tgt_target.portals[0], tgt_target.iqn
    node = ['-m', 'node', '-T', iqn, '-p', portal]
    res = iscsiadm(*(node + ['--login']))
    assert (res.returncode, res.stderr) == (21, 'iscsiadm: No records found\n')
    assert iscsiadm(*(node + ['--op', 'new'])).returncode == 0

    res = iscsiadm(*(node + ['--login']))
    assert res.returncode == 0, res.stderr
    assert res.stdout == (
        'Logging in to [iface: default, target: %s, portal: %s]\n'
        'Login to [iface: default, target: %s, portal: %s] successful.\n'
        % (iqn, portal.replace(':', ','), iqn, portal.replace(':', ',')))
    res = iscsiadm(*(node + ['--login']))
    assert res.returncode == 15
    res = iscsiadm(*(node + ['--op', 'delete']))
    assert res.returncode == 15  # a session uses the record
    assert iscsiadm(*(node + ['--logout'])).returncode == 0
    res = iscsiadm(*(node + ['--logout']))
    assert (res.returncode, res.stderr) == (
        21, 'iscsiadm: No matching sessions found\n')

    fake_kernel.set_initiator_name('iqn.1993-08.org.debian:01:intruder')
    res = iscsiadm(*(node + ['--login']))
    assert res.returncode == 19
    assert res.stderr.splitlines()[1] == (
        'iscsiadm: initiator reported error (19 - encountered '
        'non-retryable iSCSI login failure)')
    assert iscsiadm('-m', 'session').returncode == 21
    assert iscsiadm(*(node + ['--op', 'delete'])).returncode == 0
    assert fake_kernel.leftovers() == {}


def test_multipath_without_multipathd_uses_one_path(fake_kernel, tgt_target,
                                                    brick, fast_brick_clock):
    conn = brick(use_multipath=True)
    con_props = multipath_props(tgt_target)
    info = conn.connect_volume(con_props)
    sessions = fake_kernel.sessions()
    devices = fake_kernel.devices()
    # Both portals logged in and both paths came up, but with no
    # multipathd there is no dm: os-brick returns one of the paths.
    assert sorted('%s:%d' % (s['ip'], s['port']) for s in sessions) == \
        sorted(tgt_target.portals)
    assert len(devices) == 2
    assert len({d['udev_id'] for d in devices}) == 1
    assert info['path'] in ['/dev/' + d['name'] for d in devices]
    assert 'multipath_id' not in info
    assert info['scsi_wwn'] == devices[0]['udev_id']
    assert blockdev_size(info['path']) == 64 * MiB
    conn.disconnect_volume(con_props, info)
    assert fake_kernel.leftovers() == {}


@pytest.mark.fake_kernel(multipathd=True)
def test_multipath_with_fake_multipathd(fake_kernel, tgt_target, brick):
    conn = brick(use_multipath=True)
    con_props = multipath_props(tgt_target)
    info = conn.connect_volume(con_props)
    assert info['path'] == '/dev/dm-0'
    wwn = fake_kernel.devices()[0]['udev_id']
    assert info['multipath_id'] == info['scsi_wwn'] == wwn
    assert len(fake_kernel.sessions()) == 2
    payload = os.urandom(8192)
    fd = os.open(info['path'], os.O_RDWR)
    try:
        os.pwrite(fd, payload, 3 * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(tgt_target.lun_file, 'rb') as f:
        f.seek(3 * MiB)
        assert f.read(len(payload)) == payload

    tgt_target.grow(80 * MiB)
    assert conn.extend_volume(con_props) == 80 * MiB
    assert blockdev_size(info['path']) == 80 * MiB

    conn.disconnect_volume(con_props, info)
    assert fake_kernel.leftovers() == {}


def test_sendtargets_discovery(fake_kernel, tgt_target, brick,
                               fast_brick_clock):
    conn = brick(use_multipath=True)
    con_props = props(tgt_target)
    info = conn.connect_volume(con_props)
    # tgt answers SendTargets with the portal asked only: one path.
    [session] = fake_kernel.sessions()
    assert '%s:%d' % (session['ip'], session['port']) == \
        tgt_target.portals[0]
    assert info['path'] == '/dev/' + fake_kernel.devices()[0]['name']
    assert conn._get_discoverydb_portals(con_props) == [
        (tgt_target.portals[0], tgt_target.iqn, 0)]
    conn.disconnect_volume(con_props, info)
    assert fake_kernel.leftovers() == {}


def test_two_luns_share_one_session(fake_kernel, tgt_target, brick,
                                    tmp_path):
    second = str(tmp_path / 'lun2.img')
    with open(second, 'wb') as f:
        f.truncate(32 * MiB)
    tgt_target.add_lun(2, second)
    conn = brick()
    first_props, second_props = props(tgt_target), props(tgt_target, lun=1)
    first = conn.connect_volume(first_props)
    other = conn.connect_volume(second_props)
    assert len(fake_kernel.sessions()) == 1
    assert blockdev_size(first['path']) == 64 * MiB
    assert blockdev_size(other['path']) == 32 * MiB
    assert first['scsi_wwn'] != other['scsi_wwn']

    conn.disconnect_volume(first_props, first)
    # The session stays for the other LUN.
    assert [d['lun'] for d in fake_kernel.devices()] == [1]
    assert len(fake_kernel.sessions()) == 1
    conn.disconnect_volume(second_props, other)
    assert fake_kernel.leftovers() == {}


def test_iscsiadm_output_matches_os_brick_parsers(fake_kernel, tgt_target,
                                                  brick):
    """os-brick's own parsers read the stand-in iscsiadm's output."""
    conn = brick()
    portal, iqn = tgt_target.portals[0], tgt_target.iqn
    con_props = props(tgt_target)

    assert conn.get_connector_properties('sudo') == {
        'initiator': fake_kernel.initiator_name}
    assert conn._get_iscsi_nodes() == []
    assert conn._get_iscsi_sessions_full() == []
    out, err = conn._run_iscsiadm(con_props, (), check_exit_code=(0, 21))
    assert (out, err) == ('', 'iscsiadm: No records found\n')
    out, err = conn._run_iscsiadm(con_props, ('--interface', 'default',
                                              '--op', 'new'))
    assert err == ''
    assert out == ('New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] '
                   '%s,-1 %s] added\n' % (portal.replace(':', ','), iqn))
    assert conn._get_iscsi_nodes() == [(portal, iqn)]
    out, __ = conn._run_iscsiadm(con_props, ())
    assert out.startswith('# BEGIN RECORD ')
    assert 'node.name = %s\n' % iqn in out
    assert 'node.session.scan = auto\n' in out
    assert conn._iscsiadm_update(con_props, 'node.session.scan',
                                 'manual')[1] == ''
    assert conn._get_node_startup_values(con_props) == {iqn: 'manual'}
    assert conn._validate_iface_transport('bogus') == 'default'

    session_id, manual_scan = conn._connect_to_iscsi_portal(con_props)
    assert manual_scan is True
    assert conn._get_node_startup_values(con_props) == {iqn: 'automatic'}
    out, __ = conn._run_iscsi_session()
    assert out == 'tcp: [%s] %s,1 %s (non-flash)\n' % (
        session_id, portal, iqn)
    assert conn._get_iscsi_sessions_full() == [
        ('tcp:', session_id, portal, '1', iqn)]
    assert conn._get_iscsi_sessions() == [portal]

    linuxscsi = conn._linuxscsi
    host = str(fake_kernel.sessions()[0]['host'])
    assert linuxscsi.get_hctl(session_id, 0) == (host, '-', '-', 0)
    linuxscsi.scan_iscsi(host, '-', '-', 0)
    device = linuxscsi.device_name_by_hctl(session_id, (host, '-', '-', 0))
    assert device == fake_kernel.devices()[0]['name']
    assert linuxscsi.get_hctl(session_id, 0) == (host, '0', '0', 0)
    # the real lsscsi reads the fake sysfs
    assert linuxscsi.get_device_info('/dev/' + device) == {
        'device': '/dev/' + device, 'host': host, 'channel': '0', 'id': '0',
        'lun': '0'}
    wwn = fake_kernel.devices()[0]['udev_id']
    assert linuxscsi.get_sysfs_wwn([device]) == wwn
    assert linuxscsi.get_scsi_wwn('/dev/' + device) == wwn
    assert conn._get_connection_devices(con_props,
                                        is_disconnect_call=True) == {
        (portal, iqn): ({device}, set())}
    assert conn.get_volume_paths(con_props) == [
        '/dev/disk/by-path/ip-%s-iscsi-%s-lun-0' % (portal, iqn)]

    out, __ = conn._run_iscsiadm_bare(['-m', 'discoverydb', '-o', 'show',
                                       '-P', 1])
    assert out.startswith('SENDTARGETS:\nNo targets found.\niSNS:\n')
    out, __ = conn._run_iscsiadm_bare(
        ['-m', 'discovery', '-t', 'sendtargets', '-I', 'default', '-p',
         portal])
    assert conn._get_target_portals_from_iscsiadm_output(out) == (
        [portal], [iqn])

    conn.disconnect_volume(con_props, {'path': '/dev/' + device})
    assert fake_kernel.leftovers() == {}
