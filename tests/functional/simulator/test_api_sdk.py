"""Datera's own SDK (dfs_sdk, through the project's compat import) driving
the simulator's REST API, served over plain HTTP in this process."""

import threading

import pytest

from datera_glance.sdk_compat import exceptions as sdk_exc
from tests.functional.simulator import api_helpers as h

TENANT = '/root/glance'


@pytest.fixture
def dataplane():
    return h.FakeDataPlane()


@pytest.fixture
def served(tmp_path, dataplane):
    model, app = h.new_app(tmp_path / 'sim', dataplane=dataplane,
                           resize_seconds=0.2)
    served = h.ServedApp(app)
    served.model = model
    yield served
    served.stop()


@pytest.fixture(params=['v2.1', 'v2.2'])
def api(request, served, tmp_path):
    api = h.sdk_api(served.port, request.param, tmp_path)
    api.version = request.param
    return api


def _create_tenant_and_ai(api, size=1, ai_id=h.AI_ID, name='OS-IMAGE-a'):
    try:
        api.tenants.create(name='glance')
    except sdk_exc.ApiConflictError:
        pass
    return api.app_instances.create(tenant=TENANT,
                                    **h.ai_body(name, ai_id, size))


def test_login_reads_schema_and_system_version(api):
    api.context.connection.login(name='admin', password='password')
    assert api.context.connection._product_version == '3.3.5.0'
    system = api.system.get()
    assert system['sw_version'] == '3.3.5.0'


def test_wrong_password_is_an_auth_error(served, tmp_path):
    api = h.sdk_api(served.port, 'v2.2', tmp_path, password='wrong_pw')
    with pytest.raises(sdk_exc.ApiAuthError):
        api.tenants.list()


def test_tenant_is_created_and_found_by_path(api):
    created = api.tenants.create(name='glance')
    assert created['path'] == TENANT
    assert api.tenants.get('root/glance')['name'] == 'glance'
    with pytest.raises(sdk_exc.ApiConflictError):
        api.tenants.create(name='glance')


def test_app_instance_lifecycle(api, served, dataplane):
    ai = _create_tenant_and_ai(api)
    assert ai['id'] == h.AI_ID
    assert ai.path == '/app_instances/%s' % h.AI_ID

    # Found again by id in its tenant, not in another one.
    assert api.app_instances.get(h.AI_ID, tenant=TENANT)['name'] == (
        'OS-IMAGE-a')
    with pytest.raises(sdk_exc.ApiNotFoundError):
        api.app_instances.get(h.AI_ID)

    ai = ai.set(tenant=TENANT, admin_state='online')
    si = ai.storage_instances.list(tenant=TENANT)[0]
    assert si['op_state'] == 'available'
    assert si['access']['iqn'].startswith('iqn.2013-05.com.daterainc:')
    assert si['access']['ips'] == ['127.0.0.1', '127.0.0.2']

    vol = si.volumes.list(tenant=TENANT)[0]
    vol = vol.set(tenant=TENANT, size=3)
    assert vol['size'] == 3
    assert vol['op_state'] == 'resizing'
    assert dataplane.volumes[vol['uuid']] == 3
    with pytest.raises(sdk_exc.ApiValidationFailedError):
        vol.set(tenant=TENANT, size=2)

    with pytest.raises(sdk_exc.ApiConflictError):
        ai.delete(tenant=TENANT)
    ai = ai.set(tenant=TENANT, admin_state='offline', force=True)
    assert ai['admin_state'] == 'offline'
    ai.delete(tenant=TENANT)
    assert api.app_instances.list(tenant=TENANT) == []
    assert dataplane.volumes == {}


def test_duplicate_app_instance_is_a_conflict(api):
    _create_tenant_and_ai(api)
    with pytest.raises(sdk_exc.ApiConflictError):
        _create_tenant_and_ai(api)
    with pytest.raises(sdk_exc.ApiConflictError):
        _create_tenant_and_ai(api, ai_id='0' * 8 + '-0000-4000-8000-' +
                              '0' * 12)


def test_list_filters_and_pages(api):
    ids = ['00000000-0000-4000-8000-%012d' % i for i in range(7)]
    for i, ai_id in enumerate(ids):
        _create_tenant_and_ai(api, ai_id=ai_id, name='OS-IMAGE-%s' % ai_id)

    everything = api.app_instances.list(tenant=TENANT)
    assert [ai['id'] for ai in everything] == ids

    # limit=3: the SDK stops after the first page, which holds 3.
    assert len(api.app_instances.list(tenant=TENANT, limit=3)) == 3

    found = api.app_instances.list(tenant=TENANT,
                                   filter='name=OS-IMAGE-%s' % ids[4])
    assert [ai['id'] for ai in found] == [ids[4]]
    found = api.app_instances.list(tenant=TENANT,
                                   filter='match(name,.*%s)' % ids[5][-4:])
    assert [ai['id'] for ai in found] == [ids[5]]


def test_list_pages_through_everything_with_a_small_server_page(
        api, monkeypatch):
    from datera_edf_sim.models import listing
    monkeypatch.setattr(listing, 'DEFAULT_LIST_LIMIT', 2)
    ids = ['00000000-0000-4000-8000-%012d' % i for i in range(5)]
    for ai_id in ids:
        _create_tenant_and_ai(api, ai_id=ai_id, name='OS-IMAGE-%s' % ai_id)
    assert [ai['id'] for ai in api.app_instances.list(tenant=TENANT)] == ids


def test_missing_sub_list_is_empty_for_the_sdk(api):
    api.tenants.list()
    ai = _create_tenant_and_ai(api)
    ai.delete(tenant=TENANT)
    assert ai.storage_instances.list(tenant=TENANT) == []


def test_initiators_and_atomic_acl_changes_drive_exports(
        api, dataplane):
    ai = _create_tenant_and_ai(api)
    # v2.1 keeps initiators at the root; v2.2 in the tenant (with force).
    if api.version == 'v2.2':
        init = api.initiators.create(tenant=TENANT, id=h.IQN1,
                                     name='host1', force=True)
        assert init['tenant'] == TENANT
    else:
        init = api.initiators.create(id=h.IQN1, name='host1')
        assert init['tenant'] == '/root'
    with pytest.raises(sdk_exc.ApiConflictError):
        api.initiators.create(tenant=TENANT, id=h.IQN1, name='host1')
    assert api.initiators.get(h.IQN1, tenant=TENANT)['id'] == h.IQN1

    ai.set(tenant=TENANT, admin_state='online')
    si = ai.storage_instances.get('storage-1', tenant=TENANT)
    si.acl_policy.initiators.add(init['path'], tenant=TENANT)
    acl = si.acl_policy.get(tenant=TENANT)
    assert acl['initiators'] == [{'path': '/initiators/%s' % h.IQN1}]
    si = si.reload(tenant=TENANT)
    assert si['active_initiators'] == [h.IQN1]
    assert dataplane.exported_initiators(si['uuid']) == {h.IQN1}

    si.acl_policy.initiators.remove(init['path'], tenant=TENANT)
    assert si.acl_policy.get(tenant=TENANT)['initiators'] == []
    assert dataplane.exported_initiators(si['uuid']) == set()

    # Unused now, so it can go.
    init.delete(tenant=TENANT)
    with pytest.raises(sdk_exc.ApiNotFoundError):
        api.initiators.get(h.IQN1, tenant=TENANT)


def test_acl_policy_full_replace(api):
    ai = _create_tenant_and_ai(api)
    api.initiators.create(tenant=TENANT, id=h.IQN1, name='host1')
    si = ai.storage_instances.list(tenant=TENANT)[0]
    acl = si.acl_policy.get(tenant=TENANT)
    acl.set(tenant=TENANT, initiators=[{'path': '/initiators/%s' % h.IQN1}])
    assert si.acl_policy.get(tenant=TENANT)['initiators'] == [
        {'path': '/initiators/%s' % h.IQN1}]


def test_metadata_is_merged_and_read_back(api, served):
    ai = _create_tenant_and_ai(api)
    api.context.connection.login(name='admin', password='password')
    ai.metadata.set(tenant=TENANT, checksum='abc', type='image')
    ai.metadata.set(tenant=TENANT, length='1024')
    assert dict(ai.metadata.get(tenant=TENANT)) == {
        'checksum': 'abc', 'type': 'image', 'length': '1024'}
    # With 3.3.5.0 the SDK used int_ecosystem_data; the flat endpoint
    # shows the same map.
    assert served.model.get_metadata(TENANT, h.AI_ID)['length'] == '1024'


def test_metadata_goes_to_the_flat_endpoint_below_3_3(
        tmp_path, dataplane):
    model, app = h.new_app(tmp_path / 'old', dataplane=dataplane,
                           sw_version='3.2.1.0')
    served = h.ServedApp(app)
    try:
        api = h.sdk_api(served.port, 'v2.2', tmp_path)
        ai = _create_tenant_and_ai(api)
        ai.metadata.set(tenant=TENANT, type='image')
        assert dict(ai.metadata.get(tenant=TENANT)) == {'type': 'image'}
    finally:
        served.stop()


def test_expired_key_makes_the_sdk_log_in_again(api, served):
    api.tenants.list()
    first = api.context.connection.auth_key
    served.model.expire_all_keys()
    assert len(api.tenants.list()) == 1
    assert api.context.connection.auth_key != first


def test_initiator_group_membership_drives_exports(api, dataplane):
    ai = _create_tenant_and_ai(api)
    api.initiators.create(tenant=TENANT, id=h.IQN1, name='host1')
    api.initiators.create(tenant=TENANT, id=h.IQN2, name='host2')
    group = api.initiator_groups.create(
        tenant=TENANT, name='hosts',
        members=[{'path': '/initiators/%s' % h.IQN1}])
    ai.set(tenant=TENANT, admin_state='online')
    si = ai.storage_instances.list(tenant=TENANT)[0]
    si.acl_policy.initiator_groups.add(group['path'], tenant=TENANT)
    assert dataplane.exported_initiators(si['uuid']) == {h.IQN1}
    group.members.add('/initiators/%s' % h.IQN2, tenant=TENANT)
    assert dataplane.exported_initiators(si['uuid']) == {h.IQN1, h.IQN2}
    group.members.remove('/initiators/%s' % h.IQN1, tenant=TENANT)
    assert dataplane.exported_initiators(si['uuid']) == {h.IQN2}


def test_hosts_adding_themselves_at_once_all_end_up_in_the_acl(
        served, tmp_path, dataplane):
    api = h.sdk_api(served.port, 'v2.2', tmp_path)
    ai = _create_tenant_and_ai(api)
    ai.set(tenant=TENANT, admin_state='online')
    iqns = ['iqn.1993-08.org.debian:01:host%02d' % i for i in range(8)]
    start = threading.Barrier(len(iqns))
    errors = []

    def host(i, iqn):
        try:
            # Each host has its own SDK object, session and schema cache.
            mine = h.sdk_api(served.port, 'v2.2', tmp_path / str(i))
            init = mine.initiators.create(tenant=TENANT, id=iqn,
                                          name='host%02d' % i, force=True)
            si = mine.app_instances.get(h.AI_ID, tenant=TENANT) \
                .storage_instances.get('storage-1', tenant=TENANT)
            start.wait(timeout=30)
            si.acl_policy.initiators.add(init['path'], tenant=TENANT)
        except Exception as e:  # reported below
            errors.append(e)

    for i in range(len(iqns)):
        (tmp_path / str(i)).mkdir()
    threads = [threading.Thread(target=host, args=(i, iqn))
               for i, iqn in enumerate(iqns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    si = ai.storage_instances.get('storage-1', tenant=TENANT)
    assert sorted(p['path'] for p in si['acl_policy']['initiators']) == [
        '/initiators/' + iqn for iqn in iqns]
    assert si['active_initiators'] == iqns
    assert dataplane.exported_initiators(si['uuid']) == set(iqns)
