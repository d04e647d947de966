"""Clones and volume snapshots, as Cinder's Datera driver makes them.

Cinder creates a volume from an image stored on Datera by creating an app
instance with ``clone_volume_src`` and extending it right away; it takes
volume snapshots (``{"uuid": ...}``, addressed by timestamp, polled until
``available``) and creates volumes from them with ``clone_snapshot_src``.
Everything here goes through Datera's own SDK, unchanged.
"""

import os
import re
import time
import uuid

import jsonschema
import pytest

from datera_edf_sim import fixture
from datera_edf_sim import schemas
from datera_glance.sdk_compat import exceptions
from tests.functional.simulator import api_helpers
from tests.functional.simulator import helpers
from tests.functional.simulator.helpers import GiB
from tests.functional.simulator.helpers import HOST1
from tests import offsets as offsets_mod
from tests import sdk_helpers

MiB = 1024 * 1024
ROOT = '/root'
# A few MiB of known bytes at both ends of a volume and in its middle.
PATTERN = bytes(range(256)) * 4096  # 1 MiB
OFFSETS = (0, 500 * MiB, GiB - len(PATTERN))
TIMESTAMP_RE = re.compile(r'^[0-9]+\.[0-9]{9}$')


@pytest.fixture
def api(edf_sim):
    return sdk_helpers.make_api(edf_sim)


def volume(api, ai_id, tenant=ROOT):
    """The dfs_sdk entity of an app instance's volume-1."""
    return helpers.storage_instance(api, ai_id, tenant).volumes.get(
        'volume-1', tenant=tenant)


def write(sim, ai_id, data, offsets=OFFSETS):
    offsets_mod.write_at(sim.volume_file(ai_id), data, offsets)


def read(path, offsets=OFFSETS, length=len(PATTERN)):
    return offsets_mod.read_at(path, offsets, length)


def clone(api, tenant=ROOT, **source):
    """Create an app instance from a clone source, as Cinder does."""
    clone_id = str(uuid.uuid4())
    return api.app_instances.create(
        tenant=tenant, name='OS-' + clone_id, create_mode='openstack',
        uuid=clone_id, **source)


def available(api, snap, tenant=ROOT):
    """Poll a snapshot until it is available, as Cinder's driver does."""
    def reloaded():
        fresh = snap.reload(tenant=tenant)
        return fresh if fresh['op_state'] == 'available' else None
    return helpers.wait_for(reloaded, timeout=10,
                            message='snapshot %s available' % snap.path)


def volume_files(sim):
    return sorted(os.listdir(os.path.join(sim.data_dir, 'volumes')))


def snapshot_files(sim):
    return sorted(os.listdir(os.path.join(sim.data_dir, 'snapshots')))


def test_clone_volume_src_copies_bytes_and_size_sparsely(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    write(edf_sim, source['id'], PATTERN)
    src_vol = volume(api, source['id'])

    copy = clone(api, clone_volume_src={'path': src_vol.path})

    [si] = copy['storage_instances']
    [vol] = si['volumes']
    assert (si['name'], vol['name'], vol['size']) == (
        'storage-1', 'volume-1', 1)
    assert vol['uuid'] != src_vol['uuid']
    assert si['uuid'] != source['storage_instances'][0]['uuid']
    assert si['acl_policy']['initiators'] == []
    path = edf_sim.volume_file(copy['id'])
    assert read(path) == [PATTERN] * len(OFFSETS)
    st = os.stat(path)
    assert st.st_size == GiB
    # 3 MiB written: the copy allocates about that, not 1 GiB.
    assert st.st_blocks * 512 < 16 * MiB


def test_clone_outlives_its_source_and_writes_stay_apart(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    write(edf_sim, source['id'], PATTERN)
    copy = clone(api, clone_volume_src={'path': volume(api, source['id'])
                                        .path})

    write(edf_sim, copy['id'], b'C' * len(PATTERN), offsets=OFFSETS[:1])
    write(edf_sim, source['id'], b'S' * len(PATTERN), offsets=OFFSETS[1:2])
    assert read(edf_sim.volume_file(source['id']), OFFSETS[:2]) == [
        PATTERN, b'S' * len(PATTERN)]

    helpers.set_state(api, source['id'], 'offline')
    api.app_instances.get(source['id'], tenant=ROOT).delete(tenant=ROOT)
    # A host still reads the clone, through its export.
    helpers.register_host(api, HOST1)
    helpers.allow(api, copy['id'], HOST1)
    helpers.set_state(api, copy['id'], 'online')
    [link] = helpers.export_links(edf_sim, HOST1)[:1]
    device = helpers.device_of(edf_sim, HOST1, link)
    assert read(device, OFFSETS[:2]) == [b'C' * len(PATTERN), PATTERN]
    assert helpers.device_size(device) == GiB


def test_clone_of_a_missing_or_other_tenants_source_creates_nothing(
        edf_sim, api):
    source = helpers.create_ai(api, size=1)
    src_path = volume(api, source['id']).path
    api.tenants.create(name='other')
    files = volume_files(edf_sim)
    bad = [
        ('/root/other', {'clone_volume_src': {'path': src_path}}),
        (ROOT, {'clone_volume_src': {'path': src_path.replace(
            'volume-1', 'volume-9')}}),
        (ROOT, {'clone_volume_src': {'path': '/app_instances/%s'
                                     % source['id']}}),
        (ROOT, {'clone_src': {'path': '/app_instances/%s' % uuid.uuid4()}}),
        (ROOT, {'clone_snapshot_src': {'path': src_path +
                                       '/snapshots/1575422318.143125000'}}),
    ]
    for tenant, body in bad:
        with pytest.raises(exceptions.ApiValidationFailedError) as caught:
            clone(api, tenant=tenant, **body)
        message = caught.value.resp_data['message']
        assert 'Must be a valid path to' in message, message
        assert 'does not exist in tenant %s' % tenant in message, message
    assert [ai['id'] for ai in api.app_instances.list(tenant=ROOT)] == [
        source['id']]
    assert api.app_instances.list(tenant='/root/other') == []
    assert volume_files(edf_sim) == files


def test_snapshots_are_created_listed_got_and_deleted(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    vol = volume(api, source['id'])
    snap_uuid = str(uuid.uuid4())

    before = time.time()
    snap = vol.snapshots.create(uuid=snap_uuid, tenant=ROOT)

    assert TIMESTAMP_RE.match(snap['timestamp']), snap['timestamp']
    assert before - 1 <= float(snap['utc_ts']) <= time.time() + 1
    assert snap['uuid'] == snap_uuid
    assert snap['op_state'] in ('creating', 'available')
    assert snap.path == '%s/snapshots/%s' % (vol.path, snap['timestamp'])
    assert available(api, snap)['op_state'] == 'available'
    [listed] = vol.snapshots.list(tenant=ROOT)
    assert listed['uuid'] == snap_uuid
    assert listed['timestamp'] == snap['timestamp']
    got = vol.snapshots.get(snap['timestamp'], tenant=ROOT)
    assert got['uuid'] == snap_uuid
    assert [s['uuid'] for s in volume(api, source['id'])['snapshots']] == [
        snap_uuid]
    assert len(snapshot_files(edf_sim)) == 1

    got.delete(tenant=ROOT)

    assert vol.snapshots.list(tenant=ROOT) == []
    with pytest.raises(exceptions.ApiNotFoundError):
        vol.snapshots.get(snap['timestamp'], tenant=ROOT)
    assert snapshot_files(edf_sim) == []


def test_snapshots_without_uuid_get_one_and_distinct_timestamps(api):
    source = helpers.create_ai(api, size=1)
    vol = volume(api, source['id'])
    first = vol.snapshots.create(tenant=ROOT)
    second = vol.snapshots.create(tenant=ROOT)
    assert first['uuid'] != second['uuid']
    assert first['timestamp'] != second['timestamp']
    with pytest.raises(exceptions.ApiConflictError):
        vol.snapshots.create(uuid=first['uuid'], tenant=ROOT)
    assert len(vol.snapshots.list(tenant=ROOT)) == 2


def test_clone_snapshot_src_gives_the_bytes_of_snapshot_time(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    write(edf_sim, source['id'], PATTERN)
    snap = available(api, volume(api, source['id']).snapshots.create(
        uuid=str(uuid.uuid4()), tenant=ROOT))
    write(edf_sim, source['id'], b'X' * len(PATTERN))
    # Grown after the snapshot: the clone has the size of snapshot time.
    volume(api, source['id']).set(tenant=ROOT, size=2)

    copy = clone(api, clone_snapshot_src={'path': snap.path})

    assert copy['storage_instances'][0]['volumes'][0]['size'] == 1
    path = edf_sim.volume_file(copy['id'])
    assert read(path) == [PATTERN] * len(OFFSETS)
    assert os.stat(path).st_blocks * 512 < 16 * MiB
    assert read(edf_sim.volume_file(source['id'])) == [
        b'X' * len(PATTERN)] * len(OFFSETS)


def test_clone_src_copies_every_volume_of_the_app_instance(edf_sim, api):
    source = helpers.create_ai(api, size=2)
    write(edf_sim, source['id'], PATTERN, offsets=(GiB + 7 * MiB,))

    copy = clone(api, clone_src={'path': source.path})

    [si] = copy['storage_instances']
    [vol] = si['volumes']
    assert (si['name'], vol['name'], vol['size']) == (
        'storage-1', 'volume-1', 2)
    assert copy['id'] != source['id']
    assert read(edf_sim.volume_file(copy['id']), (GiB + 7 * MiB,)) == [
        PATTERN]


def test_a_clone_extends_like_any_volume(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    write(edf_sim, source['id'], PATTERN)
    copy = clone(api, clone_volume_src={'path': volume(api, source['id'])
                                        .path})

    # Cinder's _extend_volume_2_2: offline, PUT the size, back online.
    ai = api.app_instances.get(copy['id'], tenant=ROOT)
    ai.set(tenant=ROOT, admin_state='offline')
    volume(api, copy['id']).set(tenant=ROOT, size=5)
    ai.set(tenant=ROOT, admin_state='online')

    assert volume(api, copy['id'])['size'] == 5
    path = edf_sim.volume_file(copy['id'])
    assert os.path.getsize(path) == 5 * GiB
    assert read(path) == [PATTERN] * len(OFFSETS)
    assert volume(api, source['id'])['size'] == 1


def test_a_snapshot_still_being_created_cannot_be_cloned_yet(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   snapshot_seconds=600) as sim:
        api = sdk_helpers.make_api(sim)
        source = helpers.create_ai(api, size=1)
        snap = volume(api, source['id']).snapshots.create(tenant=ROOT)
        assert snap['op_state'] == 'creating'
        with pytest.raises(exceptions.ApiConflictError):
            clone(api, clone_snapshot_src={'path': snap.path})
        assert len(api.app_instances.list(tenant=ROOT)) == 1


@pytest.mark.parametrize('size', [2.0, 2])
def test_a_whole_size_given_as_a_float_is_a_whole_size(edf_sim, api, size):
    ai = helpers.create_ai(api, size=size)
    vol = ai['storage_instances'][0]['volumes'][0]
    assert vol['size'] == 2 and isinstance(vol['size'], int)
    assert os.path.getsize(edf_sim.volume_file(ai['id'])) == 2 * GiB

    grown = volume(api, ai['id']).set(tenant=ROOT, size=float(size + 1))

    assert grown['size'] == 3 and isinstance(grown['size'], int)
    assert os.path.getsize(edf_sim.volume_file(ai['id'])) == 3 * GiB


def test_a_fractional_size_is_refused_and_leaves_nothing(edf_sim, api):
    files = volume_files(edf_sim)
    with pytest.raises(exceptions.ApiValidationFailedError) as caught:
        helpers.create_ai(api, size=2.5)
    assert 'whole number of GiB' in caught.value.resp_data['message']
    assert api.app_instances.list(tenant=ROOT) == []
    assert volume_files(edf_sim) == files

    ai = helpers.create_ai(api, size=2)
    with pytest.raises(exceptions.ApiValidationFailedError):
        volume(api, ai['id']).set(tenant=ROOT, size=3.5)
    assert volume(api, ai['id'])['size'] == 2
    assert os.path.getsize(edf_sim.volume_file(ai['id'])) == 2 * GiB


def test_deleting_an_app_instance_deletes_its_snapshots(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    vol = volume(api, source['id'])
    snap = available(api, vol.snapshots.create(tenant=ROOT))
    copy = clone(api, clone_snapshot_src={'path': snap.path})
    assert len(snapshot_files(edf_sim)) == 1

    api.app_instances.get(source['id'], tenant=ROOT).delete(tenant=ROOT)

    assert snapshot_files(edf_sim) == []
    assert vol.snapshots.list(tenant=ROOT) == []
    # The clone made of the snapshot stays.
    assert os.path.getsize(edf_sim.volume_file(copy['id'])) == GiB


def test_clones_and_snapshots_survive_a_restart(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    write(edf_sim, source['id'], PATTERN)
    snap = available(api, volume(api, source['id']).snapshots.create(
        uuid=str(uuid.uuid4()), tenant=ROOT))
    copy = clone(api, clone_volume_src={'path': volume(api, source['id'])
                                        .path})
    write(edf_sim, source['id'], b'Y' * len(PATTERN))

    edf_sim.restart()
    api = sdk_helpers.make_api(edf_sim)

    assert read(edf_sim.volume_file(copy['id'])) == [PATTERN] * len(OFFSETS)
    [kept] = volume(api, source['id']).snapshots.list(tenant=ROOT)
    assert (kept['uuid'], kept['op_state']) == (snap['uuid'], 'available')
    later = clone(api, clone_snapshot_src={'path': kept.path})
    assert read(edf_sim.volume_file(later['id'])) == (
        [PATTERN] * len(OFFSETS))


def test_request_log_shows_clone_and_snapshot_calls(edf_sim, api):
    source = helpers.create_ai(api, size=1)
    vol = volume(api, source['id'])
    edf_sim.clear_requests()

    snap = vol.snapshots.create(tenant=ROOT)
    clone(api, clone_volume_src={'path': vol.path})
    vol.snapshots.get(snap['timestamp'], tenant=ROOT).delete(tenant=ROOT)

    calls = [(r['method'], r['api_path'], r['status'], r['tenant'])
             for r in edf_sim.requests() if r['method'] != 'GET']
    assert calls == [
        ('POST', vol.path + '/snapshots', 201, ROOT),
        ('POST', '/app_instances', 201, ROOT),
        ('DELETE', snap.path, 200, ROOT),
    ]
    # the create names its clone source; nothing else of a body is kept
    assert [r['clone'] for r in edf_sim.requests()
            if r['method'] != 'GET'] == [
        None, {'clone_volume_src': vol.path}, None]


def test_request_log_keeps_no_other_body_field(edf_sim, api):
    edf_sim.clear_requests()
    helpers.create_ai(api, size=1)
    sdk_helpers.make_api(edf_sim)     # logs in: the body has the password
    logged = repr(edf_sim.requests())
    assert edf_sim.password not in logged
    assert [r['clone'] for r in edf_sim.requests()] == [None] * len(
        edf_sim.requests())


def test_volume_snapshots_are_an_sdk_endpoint(api):
    # dfs_sdk makes vol.snapshots an endpoint only when the /api document
    # lists "snapshots"; otherwise it hands back the volume's data list.
    assert 'snapshots' in api.context.reader._ep_name_set
    vol = volume(api, helpers.create_ai(api)['id'])
    assert not isinstance(vol.snapshots, list)
    assert vol['snapshots'] == []


@pytest.mark.parametrize('path, op, body, valid', [
    (schemas.SNAPSHOTS_PATH, 'create', {}, True),
    (schemas.SNAPSHOTS_PATH, 'create', {'uuid': api_helpers.AI_ID}, True),
    (schemas.SNAPSHOTS_PATH, 'create', {'uuid': 'not-a-uuid'}, False),
    (schemas.SNAPSHOTS_PATH, 'create', {'name': 'snap-1'}, False),
    (schemas.SNAPSHOT_PATH, 'delete', {}, True),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_volume_src': {'path': '/app_instances/x'}},
     True),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_snapshot_src': {'path': '/a/b'}}, True),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_src': {'path': '/app_instances/x'}}, True),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_src': {'path': 'relative'}}, False),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_volume_src': {}}, False),
    ('/app_instances', 'create',
     {'name': 'clone-1', 'clone_volume_src': {'path': '/a', 'x': 1}}, False),
])
def test_clone_and_snapshot_bodies_are_judged_like_the_real_schema(
        path, op, body, valid):
    real = api_helpers.load_real_schema()
    real_ok = jsonschema.Draft4Validator(api_helpers.clean_schema(
        real[path][op]['bodyParamSchema'])).is_valid(body)
    ours = jsonschema.Draft7Validator(
        schemas.find(path).ops[op].body('v2.2')).is_valid(body)
    assert (real_ok, ours) == (valid, valid)
