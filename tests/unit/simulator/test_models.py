"""The simulator's control plane, without HTTP."""

import threading

import pytest

from datera_edf_sim import models
from tests.functional.simulator import api_helpers as h

T = '/root/glance'
AI = h.AI_ID
INIT1 = '/initiators/' + h.IQN1
INIT2 = '/initiators/' + h.IQN2


@pytest.fixture
def dataplane():
    return h.FakeDataPlane()


@pytest.fixture
def clock():
    return h.FakeClock()


@pytest.fixture
def model(tmp_path, dataplane, clock):
    m = models.Model(str(tmp_path / 'sim'), dataplane=dataplane,
                     clock=clock, resize_seconds=5)
    m.create_tenant('glance')
    yield m
    m.close()


def _si_uuid(model, tenant=T, ai_id=AI):
    return model.get_storage_instance(tenant, ai_id, 'storage-1')['uuid']


def _vol_uuid(model, tenant=T, ai_id=AI):
    return model.get_volume(tenant, ai_id, 'storage-1', 'volume-1')['uuid']


def _online_with_acl(model, *iqns):
    model.create_app_instance(T, h.ai_body())
    for iqn in iqns:
        model.create_initiator(T, iqn, 'host')
        model.change_acl(T, AI, 'storage-1', 'initiators', 'add',
                         '/initiators/' + iqn)
    model.update_app_instance(T, AI, {'admin_state': 'online'})


# Sessions

def test_login_returns_a_key_that_expires_after_the_ttl(model, clock):
    model.configure(key_ttl=60)
    key = model.login('admin', 'password')
    model.check_key(key)
    clock.now += 61
    with pytest.raises(models.AuthError) as e:
        model.check_key(key)
    assert e.value.message == models.EXPIRED_KEY_MESSAGE


def test_wrong_password_and_unknown_keys_are_refused(model):
    with pytest.raises(models.AuthError):
        model.login('admin', 'nope')
    for key in (None, '', 'bogus'):
        with pytest.raises(models.AuthError):
            model.check_key(key)


def test_expire_all_keys_and_logout_end_sessions(model):
    a, b = model.login('admin', 'password'), model.login('admin', 'password')
    model.logout(a)
    with pytest.raises(models.AuthError):
        model.check_key(a)
    model.check_key(b)
    model.expire_all_keys()
    with pytest.raises(models.AuthError):
        model.check_key(b)


# Tenants

def test_tenants_nest_and_duplicates_conflict(model):
    child = model.create_tenant('team', parent_path=T)
    assert child['path'] == '/root/glance/team'
    assert model.get_tenant('root/glance')['subtenants'] == [child['path']]
    with pytest.raises(models.Conflict):
        model.create_tenant('glance')
    with pytest.raises(models.NotFound):
        model.create_tenant('x', parent_path='/root/missing')
    assert [t['path'] for t in model.list_tenants(T)] == [T, child['path']]


def test_unknown_tenant_is_not_found(model):
    with pytest.raises(models.NotFound):
        model.check_tenant('/root/other')
    with pytest.raises(models.NotFound):
        model.check_tenant('/elsewhere')
    assert model.check_tenant(None) == '/root'
    assert model.check_tenant('root/glance/') == T


# App instances

def test_openstack_create_mode_uses_the_given_uuid(model, dataplane):
    ai = model.create_app_instance(T, h.ai_body())
    assert ai['id'] == AI and ai['path'] == '/app_instances/' + AI
    assert ai['admin_state'] == 'offline'
    si = ai['storage_instances'][0]
    assert si['path'] == '/app_instances/%s/storage_instances/storage-1' % AI
    assert si['access']['iqn'].startswith(models.IQN_PREFIX)
    assert dataplane.volumes == {si['volumes'][0]['uuid']: 1}


def test_without_openstack_mode_the_id_is_generated(model):
    body = dict(h.ai_body(), create_mode='normal')
    ai = model.create_app_instance(T, body)
    assert ai['id'] != AI and ai['uuid'] == AI


def test_duplicate_name_or_id_conflicts(model):
    model.create_app_instance(T, h.ai_body())
    with pytest.raises(models.Conflict):
        model.create_app_instance(T, h.ai_body(name='other-name'))
    with pytest.raises(models.Conflict):
        model.create_app_instance(
            T, h.ai_body(ai_id='00000000-0000-4000-8000-000000000001'))
    # Names are per tenant.
    model.create_app_instance('/root', h.ai_body(
        ai_id='00000000-0000-4000-8000-000000000001'))


def test_app_instances_are_invisible_from_other_tenants(model):
    model.create_tenant('other')
    model.create_app_instance(T, h.ai_body())
    for tenant in ('/root', '/root/other'):
        with pytest.raises(models.NotFound):
            model.get_app_instance(tenant, AI)
        assert model.list_app_instances(tenant) == []
        with pytest.raises(models.NoData) as e:
            model.list_storage_instances(tenant, AI)
        assert e.value.message.startswith('No data at ')


def test_failed_volume_creation_leaves_nothing_behind(model, dataplane):
    dataplane.fail_next_create = True
    with pytest.raises(OSError):
        model.create_app_instance(T, h.ai_body())
    assert model.list_app_instances(T) == []
    model.create_app_instance(T, h.ai_body())


def test_delete_is_refused_while_online_unless_forced(model, dataplane):
    _online_with_acl(model, h.IQN1)
    with pytest.raises(models.Conflict):
        model.delete_app_instance(T, AI)
    model.delete_app_instance(T, AI, force=True)
    assert dataplane.volumes == {} and dataplane.exports == {}
    with pytest.raises(models.NotFound):
        model.get_app_instance(T, AI)


def test_offline_with_connected_hosts_needs_force(model, dataplane):
    _online_with_acl(model, h.IQN1)
    with pytest.raises(models.Conflict):
        model.update_app_instance(T, AI, {'admin_state': 'offline'})
    ai = model.update_app_instance(T, AI, {'admin_state': 'offline',
                                           'force': True})
    assert ai['storage_instances'][0]['op_state'] == 'unavailable'
    assert dataplane.exports == {}


def test_offline_without_hosts_needs_no_force(model):
    model.create_app_instance(T, h.ai_body())
    model.update_app_instance(T, AI, {'admin_state': 'online'})
    model.update_app_instance(T, AI, {'admin_state': 'offline'})


def test_force_offline_unexports(model, dataplane):
    _online_with_acl(model, h.IQN1)
    model.force_offline(T, AI)
    assert model.get_app_instance(T, AI)['admin_state'] == 'offline'
    assert dataplane.exported_initiators(_si_uuid(model)) == set()
    with pytest.raises(models.NotFound):
        model.force_offline('/root', AI)


def test_rename_checks_duplicates(model):
    model.create_app_instance(T, h.ai_body())
    model.create_app_instance(T, h.ai_body(
        name='second', ai_id='00000000-0000-4000-8000-000000000001'))
    with pytest.raises(models.Conflict):
        model.update_app_instance(T, AI, {'name': 'second'})
    assert model.update_app_instance(T, AI, {'name': 'third'})['name'] == (
        'third')


# Volumes

def test_grow_goes_through_resizing_and_shrink_is_invalid(
        model, dataplane, clock):
    model.create_app_instance(T, h.ai_body())
    vol = model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 4})
    assert vol['size'] == 4 and vol['op_state'] == 'resizing'
    assert vol['op_status'] == 'volume_resize_in_progress'
    assert dataplane.volumes[vol['uuid']] == 4
    clock.now += 5.1
    vol = model.get_volume(T, AI, 'storage-1', 'volume-1')
    assert vol['op_state'] == 'available' and 'op_status' not in vol
    with pytest.raises(models.Invalid):
        model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 2})
    same = model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 4})
    assert same['op_state'] == 'available'


def test_capacity_limits_creates_and_grows(model):
    model.set_capacity(3)
    model.create_app_instance(T, h.ai_body(size=2))
    with pytest.raises(models.InsufficientCapacity) as e:
        model.create_app_instance(T, h.ai_body(
            name='big', ai_id='00000000-0000-4000-8000-000000000001',
            size=2))
    assert e.value.message.startswith(models.INSUFFICIENT_CAPACITY_MESSAGE)
    with pytest.raises(models.InsufficientCapacity):
        model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 4})
    model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 3})
    model.set_capacity(None)
    model.update_volume(T, AI, 'storage-1', 'volume-1', {'size': 100})
    assert model.system()['total_provisioned_capacity'] == 100 * 1024 ** 3


# ACLs and exports

def test_acl_changes_while_online_follow_into_exports(model, dataplane):
    _online_with_acl(model, h.IQN1)
    si_uuid = _si_uuid(model)
    assert dataplane.exported_initiators(si_uuid) == {h.IQN1}
    model.create_initiator(T, h.IQN2, 'host2')
    model.change_acl(T, AI, 'storage-1', 'initiators', 'add', INIT2)
    assert dataplane.exported_initiators(si_uuid) == {h.IQN1, h.IQN2}
    si = model.get_storage_instance(T, AI, 'storage-1')
    assert si['active_initiators'] == sorted([h.IQN1, h.IQN2])
    model.change_acl(T, AI, 'storage-1', 'initiators', 'remove', INIT1)
    assert dataplane.exported_initiators(si_uuid) == {h.IQN2}
    model.set_acl_policy(T, AI, 'storage-1', {'initiators': []})
    assert dataplane.exported_initiators(si_uuid) == set()


def test_offline_app_instances_export_nothing(model, dataplane):
    model.create_app_instance(T, h.ai_body())
    model.create_initiator(T, h.IQN1, 'host1')
    model.change_acl(T, AI, 'storage-1', 'initiators', 'add', INIT1)
    assert dataplane.exported_initiators(_si_uuid(model)) == set()


def test_acl_add_is_idempotent_and_checks_the_reference(model):
    model.create_app_instance(T, h.ai_body())
    model.create_initiator(T, h.IQN1, 'host1')
    for _ in range(2):
        found = model.change_acl(T, AI, 'storage-1', 'initiators', 'add',
                                 INIT1)
    assert found == {'tenant': T, 'path': INIT1, 'id': h.IQN1,
                     'name': 'host1'}
    assert model.get_acl_policy(T, AI, 'storage-1')['initiators'] == [
        {'path': INIT1}]
    with pytest.raises(models.Invalid):
        model.change_acl(T, AI, 'storage-1', 'initiators', 'add', INIT2)
    with pytest.raises(models.Invalid):
        model.set_acl_policy(T, AI, 'storage-1',
                             {'initiators': [{'path': INIT2}]})


def test_full_replace_keeps_the_list_it_is_not_given(model):
    model.create_app_instance(T, h.ai_body())
    model.create_initiator(T, h.IQN1, 'host1')
    model.create_initiator_group(T, 'hosts', [{'path': INIT1}])
    model.set_acl_policy(T, AI, 'storage-1', {
        'initiators': [{'path': INIT1}],
        'initiator_groups': [{'path': '/initiator_groups/hosts'}]})
    acl = model.set_acl_policy(T, AI, 'storage-1', {'initiators': []})
    assert acl['initiators'] == []
    assert acl['initiator_groups'] == [{'path': '/initiator_groups/hosts'}]


def test_concurrent_atomic_acl_adds_lose_nothing(model, dataplane):
    model.create_app_instance(T, h.ai_body())
    model.update_app_instance(T, AI, {'admin_state': 'online'})
    iqns = ['iqn.1993-08.org.debian:01:host%02d' % i for i in range(16)]
    for iqn in iqns:
        model.create_initiator(T, iqn, 'host')
    start = threading.Barrier(len(iqns))
    errors = []

    def add(iqn):
        try:
            start.wait(timeout=10)
            model.change_acl(T, AI, 'storage-1', 'initiators', 'add',
                             '/initiators/' + iqn)
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            model.close()

    threads = [threading.Thread(target=add, args=(i,)) for i in iqns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    acl = model.get_acl_policy(T, AI, 'storage-1')
    assert sorted(p['path'] for p in acl['initiators']) == sorted(
        '/initiators/' + i for i in iqns)
    assert dataplane.exported_initiators(_si_uuid(model)) == set(iqns)


def test_concurrent_metadata_merges_lose_nothing(model):
    model.create_app_instance(T, h.ai_body())
    start = threading.Barrier(12)

    def put(i):
        start.wait(timeout=10)
        model.update_metadata(T, AI, {'k%d' % i: 'v%d' % i})
        model.close()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert model.get_metadata(T, AI) == {'k%d' % i: 'v%d' % i
                                         for i in range(12)}


# Initiators and groups

def test_initiators_are_found_in_parent_tenants(model):
    root = model.create_initiator('/root', h.IQN1, 'host1')
    assert model.get_initiator(T, h.IQN1) == root
    assert model.list_initiators(T) == []
    # An IQN held by another tenant needs force to register again.
    with pytest.raises(models.Conflict):
        model.create_initiator(T, h.IQN1, 'host1')
    mine = model.create_initiator(T, h.IQN1, 'host1', force=True)
    assert mine['tenant'] == T
    assert model.get_initiator(T, h.IQN1)['tenant'] == T
    with pytest.raises(models.Conflict):
        model.create_initiator(T, h.IQN1, 'host1', force=True)


def test_initiators_in_use_cannot_be_deleted(model):
    model.create_app_instance(T, h.ai_body())
    model.create_initiator(T, h.IQN1, 'host1')
    model.create_initiator(T, h.IQN2, 'host2')
    model.create_initiator_group(T, 'hosts', [{'path': INIT2}])
    model.change_acl(T, AI, 'storage-1', 'initiators', 'add', INIT1)
    with pytest.raises(models.Conflict):
        model.delete_initiator(T, h.IQN1)
    with pytest.raises(models.Conflict):
        model.delete_initiator(T, h.IQN2)
    model.change_acl(T, AI, 'storage-1', 'initiators', 'remove', INIT1)
    assert model.delete_initiator(T, h.IQN1)['id'] == h.IQN1
    with pytest.raises(models.NotFound):
        model.delete_initiator(T, h.IQN1)


def test_group_membership_changes_follow_into_exports(model, dataplane):
    model.create_app_instance(T, h.ai_body())
    model.create_initiator(T, h.IQN1, 'host1')
    model.create_initiator(T, h.IQN2, 'host2')
    model.create_initiator_group(T, 'hosts')
    model.change_acl(T, AI, 'storage-1', 'initiator_groups', 'add',
                     '/initiator_groups/hosts')
    model.update_app_instance(T, AI, {'admin_state': 'online'})
    si_uuid = _si_uuid(model)
    assert dataplane.exported_initiators(si_uuid) == set()
    model.change_initiator_group_members(T, 'hosts', 'add', INIT1)
    assert dataplane.exported_initiators(si_uuid) == {h.IQN1}
    model.set_initiator_group_members(T, 'hosts', [{'path': INIT2}])
    assert dataplane.exported_initiators(si_uuid) == {h.IQN2}
    with pytest.raises(models.Conflict):
        model.delete_initiator_group(T, 'hosts')
    assert [m['id'] for m in
            model.list_initiator_group_members(T, 'hosts')] == [h.IQN2]


# Metadata

def test_metadata_merges_and_stores_strings(model):
    model.create_app_instance(T, h.ai_body())
    model.update_metadata(T, AI, {'type': 'image', 'length': 1024})
    merged = model.update_metadata(T, AI, {'checksum': 'abc',
                                           'thin': True})
    assert merged == {'type': 'image', 'length': '1024', 'checksum': 'abc',
                      'thin': 'true'}
    with pytest.raises(models.Invalid):
        model.update_metadata(T, AI, {'nested': {'a': 1}})


# Persistence and observation

def test_a_new_model_over_the_same_directory_sees_everything(
        tmp_path, model, dataplane, clock):
    _online_with_acl(model, h.IQN1)
    model.update_metadata(T, AI, {'type': 'image'})
    key = model.login('admin', 'password')
    model.set_capacity(50)
    again = models.Model(str(tmp_path / 'sim'), dataplane=dataplane,
                         clock=clock)
    try:
        assert again.get_app_instance(T, AI) == model.get_app_instance(T, AI)
        assert again.get_metadata(T, AI) == {'type': 'image'}
        again.check_key(key)
        assert again.snapshot()['capacity_gib'] == 50
        assert again.system()['uuid'] == model.system()['uuid']
    finally:
        again.close()


def test_resync_exports_replays_the_stored_exports(model):
    _online_with_acl(model, h.IQN1)
    fresh = h.FakeDataPlane()
    fresh.volumes = {_vol_uuid(model): 1}
    model.configure(dataplane=fresh)
    model.resync_exports()
    assert fresh.exported_initiators(_si_uuid(model)) == {h.IQN1}


def test_snapshot_shows_state_and_exports(model):
    _online_with_acl(model, h.IQN1)
    model.update_metadata(T, AI, {'type': 'image'})
    snap = model.snapshot()
    assert snap['tenants'] == ['/root', T]
    ai, = snap['app_instances']
    assert (ai['tenant'], ai['id'], ai['admin_state']) == (T, AI, 'online')
    assert ai['metadata'] == {'type': 'image'}
    si, = ai['storage_instances']
    assert si['exported_to'] == [h.IQN1]
    assert si['acl_policy']['initiators'] == [INIT1]
    assert si['volumes'][0]['size'] == 1
    assert snap['initiators'] == [{'id': h.IQN1, 'name': 'host',
                                   'tenant': T}]


# Queries

@pytest.mark.parametrize('expression,names', [
    (None, ['alpha', 'beta', 'gamma']),
    ('name=beta', ['beta']),
    ('name=bet', []),
    ('match(name,.*a)', ['alpha', 'beta', 'gamma']),
    ('match(name,a.*)', ['alpha']),
    ('match(name,et)', []),
    ('admin_state=online', ['gamma']),
])
def test_filters(expression, names):
    entities = [{'name': 'alpha', 'admin_state': 'offline'},
                {'name': 'beta', 'admin_state': 'offline'},
                {'name': 'gamma', 'admin_state': 'online'}]
    page, total, _limit = models.query(entities, filter=expression)
    assert [e['name'] for e in page] == names
    assert total == len(names)


@pytest.mark.parametrize('expression', ['name~x', 'match(name,[)',
                                        'foo(name,x)'])
def test_unsupported_filters_are_bad_requests(expression):
    with pytest.raises(models.BadRequest):
        models.query([], filter=expression)


def test_paging_and_sorting():
    entities = [{'name': 'n%d' % i} for i in range(5)]
    page, total, limit = models.query(entities, offset=1, limit=2)
    assert ([e['name'] for e in page], total, limit) == (['n1', 'n2'], 5, 2)
    page, _total, limit = models.query(entities, sort='-name')
    assert [e['name'] for e in page] == ['n4', 'n3', 'n2', 'n1', 'n0']
    assert limit == models.DEFAULT_LIST_LIMIT


def test_unsupported_changes_are_refused_not_ignored(model):
    model.create_app_instance(T, h.ai_body())
    for body in ({'admin_state': 'online'}, {'auth': {'type': 'chap'}},
                 {'volumes': [{'name': 'volume-2', 'size': 1}]}):
        with pytest.raises(models.Invalid):
            model.update_storage_instance(T, AI, 'storage-1', body)
    with pytest.raises(models.Invalid):
        model.update_app_instance(T, AI, {'restore_point': 'x'})
    with pytest.raises(models.Invalid):
        model.create_app_instance(T, dict(h.ai_body(name='clone'),
                                          clone_src={'path': '/x'}))
    si = model.update_storage_instance(T, AI, 'storage-1',
                                       {'auth': {'type': 'none'}})
    assert si['auth']['type'] == 'none'


def test_dead_sessions_are_forgotten_at_the_next_login(model, clock):
    model.configure(key_ttl=10)
    model.login('admin', 'password')
    clock.now += 11
    model.login('admin', 'password')
    rows = model._read().execute('SELECT COUNT(*) FROM sessions').fetchone()
    assert rows[0] == 1
