"""Unit tests for datera_glance.edf: the SDK adapter.

Only the network is faked, at the lowest level requests offers: a
transport adapter mounted on the client's own ``requests.Session``
answers like an EDF cluster. Everything above it (the SDK, our
connection subclass, retries, error translation) is the real code.
"""

import json
import logging
import os
import re
import stat
import tempfile
import threading
import time

from glance_store import exceptions
import pytest
import requests
import requests.adapters

from datera_glance import edf

IMAGE = '6a5c4e3b-0f7f-4b8e-9a55-0c1a2b3c4d5e'
PASSWORD = 'S3cret-passw0rd'
SCHEMA = {
    '/metrics/io/:metric': {'read': {'urlParamSchema': {
        'metric': {'enum': ['reads']}}}},
    '/metrics/hw/:metric': {'read': {'urlParamSchema': {
        'metric': {'enum': ['cpu']}}}},
    '/app_instances': {'create': {}, 'read': {}},
    '/app_instances/:id': {'read': {}, 'update': {}, 'delete': {}},
    '/tenants': {'create': {}, 'read': {}},
    '/initiators': {'create': {}, 'read': {}},
    '/system': {'read': {}},
}


class FakeEdf(requests.adapters.BaseAdapter):
    """Answers requests like an EDF cluster, from a table of handlers.

    ``routes`` maps ``(METHOD, regex on the path after /v2.x)`` to a
    handler ``(request, match) -> (status, body)``; a handler may raise a
    requests exception to simulate the network failing. ``script`` queues
    one-shot answers per (method, path regex) that take precedence.
    """

    def __init__(self):
        super().__init__()
        self.calls = []
        self.script = []
        self.routes = {}
        self.versions = ('v2.2', 'v2.1')
        self.key = 'key-1'
        self.routes[('PUT', r'/login')] = self.login
        self.routes[('GET', r'/api')] = lambda r, m: (200, SCHEMA)
        self.routes[('GET', r'/system')] = lambda r, m: (
            200, {'data': {'sw_version': '3.3.5.0'}})

    def login(self, request, match):
        body = json.loads(request.body)
        if body['password'] != PASSWORD:
            return 401, {'message': 'Invalid credentials'}
        return 200, {'key': self.key}

    def add(self, method, path, status, body=None, times=1):
        for _ in range(times):
            self.script.append((method, path, status, body))

    def send(self, request, **kwargs):
        url = requests.utils.urlparse(request.url)
        version, path = re.match(r'/(v[\d.]+)(/.*)', url.path).groups()
        self.calls.append({'method': request.method, 'path': path,
                           'version': version, 'url': request.url,
                           'headers': dict(request.headers),
                           'body': request.body, 'kwargs': kwargs})
        if version not in self.versions:
            return self._response(request, 404, {'message': 'No such API'})
        for i, (method, pattern, status, body) in enumerate(self.script):
            if method == request.method and re.fullmatch(pattern, path):
                del self.script[i]
                if isinstance(status, Exception):
                    raise status
                return self._response(request, status, body)
        if (path != '/login' and
                request.headers.get('Auth-Token') != self.key):
            return self._response(request, 401, {
                'message': 'The key provided with the request does not '
                           'correspond to a valid session.'})
        for (method, pattern), handler in self.routes.items():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                status, body = handler(request, match)
                return self._response(request, status, body)
        return self._response(request, 404, {
            'message': 'No data at %s' % path})

    @staticmethod
    def _response(request, status, body):
        resp = requests.Response()
        resp.status_code = status
        resp.reason = 'R%d' % status
        resp._content = json.dumps(body if body is not None else {}).encode()
        resp.url = request.url
        resp.request = request
        return resp

    def close(self):
        pass

    def count(self, method, path):
        return sum(1 for c in self.calls
                   if c['method'] == method and re.fullmatch(path, c['path']))


def make_client(fake, tmp_path, **overrides):
    values = dict(san_ip='192.0.2.10', login='admin', password=PASSWORD,
                  retry_attempts=3, retry_interval=0.01,
                  operation_timeout=5.0, request_timeout=2.0,
                  schema_cache_dir=str(tmp_path / 'schema'))
    values.update(overrides)
    client = edf.EdfClient(edf.EdfSettings(**values))
    real_new_api = client._new_api

    def new_api(version):
        api, conn = real_new_api(version)
        conn._session.mount('http://', fake)
        conn._session.mount('https://', fake)
        return api, conn
    client._new_api = new_api
    return client


@pytest.fixture
def fake():
    return FakeEdf()


@pytest.fixture
def client(fake, tmp_path):
    return make_client(fake, tmp_path)


def ai_body(name=None, admin_state='offline', descr=None, acl=(),
            active=(), access=True):
    si = {'path': '/app_instances/%s/storage_instances/storage-1' % IMAGE,
          'name': 'storage-1', 'admin_state': admin_state,
          'op_state': ('available' if admin_state == 'online'
                       else 'unavailable'),
          'acl_policy': {'initiators': [{'path': p} for p in acl],
                         'initiator_groups': []},
          'active_initiators': list(active),
          'volumes': [{'name': 'volume-1', 'size': 1}]}
    if access:
        si['access'] = {'ips': ['10.0.0.1', '10.0.0.2'],
                        'iqn': 'iqn.2013-05.com.daterainc:tc:01:sn:abc'}
    body = {'path': '/app_instances/%s' % IMAGE, 'id': IMAGE,
            'name': name or edf.ai_name(IMAGE), 'admin_state': admin_state,
            'storage_instances': [si]}
    if descr is not None:
        body['descr'] = descr
    return body


# -- transport: port, scheme, TLS, timeouts, sessions ----------------------

@pytest.mark.parametrize('port,url', [
    (7718, 'https://192.0.2.10:7718/v2.2/login'),
    (7717, 'http://192.0.2.10:7717/v2.2/login'),
    (443, 'https://192.0.2.10:443/v2.2/login'),
])
def test_san_port_is_honoured_and_7717_means_plain_http(
        fake, tmp_path, port, url):
    make_client(fake, tmp_path, san_port=port).check_connection()
    assert fake.calls[0]['url'] == url


def test_tls_is_verified_by_default(fake, client):
    client.check_connection()
    # True, or the CA bundle named by REQUESTS_CA_BUNDLE: verified either
    # way.
    assert all(c['kwargs']['verify'] not in (False, None, '')
               for c in fake.calls)


def test_ca_file_is_used_to_verify(fake, tmp_path):
    make_client(fake, tmp_path, ca_file='/etc/ssl/datera.pem',
                insecure=True).check_connection()
    assert {c['kwargs']['verify'] for c in fake.calls} == {
        '/etc/ssl/datera.pem'}


def test_insecure_turns_verification_off_with_a_warning(
        fake, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        make_client(fake, tmp_path, insecure=True).check_connection()
    assert {c['kwargs']['verify'] for c in fake.calls} == {False}
    assert 'datera_api_insecure' in caplog.text


def test_every_request_has_a_real_timeout(fake, client):
    client.check_connection()
    timeouts = [c['kwargs']['timeout'] for c in fake.calls]
    assert timeouts and all(0 < t <= 2.0 for t in timeouts)


def test_one_session_is_reused_for_all_requests(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        200, {'data': {'size': 3}})
    client.volume_size_gib(IMAGE)
    session = client._conn._session
    assert client.volume_size_gib(IMAGE) == 3
    assert client._conn._session is session
    assert isinstance(session, requests.Session)


def test_requests_carry_tenant_token_and_driver_headers(fake, tmp_path):
    client = make_client(fake, tmp_path, tenant='glance')
    fake.routes[('GET', r'/tenants/root/glance')] = lambda r, m: (
        200, {'data': {'name': 'glance'}})
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        200, {'data': {'size': 3}})
    client.volume_size_gib(IMAGE)
    call = fake.calls[-1]
    assert call['headers']['tenant'] == '/root/glance'
    assert call['headers']['Auth-Token'] == 'key-1'
    assert call['headers']['Datera-Driver'] == edf.DRIVER_HEADER


def test_sdk_does_not_configure_global_logging(fake, client):
    root_handlers = list(logging.getLogger().handlers)
    client.check_connection()
    assert logging.getLogger().handlers == root_handlers
    assert not [f for f in os.listdir('.') if f.startswith('dsdk_')]


def test_schema_cache_is_private_and_reused(fake, tmp_path):
    make_client(fake, tmp_path).check_connection()
    make_client(fake, tmp_path).check_connection()
    assert fake.count('GET', '/api') == 1
    folder = tmp_path / 'schema'
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len(list(folder.iterdir())) == 1


def test_default_schema_cache_is_a_private_folder_not_tmp(fake, tmp_path):
    client = make_client(fake, tmp_path, schema_cache_dir=None)
    client.check_connection()
    folder = os.path.dirname(client._conn._schema_file)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert client._conn._schema_file != '/tmp/.cached-schema'


def test_corrupt_schema_cache_is_replaced(fake, tmp_path):
    client = make_client(fake, tmp_path)
    client.check_connection()
    with open(client._conn._schema_file, 'w') as f:
        f.write('{not json')
    make_client(fake, tmp_path).check_connection()
    with open(client._conn._schema_file) as f:
        assert 'v2.2' in json.load(f)


# -- API version negotiation ------------------------------------------------

def test_auto_prefers_v22(fake, client):
    client.check_connection()
    assert client.api_version == 'v2.2'


def test_auto_falls_back_to_v21_when_v22_is_not_served(fake, client):
    fake.versions = ('v2.1',)
    client.check_connection()
    assert client.api_version == 'v2.1'
    assert [c['version'] for c in fake.calls][:2] == ['v2.2', 'v2.1']


def test_pinned_version_does_not_fall_back(fake, tmp_path):
    fake.versions = ('v2.1',)
    client = make_client(fake, tmp_path, api_version='2.2')
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_api_version'):
        client.check_connection()


def test_v21_registers_initiators_at_the_root(fake, tmp_path):
    fake.versions = ('v2.1',)
    client = make_client(fake, tmp_path, tenant='glance')
    fake.routes[('GET', r'/tenants/root/glance')] = lambda r, m: (200, {})
    fake.routes[('POST', r'/initiators')] = lambda r, m: (200, {})
    client.ensure_initiator('iqn.1994-05.com.redhat:h1', 'OpenStack-1')
    post = [c for c in fake.calls if c['path'] == '/initiators'][0]
    assert post['headers']['tenant'] == '/root'
    assert 'force' not in json.loads(post['body'])


def test_v22_registers_initiators_in_the_tenant(fake, tmp_path):
    client = make_client(fake, tmp_path, tenant='glance')
    fake.routes[('GET', r'/tenants/root/glance')] = lambda r, m: (200, {})
    fake.routes[('POST', r'/initiators')] = lambda r, m: (409, {
        'message': 'exists'})
    client.ensure_initiator('iqn.1994-05.com.redhat:h1', 'OpenStack-1')
    client.ensure_initiator('iqn.1994-05.com.redhat:h1', 'OpenStack-1')
    posts = [c for c in fake.calls if c['path'] == '/initiators']
    assert len(posts) == 1, 'registration is cached'
    assert posts[0]['headers']['tenant'] == '/root/glance'
    assert json.loads(posts[0]['body'])['force'] is True


# -- login failures -> BadStoreConfiguration, passwords never logged --------

def test_wrong_password_names_the_options_and_is_never_logged(
        fake, tmp_path, caplog):
    client = make_client(fake, tmp_path, password='Wrong-' + PASSWORD)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(exceptions.BadStoreConfiguration) as e:
            client.check_connection()
    assert 'datera_san_password' in str(e.value)
    assert PASSWORD not in str(e.value)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(client.settings)
    assert fake.count('PUT', '/login') == 1, 'auth failures are not retried'


def test_no_token_or_password_in_debug_logs(fake, client, caplog):
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        200, {'data': {'size': 3}})
    with caplog.at_level(logging.DEBUG):
        client.volume_size_gib(IMAGE)
    assert 'Datera API GET' in caplog.text, 'requests are logged'
    assert PASSWORD not in caplog.text
    assert 'key-1' not in caplog.text


def test_tls_failure_names_the_ca_option_and_is_not_retried(fake, client):
    fake.add('PUT', '/login', requests.exceptions.SSLError(
        'certificate verify failed'))
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_ca_certificates_file'):
        client.check_connection()
    assert fake.count('PUT', '/login') == 1


def test_unreachable_cluster_names_the_address_options(fake, client):
    fake.add('PUT', '/login', requests.exceptions.ConnectionError(
        'Connection refused'), times=10)
    # An outage, not a configuration error: the store stays enabled.
    with pytest.raises(edf.ClusterUnreachable, match='datera_san_ip'):
        client.check_connection()
    assert fake.count('PUT', '/login') == 4, '1 try + retry_attempts'


def test_start_up_check_tries_once(fake, client):
    fake.add('PUT', '/login', requests.exceptions.ConnectionError(
        'Connection refused'), times=10)
    with pytest.raises(edf.ClusterUnreachable, match='192.0.2.10'):
        client.check_connection(timeout=2)
    assert fake.count('PUT', '/login') == 1


def test_expired_key_logs_in_again(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        200, {'data': {'size': 3}})
    client.volume_size_gib(IMAGE)
    fake.key = 'key-2'      # the server forgot key-1
    assert client.volume_size_gib(IMAGE) == 3
    assert fake.count('PUT', '/login') == 2
    assert fake.count('GET', '/api') == 1, 'the schema is kept'


# -- bounded retries ----------------------------------------------------------

def _volume_route(fake, size=3):
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        200, {'data': {'size': size}})


def test_503_is_retried_then_succeeds(fake, client):
    _volume_route(fake)
    client.check_connection()
    fake.add('GET', r'/app_instances/.*', 503, {'message': 'busy'}, times=2)
    assert client.volume_size_gib(IMAGE) == 3
    assert fake.count('GET', r'/app_instances/.*') == 3


def test_500_while_initializing_is_retried(fake, client):
    _volume_route(fake)
    client.check_connection()
    fake.add('GET', r'/app_instances/.*', 500,
             {'message': 'REST server is still initializing'})
    assert client.volume_size_gib(IMAGE) == 3


def test_other_500_is_not_retried(fake, client):
    client.check_connection()
    fake.add('GET', r'/app_instances/.*', 500, {'message': 'boom'})
    with pytest.raises(exceptions.BackendException, match=IMAGE):
        client.volume_size_gib(IMAGE)
    assert fake.count('GET', r'/app_instances/.*') == 1


def test_retries_stop_after_retry_attempts(fake, client):
    client.check_connection()
    fake.add('GET', r'/app_instances/.*', 503, {'message': 'busy'},
             times=10)
    with pytest.raises(exceptions.BackendException) as e:
        client.volume_size_gib(IMAGE)
    assert IMAGE in str(e.value) and 'busy' in str(e.value)
    assert fake.count('GET', r'/app_instances/.*') == 4


def test_retries_stop_at_the_operation_timeout(fake, tmp_path):
    client = make_client(fake, tmp_path, retry_attempts=1000,
                         retry_interval=0.05, operation_timeout=0.5)
    client.check_connection()
    fake.add('GET', r'/app_instances/.*', requests.exceptions.ConnectTimeout(
        'timed out'), times=1000)
    started = time.monotonic()
    with pytest.raises(exceptions.BackendException, match='did not answer'):
        client.volume_size_gib(IMAGE)
    assert time.monotonic() - started < 2.0
    assert 3 <= fake.count('GET', r'/app_instances/.*') <= 12


def test_request_timeout_shrinks_to_the_remaining_operation_time(
        fake, tmp_path):
    client = make_client(fake, tmp_path, request_timeout=30.0,
                         operation_timeout=1.0)
    client.check_connection()
    assert all(c['kwargs']['timeout'] <= 1.0 for c in fake.calls)


# -- error mapping ------------------------------------------------------------

def test_missing_image_is_notfound_naming_it(fake, client):
    with pytest.raises(exceptions.NotFound, match=IMAGE):
        client.volume_size_gib(IMAGE)


def test_missing_image_on_delete_is_notfound(fake, client):
    with pytest.raises(exceptions.NotFound, match=IMAGE):
        client.delete_image_volume(IMAGE)


def test_missing_image_metadata_is_notfound(fake, client):
    with pytest.raises(exceptions.NotFound, match=IMAGE):
        client.get_image_metadata(IMAGE)


def test_image_without_metadata_reads_as_empty(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body()})
    assert client.get_image_metadata(IMAGE) == {}


def test_metadata_goes_to_int_ecosystem_data_from_3_3(fake, client):
    seen = {}

    def put(request, match):
        seen['body'] = json.loads(request.body)
        return 200, {'data': {}}
    fake.routes[('PUT', r'/app_instances/[^/]+/int_ecosystem_data')] = put
    fake.routes[('GET', r'/app_instances/[^/]+/int_ecosystem_data')] = (
        lambda r, m: (200, {'data': {'checksum': 'abc', 'length': '5'}}))
    client.set_image_metadata(IMAGE, {'checksum': 'abc', 'length': 5})
    assert seen['body'] == {'data': {'checksum': 'abc', 'length': '5'}}
    assert client.get_image_metadata(IMAGE) == {'checksum': 'abc',
                                                'length': '5'}


def test_metadata_goes_to_metadata_before_3_3(fake, client):
    fake.routes[('GET', r'/system')] = lambda r, m: (
        200, {'data': {'sw_version': '3.2.1.0'}})
    seen = {}

    def put(request, match):
        seen['body'] = json.loads(request.body)
        return 200, {'data': {}}
    fake.routes[('PUT', r'/app_instances/[^/]+/metadata')] = put
    client.set_image_metadata(IMAGE, {'type': 'image'})
    assert seen['body'] == {'type': 'image'}


def test_create_conflict_is_duplicate_without_retry(fake, client):
    fake.routes[('POST', r'/app_instances')] = lambda r, m: (
        409, {'message': 'exists'})
    with pytest.raises(exceptions.Duplicate, match=IMAGE):
        client.create_image_volume(IMAGE, 1, 3, 'hybrid', True)
    assert fake.count('POST', '/app_instances') == 1
    assert fake.count('GET', r'/app_instances/.*') == 0


def test_create_out_of_capacity_is_storage_full(fake, client):
    fake.routes[('POST', r'/app_instances')] = lambda r, m: (
        422, {'message': 'Insufficient capacity: 3 GiB free'})
    with pytest.raises(exceptions.StorageFull, match=IMAGE):
        client.create_image_volume(IMAGE, 5, 3, 'hybrid', True)


def test_grow_out_of_capacity_is_storage_full(fake, client):
    fake.routes[('PUT', r'/app_instances/.*/volumes/volume-1')] = (
        lambda r, m: (422, {'message': 'Insufficient capacity: 1 GiB '
                                       'requested, 0 GiB available'}))
    with pytest.raises(exceptions.StorageFull, match=IMAGE):
        client.grow_image_volume(IMAGE, 2)


@pytest.mark.parametrize('status,message', [
    (422, 'Insufficient capacity: 1 GiB requested'),   # not a create/grow
    (500, 'Internal error: disk full on the REST node'),
    (409, 'The initiator is full of surprises: no space'),
])
def test_only_capacity_refusals_of_create_and_grow_are_storage_full(
        fake, client, status, message):
    fake.routes[('PUT', r'/app_instances/[^/]+/int_ecosystem_data')] = (
        lambda r, m: (status, {'message': message}))
    with pytest.raises(exceptions.BackendException) as caught:
        client.set_image_metadata(IMAGE, {'type': 'image'})
    assert not isinstance(caught.value, exceptions.StorageFull)
    assert IMAGE in str(caught.value)


def test_create_refused_for_another_reason_is_not_storage_full(
        fake, client):
    fake.routes[('POST', r'/app_instances')] = lambda r, m: (
        500, {'message': 'no space in the request queue'})
    with pytest.raises(exceptions.BackendException) as caught:
        client.create_image_volume(IMAGE, 1, 3, 'hybrid', True)
    assert not isinstance(caught.value, exceptions.StorageFull)


def test_404_of_a_sub_path_of_an_existing_image_is_not_notfound(
        fake, client):
    # An ACL path (or initiator, or tenant) answering 404 while the
    # image's app instance exists: glance would turn NotFound on a
    # download into HTTP 204.
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body()})
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1/volumes/volume-1')] = lambda r, m: (
        404, {'message': 'No such volume'})
    with pytest.raises(exceptions.BackendException) as caught:
        client.volume_size_gib(IMAGE)
    assert not isinstance(caught.value, exceptions.NotFound)
    assert IMAGE in str(caught.value)


def test_namespace_conflict_is_not_mistaken_for_capacity(fake, client):
    fake.routes[('PUT', r'/app_instances/.*')] = lambda r, m: (
        400, {'message': 'name not unique in namespace'})
    with pytest.raises(exceptions.BackendException):
        client.grow_image_volume(IMAGE, 2)


def test_create_sends_the_original_layout(fake, client):
    bodies = []

    def post(request, match):
        bodies.append(json.loads(request.body))
        return 200, {'data': ai_body()}
    fake.routes[('POST', r'/app_instances')] = post
    client.create_image_volume(IMAGE, 4, 2, 'all_flash', True)
    body = bodies[0]
    assert body['name'] == 'OS-IMAGE-' + IMAGE
    assert body['uuid'] == IMAGE
    assert body['create_mode'] == 'openstack'
    assert body['access_control_mode'] == 'deny_all'
    assert body['storage_instances'][0]['name'] == 'storage-1'
    assert body['storage_instances'][0]['volumes'] == [{
        'name': 'volume-1', 'size': 4, 'replica_count': 2,
        'placement_mode': 'all_flash'}]
    assert 'tenant' not in body


def test_create_whose_answer_was_lost_is_accepted(fake, client):
    """A create whose answer was lost and whose retry got 409 succeeds.

    The server created the AI, then the connection dropped; the AI
    carries this call's marker, so it is ours.
    """
    server = {}

    def post(request, match):
        if 'ai' in server:
            return 409, {'message': 'exists'}
        server['ai'] = ai_body(descr=json.loads(request.body)['descr'])
        raise requests.exceptions.ConnectionError('reset by peer')
    fake.routes[('POST', r'/app_instances')] = post
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': server['ai']})
    client.create_image_volume(IMAGE, 1, 3, 'hybrid', True)
    assert fake.count('POST', '/app_instances') == 2
    assert fake.count('GET', r'/app_instances/[^/]+') == 1


def test_retried_create_meeting_someone_elses_ai_is_duplicate(fake, client):
    fake.add('POST', '/app_instances', 503, {'message': 'busy'})
    fake.routes[('POST', r'/app_instances')] = lambda r, m: (
        409, {'message': 'exists'})
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body(descr='glance image upload 1234')})
    with pytest.raises(exceptions.Duplicate, match=IMAGE):
        client.create_image_volume(IMAGE, 1, 3, 'hybrid', True)


def test_tenant_is_created_once_per_client(fake, tmp_path):
    client = make_client(fake, tmp_path, tenant='/root/glance')
    tenants = []
    fake.routes[('GET', r'/tenants/root/glance')] = lambda r, m: (
        (200, {'data': {}}) if tenants else (404, {'message': 'no'}))

    def create(request, match):
        tenants.append((json.loads(request.body),
                        request.headers['tenant']))
        return 200, {'data': {}}
    fake.routes[('POST', r'/tenants')] = create
    fake.routes[('POST', r'/app_instances')] = lambda r, m: (200, {})
    client.create_image_volume(IMAGE, 1, 3, 'hybrid', True)
    client.create_image_volume(IMAGE[:-1] + 'f', 1, 3, 'hybrid', True)
    assert tenants == [({'name': 'glance'}, '/root')]
    assert fake.count('GET', r'/tenants/.*') == 1
    posts = [c for c in fake.calls if c['path'] == '/app_instances']
    assert {c['headers']['tenant'] for c in posts} == {'/root/glance'}


@pytest.mark.parametrize('value,path', [
    (None, '/root'), ('', '/root'), ('root', '/root'), ('/root', '/root'),
    ('glance', '/root/glance'), ('/root/glance', '/root/glance')])
def test_tenant_path(value, path):
    assert edf.tenant_path(value) == path


def test_delete_takes_offline_then_deletes(fake, client):
    fake.routes[('PUT', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body()})
    fake.routes[('DELETE', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': {}})
    assert client.delete_image_volume(IMAGE, force=True)
    methods = [(c['method'], json.loads(c['body']) if c['body'] else None)
               for c in fake.calls if c['path'].startswith('/app_inst')]
    assert methods == [('PUT', {'admin_state': 'offline', 'force': True}),
                       ('DELETE', {'force': True})]


def test_delete_without_force_gives_way_to_hosts_logged_in(fake, client):
    fake.routes[('PUT', r'/app_instances/[^/]+')] = lambda r, m: (
        409, {'message': 'App instance has active initiators'})
    assert client.delete_image_volume(IMAGE) is False
    methods = [(c['method'], json.loads(c['body']) if c['body'] else None)
               for c in fake.calls if c['path'].startswith('/app_inst')]
    assert methods == [('PUT', {'admin_state': 'offline'})]


def test_delete_whose_answer_was_lost_succeeds(fake, client):
    fake.routes[('PUT', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body()})
    fake.add('DELETE', r'/app_instances/.*',
             requests.exceptions.ConnectionError('reset'))
    fake.routes[('DELETE', r'/app_instances/[^/]+')] = lambda r, m: (
        404, {'message': 'gone'})
    client.delete_image_volume(IMAGE)


def test_grow_waits_until_resized(fake, client):
    state = {'reads': 0}

    def read(request, match):
        state['reads'] += 1
        done = state['reads'] >= 3
        return 200, {'data': {'size': 8 if done else 4,
                              'op_state': 'available' if done else 'resizing'}}
    fake.routes[('PUT', r'/app_instances/.*/volume-1')] = lambda r, m: (
        200, {'data': {'size': 8}})
    fake.routes[('GET', r'/app_instances/.*/volume-1')] = read
    client.grow_image_volume(IMAGE, 8)
    assert state['reads'] == 3


# -- export / unexport -----------------------------------------------------

INITIATOR = 'iqn.1994-05.com.redhat:host1'


def _acl_ops(fake):
    return [json.loads(c['body']) for c in fake.calls
            if c['path'].endswith('/acl_policy/initiators')]


def test_export_adds_to_the_acl_atomically_and_goes_online(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body(acl=['/initiators/other'], access=False)})
    fake.routes[('PUT', r'/app_instances/.*/acl_policy/initiators')] = (
        lambda r, m: (200, {'data': {}}))
    fake.routes[('PUT', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body(admin_state='online')})
    access = client.export_to(IMAGE, INITIATOR)
    assert access == {'ips': ['10.0.0.1', '10.0.0.2'],
                      'iqn': 'iqn.2013-05.com.daterainc:tc:01:sn:abc'}
    assert _acl_ops(fake) == [{'op': 'add',
                               'path': '/initiators/' + INITIATOR}]
    assert not [c for c in fake.calls if c['path'].endswith('/acl_policy')]


def test_export_of_an_exported_volume_only_reads(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': ai_body(admin_state='online',
                              acl=['/initiators/' + INITIATOR])})
    client.export_to(IMAGE, INITIATOR)
    assert [c['method'] for c in fake.calls
            if c['path'].startswith('/app_')] == ['GET']


def _unexport_routes(fake, si, offline_answer=None, metadata=None,
                     offline_status=200):
    offline = []
    fake.routes[('PUT', r'/app_instances/.*/acl_policy/initiators')] = (
        lambda r, m: (200, {'data': {}}))
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1')] = lambda r, m: (200, {'data': si})
    fake.routes[('GET', r'/app_instances/[^/]+/(int_ecosystem_data|'
                 r'metadata)')] = lambda r, m: (200, {'data': dict(
                     metadata or {'type': 'image'})})

    def put_ai(request, match):
        offline.append(json.loads(request.body))
        if offline_status != 200:
            return offline_status, {'message': 'has active initiators'}
        return 200, {'data': offline_answer or ai_body()}
    fake.routes[('PUT', r'/app_instances/[^/]+')] = put_ai
    return offline


def test_unexport_last_initiator_takes_the_volume_offline(fake, client):
    si = ai_body(admin_state='online')['storage_instances'][0]
    offline = _unexport_routes(fake, si)
    client.unexport_from(IMAGE, INITIATOR)
    assert _acl_ops(fake) == [{'op': 'remove',
                               'path': '/initiators/' + INITIATOR}]
    assert offline == [{'admin_state': 'offline'}]


@pytest.mark.parametrize('acl,active', [
    (['/initiators/iqn.other'], []),
    ([], ['/initiators/iqn.other']),
    ([], ['iqn.other']),
])
def test_unexport_keeps_the_volume_online_for_other_hosts(
        fake, client, acl, active):
    si = ai_body(admin_state='online', acl=acl,
                 active=active)['storage_instances'][0]
    offline = _unexport_routes(fake, si)
    client.unexport_from(IMAGE, INITIATOR)
    assert offline == []


def test_unexport_restores_an_export_another_host_just_added(fake, client):
    si = ai_body(admin_state='online')['storage_instances'][0]
    offline = _unexport_routes(fake, si, offline_answer=ai_body(
        acl=['/initiators/iqn.newcomer']))
    client.unexport_from(IMAGE, INITIATOR)
    assert offline == [{'admin_state': 'offline'},
                       {'admin_state': 'online'}]


def test_unexport_refused_offline_is_not_an_error(fake, client):
    # Another host logged in between our read and the offline.
    si = ai_body(admin_state='online')['storage_instances'][0]
    offline = _unexport_routes(fake, si, offline_status=409)
    client.unexport_from(IMAGE, INITIATOR)
    assert offline == [{'admin_state': 'offline'}]


def test_unexport_by_the_last_reader_removes_a_deleted_image(fake, client):
    si = ai_body(admin_state='online')['storage_instances'][0]
    offline = _unexport_routes(fake, si, metadata={
        'type': 'image', 'upload_state': 'deleting'})
    fake.routes[('DELETE', r'/app_instances/[^/]+')] = lambda r, m: (
        200, {'data': {}})
    client.unexport_from(IMAGE, INITIATOR)
    assert offline == [{'admin_state': 'offline'}]
    assert fake.count('DELETE', '/app_instances/' + IMAGE) == 1


def test_unexport_retries_internal_errors(fake, client):
    si = ai_body(admin_state='online')['storage_instances'][0]
    offline = _unexport_routes(fake, si)
    fake.add('GET', r'/app_instances/[^/]+/storage_instances/storage-1',
             500, {'message': 'Internal error'})
    client.unexport_from(IMAGE, INITIATOR)
    assert offline == [{'admin_state': 'offline'}]


def test_unexport_of_a_deleted_image_is_quiet(fake, client):
    client.unexport_from(IMAGE, INITIATOR)


def test_wait_export_ready_times_out_with_a_clear_error(fake, client):
    fake.routes[('GET', r'/app_instances/[^/]+/storage_instances/'
                 r'storage-1')] = lambda r, m: (200, {'data': {
                     'admin_state': 'online', 'op_state': 'unavailable'}})
    with pytest.raises(exceptions.BackendException, match=IMAGE):
        client.wait_export_ready(IMAGE, 0.3)


def test_threads_refused_together_log_in_once(fake, client):
    _volume_route(fake)
    client.volume_size_gib(IMAGE)
    fake.key = 'key-2'
    barrier = threading.Barrier(4, timeout=10)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(client.volume_size_gib(IMAGE))
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and results == [3] * 4
    # Without sharing the new key, each refused thread would log in.
    assert fake.count('PUT', '/login') == 2


def test_unwritable_schema_cache_only_costs_a_warning(fake, tmp_path, caplog):
    client = make_client(fake, tmp_path)
    os.makedirs(str(tmp_path / 'schema'), mode=0o700)
    os.chmod(str(tmp_path / 'schema'), 0o500)
    try:
        if os.access(str(tmp_path / 'schema'), os.W_OK):
            # root writes anyway: take the folder away instead.
            client._schema_file = lambda: str(tmp_path / 'gone' / 'x.json')
        with caplog.at_level(logging.WARNING):
            client.check_connection()
    finally:
        os.chmod(str(tmp_path / 'schema'), 0o700)
    assert 'Could not cache' in caplog.text


def test_schema_folder_is_one_per_user_and_private(tmp_path, monkeypatch):
    # Reused by every process: killed processes leave nothing behind.
    monkeypatch.setattr(tempfile, 'gettempdir', lambda: str(tmp_path))
    first = edf._private_dir()
    assert edf._private_dir() == first
    assert os.listdir(str(tmp_path)) == [os.path.basename(first)]
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o700


def test_schema_folder_of_someone_else_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, 'gettempdir', lambda: str(tmp_path))
    planted = tmp_path / ('datera-glance-schema-%d' % os.geteuid())
    planted.mkdir(mode=0o777)
    os.chmod(str(planted), 0o777)
    with pytest.raises(OSError, match='not a private folder'):
        edf._private_dir()


def test_failed_re_login_says_it_was_the_login(fake, client):
    _volume_route(fake)
    client.volume_size_gib(IMAGE)
    fake.key = 'key-2'      # the session ended...
    fake.add('PUT', '/login', 401, {'message': 'Invalid credentials'},
             times=10)      # ... and the password was changed meanwhile
    with pytest.raises(exceptions.BackendException) as caught:
        client.volume_size_gib(IMAGE)
    message = str(caught.value)
    assert message.startswith('Logging in to the Datera cluster')
    assert 'datera_san_login' in message and IMAGE in message
