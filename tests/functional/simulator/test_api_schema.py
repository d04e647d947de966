"""The simulator against Datera's published v2.1 API schema.

Responses must validate against the real ``returnParamSchema``, and the
real ``bodyParamSchema`` and the simulator must accept and refuse the same
request bodies, for every endpoint the project uses. The real document
lives in the shared folder next to the repository (``../shared``); these
tests skip, saying so, where it is absent.
"""

import jsonschema
import pytest

from datera_edf_sim import apidoc
from datera_edf_sim import schemas
from tests.functional.simulator import api_helpers as h

TENANT = '/root/glance'
EUI = 'eui.0123456789abcdef'
SI = '/app_instances/%s/storage_instances/storage-1' % h.AI_ID
VOL = SI + '/volumes/volume-1'


@pytest.fixture(scope='module')
def real():
    return h.load_real_schema()


def _real_key(real, sim_path):
    """The real document's key for one of the simulator's paths."""
    if sim_path.startswith('/tenants/:'):
        return [k for k in real if k.startswith('/tenants/:')][0]
    return sim_path.replace(':initiator_id', ':id')


def _real_op(real, sim_path, op):
    return real[_real_key(real, sim_path)][op]


def _validator(schema):
    return jsonschema.Draft4Validator(h.clean_schema(schema))


# (simulator endpoint path, operation, body, valid?) -- expectations are
# what the real schema says; the test checks both agree with them.
AI_CREATE = h.ai_body()
BODY_CASES = [
    ('/app_instances', 'create', AI_CREATE, True),
    ('/app_instances', 'create', dict(AI_CREATE, name=h.AI_ID), True),
    ('/app_instances', 'create', dict(AI_CREATE, descr=None), True),
    ('/app_instances', 'create',
     dict(AI_CREATE, access_control_mode='allow_all'), True),
    ('/app_instances', 'create', {'name': 'plain-ai'}, True),
    ('/app_instances', 'create',
     {'name': 'ai-with-acl', 'storage_instances': [{
         'name': 'storage-1',
         'acl_policy': {'initiators': [{'path': '/initiators/' + h.IQN1}]},
         'volumes': [{'name': 'volume-1', 'size': 1.5}]}]}, True),
    ('/app_instances', 'create', {'uuid': h.AI_ID}, False),
    ('/app_instances', 'create', dict(AI_CREATE, bogus=1), False),
    ('/app_instances', 'create', dict(AI_CREATE, name='ab'), False),
    ('/app_instances', 'create', dict(AI_CREATE, name='1abc'), False),
    ('/app_instances', 'create', dict(AI_CREATE, uuid='not-a-uuid'), False),
    ('/app_instances', 'create', dict(AI_CREATE, create_mode='bogus'),
     False),
    ('/app_instances', 'create',
     dict(AI_CREATE, access_control_mode='maybe'), False),
    ('/app_instances', 'create', h.ai_body(size=0), False),
    ('/app_instances', 'create', h.ai_body(size=40000), False),
    ('/app_instances', 'create', h.ai_body(size='1'), False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'storage_instances': [{'volumes': []}]}, False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'storage_instances': [
         {'name': 'storage-1', 'volumes': [{'name': 'volume-1'}]}]}, False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'storage_instances': [
         {'name': 'storage-1', 'volumes': [
             {'name': 'volume-1', 'size': 1, 'replica_count': 6}]}]},
     False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'storage_instances': [
         {'name': 'storage-1', 'volumes': [
             {'name': 'volume-1', 'size': 1, 'placement_mode': 'ssd'}]}]},
     False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'storage_instances': [
         {'name': 'storage-1', 'acl_policy': {
             'initiators': [{'path': 'relative'}]}}]}, False),
    ('/app_instances', 'create',
     {'name': 'ai-x', 'snapshot_policies': [{'name': 'snap1',
                                             'interval': '1day'}]}, False),
    (schemas.AI_PATH, 'update', {'admin_state': 'online'}, True),
    (schemas.AI_PATH, 'update', {'admin_state': 'offline', 'force': True},
     True),
    (schemas.AI_PATH, 'update', {'name': 'new-name'}, True),
    (schemas.AI_PATH, 'update', {'admin_state': 'up'}, False),
    (schemas.AI_PATH, 'update', {'force': 'yes'}, False),
    (schemas.AI_PATH, 'update', {'size': 3}, False),
    (schemas.AI_PATH, 'delete', {}, True),
    (schemas.AI_PATH, 'delete', {'force': True}, True),
    (schemas.AI_PATH, 'delete', {'force': 1}, False),
    (schemas.AI_PATH, 'delete', {'everything': True}, False),
    (schemas.VOLUME_PATH, 'update', {'size': 2}, True),
    (schemas.VOLUME_PATH, 'update', {'size': 2, 'replica_count': 2}, True),
    (schemas.VOLUME_PATH, 'update', {'size': 0}, False),
    (schemas.VOLUME_PATH, 'update', {'size': 'big'}, False),
    (schemas.VOLUME_PATH, 'update', {'name': 'volume-2'}, False),
    (schemas.SI_PATH, 'update', {'acl_policy': {'initiators': []}}, True),
    (schemas.SI_PATH, 'update', {'access_control_mode': 'deny_all'}, True),
    (schemas.SI_PATH, 'update', {'bogus': 1}, False),
    (schemas.SI_PATH + '/acl_policy', 'update',
     {'initiators': [{'path': '/initiators/' + h.IQN1}]}, True),
    (schemas.SI_PATH + '/acl_policy', 'update',
     {'initiators': [], 'initiator_groups': []}, True),
    (schemas.SI_PATH + '/acl_policy', 'update',
     {'initiators': [{'path': '/initiators/x', 'name': 'x'}]}, False),
    (schemas.SI_PATH + '/acl_policy', 'update', {'initiators': 'all'},
     False),
    (schemas.SI_PATH + '/acl_policy', 'update', {'hosts': []}, False),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update',
     {'op': 'add', 'path': '/initiators/' + h.IQN1}, True),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update',
     {'op': 'remove', 'path': '/initiators/' + h.IQN1, 'extra': 1}, True),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update',
     {'op': 'toggle', 'path': '/initiators/' + h.IQN1}, False),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update',
     {'path': '/initiators/' + h.IQN1}, False),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update', {'op': 'add'},
     False),
    (schemas.SI_PATH + '/acl_policy/initiator_groups', 'update',
     {'op': 'add', 'path': '/initiator_groups/hosts'}, True),
    ('/initiators', 'create', {'id': h.IQN1, 'name': 'host1'}, True),
    ('/initiators', 'create', {'id': EUI, 'name': 'OpenStack-1234abcd'},
     True),
    ('/initiators', 'create', {'id': h.IQN1, 'name': 'host1',
                               'force': True}, False),
    ('/initiators', 'create', {'id': 'iqn.short', 'name': 'host1'}, False),
    ('/initiators', 'create', {'id': 'eui.0123', 'name': 'host1'}, False),
    ('/initiators', 'create', {'id': h.IQN1, 'name': 'h'}, False),
    ('/initiators', 'create', {'id': h.IQN1}, False),
    ('/initiators/:initiator_id', 'update', {'name': 'host one'}, True),
    ('/initiators/:initiator_id', 'update', {'id': h.IQN2}, False),
    ('/initiator_groups', 'create',
     {'name': 'hosts', 'members': [{'path': '/initiators/' + h.IQN1}]},
     True),
    ('/initiator_groups', 'create', {'name': 'hosts'}, True),
    ('/initiator_groups', 'create', {'members': []}, False),
    ('/initiator_groups', 'create', {'name': 'hosts', 'extra': 1}, False),
    ('/initiator_groups/:name', 'update', {'members': []}, True),
    ('/initiator_groups/:name', 'update', {'name': 'other'}, False),
    ('/initiator_groups/:name/members', 'update',
     {'op': 'add', 'path': '/initiators/' + h.IQN1}, True),
    ('/initiator_groups/:name/members', 'update', {'op': 'add'}, False),
    ('/tenants', 'create', {'name': 'glance'}, True),
    ('/tenants', 'create', {'name': 'glance', 'parent_path': '/root'}, True),
    ('/tenants', 'create', {'name': 'g'}, False),
    ('/tenants', 'create', {'name': 'glance', 'extra': 1}, False),
    ('/tenants', 'create', {}, False),
    ('/login', 'update', {'name': 'admin', 'password': 'password'}, True),
    ('/login', 'update', {'name': 'admin', 'password': 'password',
                          'remote_server': 'ldap-1'}, True),
    ('/login', 'update', {'name': 'admin'}, False),
    ('/login', 'update', {'name': 'ad', 'password': 'password'}, False),
    ('/login', 'update', {'name': 'admin', 'password': '1pass'}, False),
]


def _case_id(case):
    path, op, body, valid = case
    return '%s-%s-%s' % (op, path.split('/')[-1] or 'root',
                         'ok' if valid else 'bad')


@pytest.mark.parametrize('case', BODY_CASES, ids=_case_id)
def test_bodies_are_accepted_and_refused_like_the_real_schema(real, case):
    path, op, body, valid = case
    real_ok = _validator(
        _real_op(real, path, op)['bodyParamSchema']).is_valid(body)
    sim_schema = schemas.find(path).ops[op].body('v2.1')
    sim_ok = jsonschema.Draft7Validator(sim_schema).is_valid(body)
    assert (real_ok, sim_ok) == (valid, valid)


def test_v22_accepts_force_on_initiator_creation():
    body = {'id': h.IQN1, 'name': 'host1', 'force': True}
    v22 = schemas.find('/initiators').ops['create'].body('v2.2')
    assert jsonschema.Draft7Validator(v22).is_valid(body)
    assert not jsonschema.Draft7Validator(v22).is_valid(
        dict(body, force='yes'))


@pytest.mark.parametrize('case', [c for c in BODY_CASES if not c[3]],
                         ids=_case_id)
def test_refused_bodies_get_422_from_the_server(tmp_path, case):
    path, op, body, _valid = case
    _model, app = h.new_app(tmp_path / 'sim')
    client = h.ApiClient(app, version='v2.1').login()
    url = (path.replace(':id', h.AI_ID)
           .replace(':storage_instance_name', 'storage-1')
           .replace(':volume_name', 'volume-1')
           .replace(':initiator_id', h.IQN1)
           .replace(':name', 'hosts'))
    method = schemas.OP_METHODS[op]
    if path == '/login':
        r = client.client.put('/v2.1/login', json=body)
    else:
        r = client.request(method, url, body)
    assert r.status_code == 422, r.json
    assert r.json['message'].startswith('Validation failed')


@pytest.fixture
def populated(tmp_path):
    """A client over a simulator holding one of everything, online."""
    _model, app = h.new_app(tmp_path / 'sim', dataplane=h.FakeDataPlane())
    c = h.ApiClient(app, version='v2.1').login()
    responses = {}

    def call(key, method, path, body=None, tenant=TENANT):
        r = c.request(method, path, body, tenant=tenant)
        assert r.status_code in (200, 201), (path, r.json)
        responses.setdefault(key, []).append(r.json)
        return r.json

    call(('/tenants', 'create'), 'POST', '/tenants', {'name': 'glance'},
         tenant='/root')
    call(('/tenants', 'read'), 'GET', '/tenants', tenant='/root')
    call((schemas.TENANT_PATH, 'read'), 'GET', '/tenants/root/glance',
         tenant='/root')
    call(('/initiators', 'create'), 'POST', '/initiators',
         {'id': h.IQN1, 'name': 'host1'})
    call(('/initiators', 'read'), 'GET', '/initiators')
    call(('/initiators/:initiator_id', 'read'), 'GET',
         '/initiators/' + h.IQN1)
    call(('/initiators/:initiator_id', 'update'), 'PUT',
         '/initiators/' + h.IQN1, {'name': 'host one'})
    call(('/initiators', 'create'), 'POST', '/initiators',
         {'id': h.IQN2, 'name': 'host2'})
    call(('/initiator_groups', 'create'), 'POST', '/initiator_groups',
         {'name': 'hosts', 'members': [{'path': '/initiators/' + h.IQN2}]})
    call(('/initiator_groups', 'read'), 'GET', '/initiator_groups')
    call(('/initiator_groups/:name', 'read'), 'GET',
         '/initiator_groups/hosts')
    call(('/initiator_groups/:name/members', 'update'), 'PUT',
         '/initiator_groups/hosts/members',
         {'op': 'add', 'path': '/initiators/' + h.IQN1})
    call(('/initiator_groups/:name/members', 'read'), 'GET',
         '/initiator_groups/hosts/members')
    call(('/app_instances', 'create'), 'POST', '/app_instances',
         h.ai_body())
    call((schemas.AI_PATH, 'update'), 'PUT', '/app_instances/' + h.AI_ID,
         {'admin_state': 'online'})
    call((schemas.SI_PATH + '/acl_policy/initiators', 'update'), 'PUT',
         SI + '/acl_policy/initiators',
         {'op': 'add', 'path': '/initiators/' + h.IQN1})
    call((schemas.SI_PATH + '/acl_policy/initiator_groups', 'update'),
         'PUT', SI + '/acl_policy/initiator_groups',
         {'op': 'add', 'path': '/initiator_groups/hosts'})
    call((schemas.SI_PATH + '/acl_policy', 'update'), 'PUT',
         SI + '/acl_policy',
         {'initiators': [{'path': '/initiators/' + h.IQN1}]})
    call((schemas.VOLUME_PATH, 'update'), 'PUT', VOL, {'size': 2})
    for key, path in [
            (('/app_instances', 'read'), '/app_instances'),
            ((schemas.AI_PATH, 'read'), '/app_instances/' + h.AI_ID),
            ((schemas.AI_PATH + '/storage_instances', 'read'),
             '/app_instances/%s/storage_instances' % h.AI_ID),
            ((schemas.SI_PATH, 'read'), SI),
            ((schemas.SI_PATH + '/acl_policy', 'read'), SI + '/acl_policy'),
            ((schemas.SI_PATH + '/acl_policy/initiators', 'read'),
             SI + '/acl_policy/initiators'),
            ((schemas.SI_PATH + '/acl_policy/initiator_groups', 'read'),
             SI + '/acl_policy/initiator_groups'),
            ((schemas.SI_PATH + '/volumes', 'read'), SI + '/volumes'),
            ((schemas.VOLUME_PATH, 'read'), VOL),
            (('/system', 'read'), '/system'),
            (('/storage_nodes', 'read'), '/storage_nodes')]:
        call(key, 'GET', path)
    call((schemas.AI_PATH, 'update'), 'PUT', '/app_instances/' + h.AI_ID,
         {'admin_state': 'offline', 'force': True})
    call((schemas.SI_PATH + '/acl_policy', 'update'), 'PUT',
         SI + '/acl_policy', {'initiators': [], 'initiator_groups': []})
    call((schemas.AI_PATH, 'delete'), 'DELETE', '/app_instances/' + h.AI_ID,
         {})
    call(('/initiator_groups/:name', 'delete'), 'DELETE',
         '/initiator_groups/hosts')
    call(('/initiators/:initiator_id', 'delete'), 'DELETE',
         '/initiators/' + h.IQN2)
    return responses


def test_every_response_validates_against_the_real_return_schema(
        real, populated):
    checked = 0
    for (path, op), envelopes in sorted(populated.items()):
        # Some operations document no return schema; they answer the
        # same entity as the endpoint's read.
        schema = _real_op(real, path, op).get(
            'returnParamSchema', _real_op(real, path, 'read').get(
                'returnParamSchema'))
        validator = _validator(schema)
        for envelope in envelopes:
            data = envelope['data']
            items = data if isinstance(data, list) else [data]
            assert items, (path, op, 'nothing to check')
            for item in items:
                errors = sorted(validator.iter_errors(item), key=str)
                assert not errors, (path, op, [e.message for e in errors])
                checked += 1
    assert checked >= 30


def test_every_response_validates_against_the_simulators_own_schema(
        populated):
    for (path, op), envelopes in sorted(populated.items()):
        schema = schemas.find(path).ops[op].returns
        validator = jsonschema.Draft7Validator(schema)
        for envelope in envelopes:
            data = envelope['data']
            for item in data if isinstance(data, list) else [data]:
                errors = [e.message for e in validator.iter_errors(item)]
                assert not errors, (path, op, errors)


def test_envelopes_name_the_request_path_tenant_and_version(populated):
    envelope = populated[(schemas.AI_PATH, 'read')][0]
    assert envelope['path'] == '/app_instances/' + h.AI_ID
    assert envelope['tenant'] == TENANT
    assert envelope['version'] == 'v2.1'
    assert set(envelope) == {'tenant', 'path', 'version', 'data'}


def test_every_endpoint_the_project_uses_exists_in_the_real_document(real):
    for endpoint in schemas.ENDPOINTS:
        if endpoint.path in ('/app_instances/:id/int_ecosystem_data',):
            continue  # v2.2 only; the real document is v2.1
        key = _real_key(real, endpoint.path)
        assert key in real, endpoint.path
        for op in endpoint.ops:
            if 'metadata' in endpoint.path:
                continue  # the real document lists no operations here
            assert op in real[key], (endpoint.path, op)


def test_generated_document_has_the_real_layout(real):
    doc = apidoc.build('v2.1')
    assert doc['version'] == 'v2.1'
    shared = set(doc) & set(real)
    assert {'/app_instances', '/app_instances/:id', '/initiators',
            '/metrics/io/:metric', '/metrics/hw/:metric'} <= shared
    for key in shared - {'version', 'request_time'}:
        for op, body in doc[key].items():
            assert set(body) <= set(real[key].get(op, body)) | {
                'descr', 'minVersion', 'entity', 'returnParamSchema',
                'urlParamSchema', 'bodyParamSchema', 'op', 'path'}
            assert body['op'] == op


def test_generated_document_shares_no_description_text(real):
    real_texts = set()

    def collect(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ('descr', 'fmthelp') and isinstance(v, str) and (
                        len(v) > 20):
                    real_texts.add(v)
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)
    collect(real)
    ours = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str):
                    ours.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(apidoc.build('v2.2'))
    assert real_texts and not real_texts & set(ours)
