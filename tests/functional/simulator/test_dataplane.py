"""The simulator's data plane: volume files, loop devices, export links."""

import concurrent.futures
import os
import stat
import subprocess
import threading

import pytest

from datera_edf_sim import dataplane

GiB = 1024 ** 3
TARGET = 'iqn.2013-05.com.daterainc:tc:01:sn:0123456789abcdef'
HOST1 = 'iqn.1993-08.org.debian:01:host1'
HOST2 = 'iqn.1993-08.org.debian:01:host2'
IPS = ['127.0.0.1', '127.0.0.2']

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason='loop devices need root (CI runs as root)')


def link(export_dir, host, ip, target=TARGET):
    return os.path.join(export_dir, host,
                        'ip-%s:3260-iscsi-%s-lun-0' % (ip, target))


@pytest.fixture
def dirs(tmp_path):
    return str(tmp_path / 'data'), str(tmp_path / 'exports')


@pytest.fixture
def plane(dirs):
    dp = dataplane.DataPlane(*dirs)
    yield dp
    dp.close()


@pytest.fixture
def block_plane(dirs):
    if os.geteuid() != 0:
        pytest.skip('loop devices need root (CI runs as root)')
    dp = dataplane.DataPlane(*dirs, block_devices=True)
    yield dp
    dp.close()


def loops_of(path):
    out = subprocess.run(['losetup', '--associated', path], check=True,
                         capture_output=True, text=True).stdout
    return [line.split(':', 1)[0] for line in out.splitlines() if line]


def device_size(path):
    return int(subprocess.run(['blockdev', '--getsize64', path], check=True,
                              capture_output=True, text=True).stdout)


def test_link_name_matches_linux_by_path_naming():
    assert dataplane.export_link_name('10.0.0.5', TARGET) == (
        'ip-10.0.0.5:3260-iscsi-%s-lun-0' % TARGET)


def test_create_volume_makes_sparse_file_of_the_size(plane):
    plane.create_volume('vol-a', 3)
    path = plane.volume_path('vol-a')
    st = os.stat(path)
    assert st.st_size == 3 * GiB
    assert st.st_blocks * 512 < 1024 * 1024


def test_create_volume_again_keeps_data_and_size(plane):
    plane.create_volume('vol-a', 2)
    with open(plane.volume_path('vol-a'), 'r+b') as f:
        f.write(b'keep me')
    plane.create_volume('vol-a', 1)
    assert plane.volume_size('vol-a') == 2 * GiB
    with open(plane.volume_path('vol-a'), 'rb') as f:
        assert f.read(7) == b'keep me'


def test_grow_extends_and_never_shrinks(plane):
    plane.create_volume('vol-a', 1)
    plane.grow_volume('vol-a', 4)
    assert plane.volume_size('vol-a') == 4 * GiB
    plane.grow_volume('vol-a', 2)
    assert plane.volume_size('vol-a') == 4 * GiB


def test_export_links_appear_per_host_and_ip(plane, dirs):
    export_dir = dirs[1]
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1, HOST2])
    for host in (HOST1, HOST2):
        for ip in IPS:
            path = link(export_dir, host, ip)
            assert os.path.islink(path)
            assert os.path.realpath(path) == plane.volume_path('vol-a')
    assert plane.exported_initiators('si-a') == {HOST1, HOST2}


def test_removing_a_host_removes_only_its_links(plane, dirs):
    export_dir = dirs[1]
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1, HOST2])
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    assert os.path.islink(link(export_dir, HOST1, IPS[0]))
    assert not os.path.exists(os.path.join(export_dir, HOST2))
    assert plane.exported_initiators('si-a') == {HOST1}


def test_empty_set_unexports_everything(plane, dirs):
    export_dir = dirs[1]
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1, HOST2])
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [])
    assert os.listdir(export_dir) == []
    assert plane.exported_initiators('si-a') == set()


def test_resync_keeps_links_and_leaves_no_temporary_files(plane, dirs):
    export_dir = dirs[1]
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    assert sorted(os.listdir(os.path.join(export_dir, HOST1))) == sorted(
        os.path.basename(link(export_dir, HOST1, ip)) for ip in IPS)


def test_two_storage_instances_share_a_host_folder(plane, dirs):
    export_dir = dirs[1]
    other = TARGET.replace('0123', '9999')
    plane.create_volume('vol-a', 1)
    plane.create_volume('vol-b', 1)
    plane.sync_exports('si-a', TARGET, IPS[:1], 'vol-a', [HOST1])
    plane.sync_exports('si-b', other, IPS[:1], 'vol-b', [HOST1])
    plane.sync_exports('si-a', TARGET, IPS[:1], 'vol-a', [])
    assert os.listdir(os.path.join(export_dir, HOST1)) == [
        os.path.basename(link(export_dir, HOST1, IPS[0], other))]


def test_delete_volume_unexports_and_removes_file(plane, dirs):
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    plane.delete_volume('vol-a')
    assert not os.path.exists(plane.volume_path('vol-a'))
    assert os.listdir(dirs[1]) == []
    assert plane.exported_initiators('si-a') == set()


def test_data_written_through_a_link_lands_in_the_volume(plane, dirs):
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    with open(link(dirs[1], HOST1, IPS[0]), 'r+b') as f:
        f.seek(GiB - 5)
        f.write(b'tail!')
    with open(plane.volume_path('vol-a'), 'rb') as f:
        f.seek(GiB - 5)
        assert f.read() == b'tail!'


def test_a_new_data_plane_removes_leftover_links(dirs):
    first = dataplane.DataPlane(*dirs)
    first.create_volume('vol-a', 1)
    first.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    # No close(): as after a crash.
    second = dataplane.DataPlane(*dirs)
    assert os.listdir(dirs[1]) == []
    assert second.volume_size('vol-a') == GiB


def test_invalid_initiator_name_is_refused(plane):
    plane.create_volume('vol-a', 1)
    with pytest.raises(dataplane.DataPlaneError):
        plane.sync_exports('si-a', TARGET, IPS, 'vol-a', ['../escape'])


def test_concurrent_syncs_of_many_storage_instances(plane, dirs):
    names = ['%02d' % i for i in range(16)]
    for n in names:
        plane.create_volume('vol-' + n, 1)

    def churn(n):
        target = TARGET[:-2] + n
        for hosts in ([HOST1], [HOST1, HOST2], [HOST2], [HOST1, HOST2]):
            plane.sync_exports('si-' + n, target, IPS, 'vol-' + n, hosts)
        return target

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        targets = list(pool.map(churn, names))
    for host in (HOST1, HOST2):
        assert len(os.listdir(os.path.join(dirs[1], host))) == 2 * len(names)
    for n, target in zip(names, targets):
        assert os.path.realpath(link(dirs[1], HOST2, IPS[1], target)) == (
            plane.volume_path('vol-' + n))


@needs_root
def test_block_devices_export_one_loop_device_shared_by_hosts(
        block_plane, dirs):
    block_plane.create_volume('vol-a', 1)
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1, HOST2])
    devices = {os.path.realpath(link(dirs[1], h, ip))
               for h in (HOST1, HOST2) for ip in IPS}
    assert len(devices) == 1
    device = devices.pop()
    assert stat.S_ISBLK(os.stat(device).st_mode)
    assert loops_of(block_plane.volume_path('vol-a')) == [device]
    assert device_size(device) == GiB


@needs_root
def test_block_device_size_follows_a_grow(block_plane, dirs):
    block_plane.create_volume('vol-a', 1)
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    device = os.path.realpath(link(dirs[1], HOST1, IPS[0]))
    block_plane.grow_volume('vol-a', 3)
    assert device_size(device) == 3 * GiB


@needs_root
def test_loop_devices_do_direct_io_to_their_backing_file(block_plane, dirs):
    """The volume's data is not cached a second time under the file."""
    block_plane.create_volume('vol-a', 1)
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    device = os.path.realpath(link(dirs[1], HOST1, IPS[0]))
    with open('/sys/block/%s/loop/dio' % os.path.basename(device)) as f:
        assert f.read().strip() == '1'


@needs_root
def test_block_device_stops_writes_past_the_end(block_plane, dirs):
    block_plane.create_volume('vol-a', 1)
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    fd = os.open(link(dirs[1], HOST1, IPS[0]), os.O_WRONLY)
    try:
        os.lseek(fd, GiB, os.SEEK_SET)
        with pytest.raises(OSError):
            os.write(fd, b'x' * 4096)
            os.fsync(fd)
    finally:
        os.close(fd)


@needs_root
def test_loop_device_is_freed_when_no_host_has_it(block_plane, dirs):
    block_plane.create_volume('vol-a', 1)
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1, HOST2])
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST2])
    assert len(loops_of(block_plane.volume_path('vol-a'))) == 1
    block_plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [])
    assert loops_of(block_plane.volume_path('vol-a')) == []
    assert block_plane.loop_device('vol-a') is None


@needs_root
def test_close_detaches_loop_devices_and_removes_links(dirs):
    dp = dataplane.DataPlane(*dirs, block_devices=True)
    dp.create_volume('vol-a', 1)
    dp.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    dp.close()
    assert loops_of(dp.volume_path('vol-a')) == []
    assert os.listdir(dirs[1]) == []


@needs_root
def test_leftover_loop_devices_of_a_crashed_run_are_detached(dirs):
    first = dataplane.DataPlane(*dirs, block_devices=True)
    first.create_volume('vol-a', 1)
    first.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    assert len(loops_of(first.volume_path('vol-a'))) == 1
    second = dataplane.DataPlane(*dirs, block_devices=True)
    try:
        assert loops_of(second.volume_path('vol-a')) == []
        assert os.listdir(dirs[1]) == []
    finally:
        second.close()


def test_block_devices_without_root_are_refused(dirs, monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    with pytest.raises(dataplane.DataPlaneError, match='root'):
        dataplane.DataPlane(*dirs, block_devices=True)


def test_a_closed_data_plane_refuses_changes(plane):
    plane.create_volume('vol-a', 1)
    plane.close()
    with pytest.raises(dataplane.DataPlaneError, match='stopped'):
        plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    with pytest.raises(dataplane.DataPlaneError, match='stopped'):
        plane.grow_volume('vol-a', 2)


def test_a_refused_sync_changes_nothing(plane, dirs):
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST1])
    with pytest.raises(dataplane.DataPlaneError):
        plane.sync_exports('si-a', TARGET, IPS, 'vol-a', [HOST2, '.hidden'])
    assert sorted(os.listdir(dirs[1])) == [HOST1]
    assert plane.exported_initiators('si-a') == {HOST1}


def test_a_host_never_sees_its_link_missing_during_resyncs(plane, dirs):
    plane.create_volume('vol-a', 1)
    plane.create_volume('vol-b', 1)
    plane.sync_exports('si-a', TARGET, IPS[:1], 'vol-a', [HOST1])
    path = link(dirs[1], HOST1, IPS[0])
    stop = threading.Event()
    missing = []

    def watch():
        while not stop.is_set():
            if not os.path.lexists(path):
                missing.append(True)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # Re-pointing the same SI at another volume replaces its links.
        for i in range(300):
            plane.sync_exports('si-a', TARGET, IPS[:1],
                               'vol-b' if i % 2 else 'vol-a', [HOST1])
    finally:
        stop.set()
        watcher.join()
    assert missing == []
    assert os.path.realpath(path) == plane.volume_path('vol-b')  # i == 299


# Handing exports to an unprivileged glance-api's user

OWNER = (54321, 54322)      # any ids: chown does not need them to exist


def owner_of(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid


@needs_root
def test_an_exported_file_belongs_to_the_export_owner_until_unexported(dirs):
    plane = dataplane.DataPlane(*dirs, export_owner=OWNER)
    try:
        plane.create_volume('vol-a', 1)
        path = plane.volume_path('vol-a')
        before = owner_of(path)
        plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [HOST1, HOST2])
        assert owner_of(link(dirs[1], HOST1, IPS[0])) == OWNER
        plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [HOST2])
        assert owner_of(path) == OWNER      # HOST2 still has it
        plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [])
        assert owner_of(path) == before
    finally:
        plane.close()


@needs_root
def test_the_export_owner_can_reach_its_links_but_not_list_volumes(dirs):
    plane = dataplane.DataPlane(*dirs, export_owner=OWNER)
    try:
        modes = {p: stat.S_IMODE(os.stat(p).st_mode)
                 for p in (dirs[0], plane.volume_dir, dirs[1])}
        assert modes == {dirs[0]: 0o711, plane.volume_dir: 0o711,
                         dirs[1]: 0o755}
    finally:
        plane.close()


@needs_root
def test_a_loop_device_is_handed_over_and_given_back_on_detach(dirs):
    plane = dataplane.DataPlane(*dirs, block_devices=True,
                                export_owner=OWNER)
    try:
        plane.create_volume('vol-a', 1)
        plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [HOST1])
        loop = plane.loop_device('vol-a')
        assert owner_of(loop) == OWNER
        # the backing file stays root's: only the device is handed over
        assert owner_of(plane.volume_path('vol-a')) == (0, 0)
        plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [])
        assert plane.loop_device('vol-a') is None
        assert owner_of(loop) != OWNER
    finally:
        plane.close()


@needs_root
def test_close_gives_every_handed_device_back(dirs):
    plane = dataplane.DataPlane(*dirs, block_devices=True,
                                export_owner=OWNER)
    plane.create_volume('vol-a', 1)
    plane.sync_exports('si-1', TARGET, IPS, 'vol-a', [HOST1])
    loop = plane.loop_device('vol-a')
    plane.close()
    assert owner_of(loop) != OWNER


def test_handing_exports_to_another_user_without_root_is_refused(
        dirs, monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    monkeypatch.setattr(os, 'getuid', lambda: 1000)
    monkeypatch.setattr(os, 'getgid', lambda: 1000)
    with pytest.raises(dataplane.DataPlaneError, match='root'):
        dataplane.DataPlane(*dirs, export_owner=OWNER)
