"""Clones and snapshots in the simulator's data plane and model.

Sparse copies, what a failed create or copy leaves behind (nothing), and
the snapshot's timestamps and states, without HTTP.
"""

import errno
import os

import pytest

from datera_edf_sim import dataplane
from datera_edf_sim import models
from tests.functional.simulator import api_helpers as h
from tests import offsets as offsets_mod

GiB = 1024 ** 3
MiB = 1024 * 1024
DATA = b'0123456789abcdef' * 65536  # 1 MiB
OFFSETS = (0, 300 * MiB, GiB - len(DATA))


@pytest.fixture
def plane(tmp_path):
    dp = dataplane.DataPlane(str(tmp_path / 'data'),
                             str(tmp_path / 'exports'))
    yield dp
    dp.close()


@pytest.fixture
def clock():
    return h.FakeClock(1575422318.143125)


@pytest.fixture
def model(tmp_path, plane, clock):
    m = models.Model(plane.data_dir, dataplane=plane, clock=clock,
                     snapshot_seconds=2)
    yield m
    m.close()


def write(path, data=DATA, offsets=OFFSETS):
    offsets_mod.write_at(path, data, offsets)


def read(path, offsets=OFFSETS, length=len(DATA)):
    return offsets_mod.read_at(path, offsets, length)


def files(plane):
    return sorted(os.listdir(plane.volume_dir)) + sorted(
        os.listdir(plane.snapshot_dir))


def ai_body(name, *si_names, size=1):
    return {'name': name, 'storage_instances': [
        {'name': si, 'volumes': [{'name': 'volume-1', 'size': size}]}
        for si in si_names or ('storage-1',)]}


def test_clone_copies_bytes_and_keeps_holes(plane):
    plane.create_volume('src', 1)
    write(plane.volume_path('src'))

    plane.clone_volume('copy', 'src')

    path = plane.volume_path('copy')
    assert read(path) == [DATA] * 3
    st = os.stat(path)
    assert st.st_size == GiB
    assert st.st_blocks * 512 < 8 * MiB


def test_snapshot_is_a_frozen_copy(plane):
    plane.create_volume('src', 1)
    write(plane.volume_path('src'))
    plane.create_snapshot('snap', 'src')
    write(plane.volume_path('src'), b'x' * len(DATA))

    plane.clone_snapshot('copy', 'snap')

    assert read(plane.volume_path('copy')) == [DATA] * 3
    plane.delete_snapshot('snap')
    assert not os.path.exists(plane.snapshot_path('snap'))
    assert read(plane.volume_path('copy')) == [DATA] * 3


def test_copy_works_where_copy_file_range_does_not(plane, monkeypatch):
    plane.create_volume('src', 1)
    write(plane.volume_path('src'))

    def unsupported(*args):
        raise OSError(errno.EXDEV, 'cross-device')
    monkeypatch.setattr(os, 'copy_file_range', unsupported)
    plane.clone_volume('copy', 'src')

    assert read(plane.volume_path('copy')) == [DATA] * 3


def test_failed_copy_leaves_nothing(plane, monkeypatch):
    plane.create_volume('src', 1)
    write(plane.volume_path('src'))

    def full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'copy_file_range', full)
    with pytest.raises(OSError):
        plane.clone_volume('copy', 'src')

    assert files(plane) == ['src.img']


def test_copy_never_overwrites_a_volume(plane):
    plane.create_volume('src', 1)
    plane.create_volume('other', 1)
    write(plane.volume_path('other'))
    with pytest.raises(dataplane.DataPlaneError):
        plane.clone_volume('other', 'src')
    assert read(plane.volume_path('other')) == [DATA] * 3


def test_failed_create_leaves_no_file(plane, monkeypatch):
    def too_big(fd, size):
        raise OSError(errno.EFBIG, 'File too large')
    monkeypatch.setattr(os, 'ftruncate', too_big)
    with pytest.raises(OSError):
        plane.create_volume('vol', 20000)
    assert files(plane) == []


def test_fractional_sizes_are_refused_before_any_file(plane):
    with pytest.raises(dataplane.DataPlaneError):
        plane.create_volume('vol', 1.5)
    plane.create_volume('vol', 2.0)
    assert plane.volume_size('vol') == 2 * GiB


def test_partial_copies_of_a_crashed_run_are_removed(tmp_path, plane):
    leftover = os.path.join(plane.snapshot_dir, '.partial-snap.img')
    open(leftover, 'wb').close()
    plane.close()
    dataplane.DataPlane(plane.data_dir, plane.export_dir).close()
    assert not os.path.exists(leftover)


def test_a_failed_create_removes_the_volumes_made_before(model, plane,
                                                         monkeypatch):
    made = []
    create = plane.create_volume

    def second_fails(volume_uuid, size_gib):
        if made:
            raise dataplane.DataPlaneError('injected failure')
        create(volume_uuid, size_gib)
        made.append(volume_uuid)
    monkeypatch.setattr(plane, 'create_volume', second_fails)

    with pytest.raises(dataplane.DataPlaneError):
        model.create_app_instance('/root', ai_body('two-sis', 'storage-1',
                                                   'storage-2'))

    assert made and files(plane) == []
    assert model.list_app_instances('/root') == []


def test_fractional_sizes_are_invalid_and_whole_floats_are_whole(model):
    with pytest.raises(models.Invalid):
        model.create_app_instance('/root', ai_body('half', size=1.5))
    ai = model.create_app_instance('/root', ai_body('whole', size=2.0))
    assert ai['storage_instances'][0]['volumes'][0]['size'] == 2
    vol = model.update_volume('/root', ai['id'], 'storage-1', 'volume-1',
                              {'size': 4.0})
    assert vol['size'] == 4 and isinstance(vol['size'], int)
    with pytest.raises(models.Invalid):
        model.update_volume('/root', ai['id'], 'storage-1', 'volume-1',
                            {'size': 4.5})


def test_snapshot_timestamps_are_microseconds_and_unique(model):
    ai = model.create_app_instance('/root', ai_body('src'))
    first = model.create_volume_snapshot('/root', ai['id'], 'storage-1',
                                         'volume-1')
    second = model.create_volume_snapshot('/root', ai['id'], 'storage-1',
                                          'volume-1')
    assert first['timestamp'] == '1575422318.143125000'
    assert second['timestamp'] == '1575422318.143126000'
    assert first['utc_ts'] == '1575422318'
    assert first['path'].endswith('/volume-1/snapshots/1575422318.143125000')


def test_snapshot_is_creating_until_its_time_has_passed(model, clock):
    ai = model.create_app_instance('/root', ai_body('src'))
    snap = model.create_volume_snapshot('/root', ai['id'], 'storage-1',
                                        'volume-1')
    assert snap['op_state'] == 'creating'
    with pytest.raises(models.Conflict):
        model.create_app_instance('/root', {
            'name': 'early', 'clone_snapshot_src': {'path': snap['path']}})
    clock.now += 2
    assert model.get_volume_snapshot(
        '/root', ai['id'], 'storage-1', 'volume-1',
        snap['timestamp'])['op_state'] == 'available'
    model.create_app_instance('/root', {
        'name': 'late', 'clone_snapshot_src': {'path': snap['path']}})


def test_clone_sources_cannot_be_mixed(model):
    ai = model.create_app_instance('/root', ai_body('src'))
    vol_path = ai['storage_instances'][0]['volumes'][0]['path']
    for body in ({'clone_src': {'path': ai['path']},
                  'clone_volume_src': {'path': vol_path}},
                 dict(ai_body('mixed'),
                      clone_volume_src={'path': vol_path})):
        with pytest.raises(models.Invalid):
            model.create_app_instance('/root', dict(body, name='mixed'))
    assert len(model.list_app_instances('/root')) == 1
