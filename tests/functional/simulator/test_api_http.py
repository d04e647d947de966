"""The simulator's REST API over Flask's test client: status codes,
envelopes, sessions, tenants, listing."""

import json

import pytest

from datera_edf_sim import models
from tests.functional.simulator import api_helpers as h

T = '/root/glance'
AI_URL = '/app_instances/' + h.AI_ID
SI_URL = AI_URL + '/storage_instances/storage-1'
VOL_URL = SI_URL + '/volumes/volume-1'


@pytest.fixture
def clock():
    return h.FakeClock()


@pytest.fixture
def dataplane():
    return h.FakeDataPlane()


@pytest.fixture
def sim(tmp_path, clock, dataplane):
    model, app = h.new_app(tmp_path / 'sim', dataplane=dataplane,
                           clock=clock, key_ttl=600, resize_seconds=3)
    app.model = model
    return app


@pytest.fixture(params=['v2.1', 'v2.2'])
def client(request, sim):
    c = h.ApiClient(sim, version=request.param, tenant=T).login()
    assert c.post('/tenants', {'name': 'glance'},
                  tenant='/root').status_code == 201
    return c


def _create_ai(client, **kw):
    r = client.post('/app_instances', h.ai_body(**kw))
    assert r.status_code == 201, r.json
    return r.json['data']


def _assert_error(r, status, message_start=''):
    assert r.status_code == status, r.json
    assert r.content_type == 'application/json'
    assert r.json['http'] == status
    assert r.json['message'].startswith(message_start), r.json['message']
    assert r.json['name']


# Envelope and error format

def test_success_answers_carry_the_envelope(client):
    r = client.post('/app_instances', h.ai_body())
    assert r.status_code == 201
    assert r.json['tenant'] == T
    assert r.json['path'] == '/app_instances'
    assert r.json['version'] == client.version
    assert r.json['data']['path'] == AI_URL
    assert r.json['data']['tenant'] == T


def test_delete_answers_json_with_the_deleted_entity(client):
    _create_ai(client)
    r = client.delete(AI_URL)
    assert r.status_code == 200
    assert r.json['data']['id'] == h.AI_ID
    assert r.json['path'] == AI_URL


def test_errors_name_the_request_like_the_envelope(client):
    r = client.get(AI_URL)
    _assert_error(r, 404)
    assert (r.json['tenant'], r.json['path'], r.json['version']) == (
        T, AI_URL, client.version)
    assert r.json['api_req']['op'] == 'GET'


def test_unknown_path_is_a_json_404(client):
    r = client.get('/no_such_thing')
    _assert_error(r, 404, 'No such endpoint')
    assert r.json['version'] == client.version
    _assert_error(client.client.get('/v9/app_instances'), 404)


def test_wrong_method_is_a_json_405(client):
    _assert_error(client.post(AI_URL, {}), 405, 'Method POST not allowed')
    _assert_error(client.delete('/app_instances'), 405)


def test_options_and_head_answers(client):
    _assert_error(client.request('OPTIONS', '/app_instances'), 405)
    r = client.request('HEAD', '/app_instances')
    assert r.status_code == 200


def test_malformed_json_is_a_400(client):
    _assert_error(client.post('/app_instances', raw='{"name": '), 400,
                  'Malformed JSON')


def test_schema_violations_are_422(client):
    r = client.post('/app_instances', {'name': 'x'})
    _assert_error(r, 422, 'Validation failed')
    r = client.post('/app_instances', ['not', 'an', 'object'])
    _assert_error(r, 422, 'Validation failed')


def test_missing_entities_are_404(client):
    _assert_error(client.get(AI_URL), 404)
    _assert_error(client.get('/initiators/' + h.IQN1), 404)
    _create_ai(client)
    _assert_error(client.get(AI_URL + '/storage_instances/storage-9'), 404)
    _assert_error(client.get(SI_URL + '/volumes/volume-9'), 404)


def test_sub_lists_of_a_missing_parent_say_no_data(client):
    r = client.get(AI_URL + '/storage_instances')
    _assert_error(r, 404, 'No data at ')
    _assert_error(client.get(SI_URL + '/volumes'), 404, 'No data at ')


# Sessions

def test_requests_without_a_valid_key_are_401(sim):
    c = h.ApiClient(sim)
    r = c.get('/app_instances')
    _assert_error(r, 401, models.EXPIRED_KEY_MESSAGE)
    c.key = 'not-a-key'
    _assert_error(c.get('/app_instances'), 401)


def test_api_and_system_never_answer_401(sim):
    c = h.ApiClient(sim)
    c.key = 'stale'
    assert c.get('/api').status_code == 200
    r = c.get('/system')
    assert r.status_code == 200
    assert r.json['data']['sw_version'] == '3.3.5.0'


def test_keys_expire_after_the_ttl(sim, clock):
    c = h.ApiClient(sim).login()
    assert c.get('/app_instances').status_code == 200
    clock.now += 601
    r = c.get('/app_instances')
    _assert_error(r, 401)
    assert r.json['message'] == models.EXPIRED_KEY_MESSAGE
    c.login()
    assert c.get('/app_instances').status_code == 200


def test_logout_ends_the_session(sim):
    c = h.ApiClient(sim).login()
    r = c.put('/logout')
    assert r.status_code == 200 and r.json['data'] == {}
    _assert_error(c.get('/app_instances'), 401)


def test_login_checks_credentials_and_accepts_ldap_servers(sim):
    c = h.ApiClient(sim).client
    r = c.put('/v2.2/login', json={'name': 'admin', 'password': 'wrong1'})
    _assert_error(r, 401)
    r = c.put('/v2.2/login', json={'name': 'admin', 'password': 'password',
                                   'remote_server': 'corp-ldap'})
    assert r.status_code == 200
    assert set(r.json) == {'key', 'version', 'request_time'}
    _assert_error(c.put('/v2.2/login', json={'name': 'admin'}), 422)


def test_credentials_and_version_are_configurable(tmp_path):
    _model, app = h.new_app(tmp_path / 's', username='operator',
                            password='s3cret', sw_version='3.2.1.0')
    c = h.ApiClient(app)
    c.login('operator', 's3cret')
    assert c.get('/system').json['data']['sw_version'] == '3.2.1.0'


# Tenants

def test_tenants_are_isolated(client):
    client.post('/tenants', {'name': 'other'}, tenant='/root')
    _create_ai(client)
    for tenant in ('/root', '/root/other'):
        _assert_error(client.get(AI_URL, tenant=tenant), 404)
        r = client.get('/app_instances', tenant=tenant)
        assert r.json['data'] == []
        _assert_error(client.put(AI_URL, {'admin_state': 'online'},
                                 tenant=tenant), 404)
        _assert_error(client.delete(AI_URL, tenant=tenant), 404)
    assert client.get(AI_URL).json['data']['id'] == h.AI_ID


def test_unknown_tenant_header_is_404(client):
    _assert_error(client.get('/app_instances', tenant='/root/nope'), 404)


def test_new_tenants_go_under_root_unless_a_parent_is_given(client):
    r = client.post('/tenants', {'name': 'sibling'})
    assert r.json['data']['path'] == '/root/sibling'


def test_nested_tenants(client):
    r = client.post('/tenants', {'name': 'team', 'parent_path': T},
                    tenant='/root')
    assert r.json['data']['path'] == T + '/team'
    r = client.get('/tenants/root/glance/team', tenant='/root')
    assert r.json['data']['parent_path'] == T
    names = [t['name'] for t in client.get('/tenants',
                                           tenant='/root').json['data']]
    assert names == ['root', 'glance', 'team']
    _assert_error(client.post('/tenants', {'name': 'glance'},
                              tenant='/root'), 409)


def test_initiators_live_in_the_tenant_in_v22_and_at_the_root_in_v21(
        client):
    body = {'id': h.IQN1, 'name': 'host1'}
    r = client.post('/initiators', body)
    assert r.status_code == 201
    expected = '/root' if client.version == 'v2.1' else T
    assert r.json['data']['tenant'] == expected
    _assert_error(client.post('/initiators', body), 409)
    if client.version == 'v2.1':
        _assert_error(client.post('/initiators', dict(body, force=True)),
                      422)
    else:
        # Already held by this tenant: force does not help.
        _assert_error(client.post('/initiators', dict(body, force=True)),
                      409)


# App instances

def test_duplicates_conflict(client):
    _create_ai(client)
    r = client.post('/app_instances', h.ai_body())
    _assert_error(r, 409)
    r = client.post('/app_instances', h.ai_body(
        ai_id='00000000-0000-4000-8000-000000000009'))
    _assert_error(r, 409)


def test_online_offline_and_delete(client, dataplane):
    _create_ai(client)
    client.post('/initiators', {'id': h.IQN1, 'name': 'host1'})
    client.put(SI_URL + '/acl_policy/initiators',
               {'op': 'add', 'path': '/initiators/' + h.IQN1})
    r = client.put(AI_URL, {'admin_state': 'online'})
    si = r.json['data']['storage_instances'][0]
    assert si['op_state'] == 'available'
    assert si['active_initiators'] == [h.IQN1]
    _assert_error(client.delete(AI_URL), 409)
    _assert_error(client.put(AI_URL, {'admin_state': 'offline'}), 409,
                  'App instance')
    r = client.put(AI_URL, {'admin_state': 'offline', 'force': True})
    assert r.json['data']['admin_state'] == 'offline'
    assert client.get(SI_URL).json['data']['op_state'] == 'unavailable'
    assert client.delete(AI_URL).status_code == 200
    assert dataplane.volumes == {}


def test_forced_delete_of_an_online_app_instance(client, dataplane):
    _create_ai(client)
    client.put(AI_URL, {'admin_state': 'online'})
    assert client.delete(AI_URL, {'force': True}).status_code == 200
    _assert_error(client.get(AI_URL), 404)


def test_volume_grow_resizes_for_a_while_and_never_shrinks(client, clock):
    _create_ai(client)
    r = client.put(VOL_URL, {'size': 5})
    assert r.json['data']['op_state'] == 'resizing'
    clock.now += 3.5
    assert client.get(VOL_URL).json['data']['op_state'] == 'available'
    _assert_error(client.put(VOL_URL, {'size': 4}), 422)
    assert client.get(VOL_URL).json['data']['size'] == 5


def test_full_cluster_refuses_creates_and_grows(client, sim):
    sim.model.set_capacity(2)
    _create_ai(client, size=2)
    _assert_error(client.put(VOL_URL, {'size': 3}), 422,
                  models.INSUFFICIENT_CAPACITY_MESSAGE)
    r = client.post('/app_instances', h.ai_body(
        name='second', ai_id='00000000-0000-4000-8000-000000000009'))
    _assert_error(r, 422, models.INSUFFICIENT_CAPACITY_MESSAGE)
    system = client.get('/system').json['data']
    assert system['available_capacity'] == 0


def test_metadata_endpoints_share_one_map(client):
    _create_ai(client)
    r = client.put(AI_URL + '/metadata', {'type': 'image'})
    assert r.json['data'] == {'type': 'image'}
    r = client.put(AI_URL + '/int_ecosystem_data',
                   {'data': {'checksum': 'abc', 'length': 3}})
    assert r.json['data'] == {'type': 'image', 'checksum': 'abc',
                              'length': '3'}
    assert client.get(AI_URL + '/metadata').json['data'] == r.json['data']
    assert client.get(AI_URL + '/int_ecosystem_data').json['data'] == (
        r.json['data'])
    _assert_error(client.put(AI_URL + '/int_ecosystem_data',
                             {'checksum': 'abc'}), 422)
    _assert_error(client.put(AI_URL + '/metadata', {'a': {'b': 1}}), 422)


def test_acl_reference_to_an_unknown_initiator_is_422(client):
    _create_ai(client)
    r = client.put(SI_URL + '/acl_policy/initiators',
                   {'op': 'add', 'path': '/initiators/' + h.IQN2})
    _assert_error(r, 422)


def test_initiator_group_members(client):
    client.post('/initiators', {'id': h.IQN1, 'name': 'host1'})
    r = client.post('/initiator_groups', {'name': 'hosts'})
    assert r.status_code == 201
    r = client.put('/initiator_groups/hosts/members',
                   {'op': 'add', 'path': '/initiators/' + h.IQN1})
    assert r.json['data']['id'] == h.IQN1
    members = client.get('/initiator_groups/hosts/members').json['data']
    assert [m['id'] for m in members] == [h.IQN1]
    assert client.get('/initiator_groups/hosts').json['data'][
        'members'] == [{'path': '/initiators/' + h.IQN1}]
    _assert_error(client.delete('/initiators/' + h.IQN1), 409)
    assert client.delete('/initiator_groups/hosts').status_code == 200
    assert client.delete('/initiators/' + h.IQN1).status_code == 200


# Listing

def _create_many(client, count):
    ids = ['00000000-0000-4000-8000-%012d' % i for i in range(count)]
    for ai_id in ids:
        _create_ai(client, name='ai-%s' % ai_id[-4:], ai_id=ai_id)
    return ids


def test_lists_page_with_offset_and_limit(client):
    ids = _create_many(client, 5)
    r = client.get('/app_instances', query={'offset': 1, 'limit': 2})
    assert [ai['id'] for ai in r.json['data']] == ids[1:3]
    assert r.json['metadata'] == {'offset': 1, 'limit': 2,
                                  'total_count': 5, 'request_count': 2}
    r = client.get('/app_instances', query={'offset': 4, 'limit': 2})
    assert r.json['metadata']['request_count'] == 1
    r = client.get('/app_instances')
    assert r.json['metadata'] == {'offset': 0,
                                  'limit': models.DEFAULT_LIST_LIMIT,
                                  'total_count': 5, 'request_count': 5}


def test_lists_filter_by_name_and_regex(client):
    ids = _create_many(client, 12)
    r = client.get('/app_instances', query={'filter': 'name=ai-0003'})
    assert [ai['id'] for ai in r.json['data']] == [ids[3]]
    assert r.json['metadata']['total_count'] == 1
    r = client.get('/app_instances', query={'filter': 'match(name,ai-001.)'})
    assert [ai['id'] for ai in r.json['data']] == ids[10:12]
    r = client.get('/app_instances',
                   query={'filter': 'match(name,ai-000.)', 'limit': 3})
    assert r.json['metadata']['total_count'] == 10
    assert len(r.json['data']) == 3


def test_bad_list_parameters(client):
    _assert_error(client.get('/app_instances', query={'filter': 'name~x'}),
                  400)
    _assert_error(client.get('/app_instances', query={'limit': 'many'}),
                  422)
    _assert_error(client.get('/app_instances', query={'limit': 5000}), 422)


# The /api document

def test_api_document_lists_what_the_sdk_needs(client):
    doc = client.get('/api').json
    assert doc['version'] == client.version
    assert 'data' not in doc
    for kind in ('io', 'hw'):
        enum = doc['/metrics/%s/:metric' % kind]['read']['urlParamSchema'][
            'metric']['enum']
        assert enum
    segments = {part for key in doc if key.startswith('/')
                for part in key.split('/')}
    for needed in ('app_instances', 'storage_instances', 'volumes',
                   'acl_policy', 'initiators', 'initiator_groups',
                   'members', 'metadata', 'tenants', 'system'):
        assert needed in segments
    assert ('int_ecosystem_data' in segments) == (client.version == 'v2.2')
    assert json.dumps(doc)


# Persistence

def test_a_new_app_over_the_same_data_keeps_state_and_sessions(
        tmp_path, clock):
    _model, app = h.new_app(tmp_path / 'sim', clock=clock)
    c = h.ApiClient(app, tenant=T).login()
    c.post('/tenants', {'name': 'glance'}, tenant='/root')
    _create_ai(c)
    c.post('/initiators', {'id': h.IQN1, 'name': 'host1'})
    c.put(SI_URL + '/acl_policy/initiators',
          {'op': 'add', 'path': '/initiators/' + h.IQN1})
    c.put(AI_URL + '/metadata', {'type': 'image'})
    c.put(AI_URL, {'admin_state': 'online'})
    before = c.get(AI_URL).json['data']

    model2, app2 = h.new_app(tmp_path / 'sim', clock=clock)
    # As the server does on start: exports follow the stored state.
    model2.resync_exports()
    c2 = h.ApiClient(app2, tenant=T)
    c2.key = c.key
    assert c2.get(AI_URL).json['data'] == before
    assert c2.get(AI_URL + '/metadata').json['data'] == {'type': 'image'}
    assert c2.get(SI_URL + '/acl_policy').json['data']['initiators'] == [
        {'path': '/initiators/' + h.IQN1}]
