"""Helpers for the REST API tests: a served app, dfs_sdk clients, the
real Datera schema document (when the shared folder has it)."""

import copy
import json
import os
import threading

import pytest
from werkzeug import serving

from datera_edf_sim import app as app_mod
from datera_edf_sim import models
from datera_glance.sdk_compat import connection as sdk_connection
from datera_glance.sdk_compat import dfs_sdk

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
REAL_SCHEMA = os.path.join(REPO_ROOT, '..', 'shared', 'datera-api',
                           'v2.1-api-schema.json')

AI_ID = '6c26437d-0afb-44f5-880e-8e6bc00bd7ac'
IQN1 = 'iqn.1993-08.org.debian:01:host1'
IQN2 = 'iqn.1993-08.org.debian:01:host2'


class FakeDataPlane(object):
    """Remembers what the model asked of the data plane."""

    def __init__(self):
        self.volumes = {}
        self.exports = {}
        self.calls = []
        self.fail_next_create = False

    def create_volume(self, volume_uuid, size_gib):
        self.calls.append(('create_volume', volume_uuid, size_gib))
        if self.fail_next_create:
            self.fail_next_create = False
            raise OSError('injected data plane failure')
        self.volumes[volume_uuid] = size_gib

    def grow_volume(self, volume_uuid, size_gib):
        self.calls.append(('grow_volume', volume_uuid, size_gib))
        assert size_gib >= self.volumes[volume_uuid]
        self.volumes[volume_uuid] = size_gib

    def delete_volume(self, volume_uuid):
        self.calls.append(('delete_volume', volume_uuid))
        del self.volumes[volume_uuid]

    def sync_exports(self, si_uuid, target_iqn, ips, volume_uuid,
                     initiator_iqns):
        self.calls.append(('sync_exports', si_uuid, target_iqn, tuple(ips),
                           volume_uuid, frozenset(initiator_iqns)))
        if initiator_iqns:
            assert volume_uuid in self.volumes
            self.exports[si_uuid] = set(initiator_iqns)
        else:
            self.exports.pop(si_uuid, None)

    def exported_initiators(self, si_uuid):
        return set(self.exports.get(si_uuid, ()))


class FakeClock(object):
    """A settable ``time.time``."""

    def __init__(self, now=1000000.0):
        self.now = now

    def __call__(self):
        return self.now


def ai_body(name='OS-IMAGE-test', ai_id=AI_ID, size=1):
    return {
        'name': name,
        'uuid': ai_id,
        'create_mode': 'openstack',
        'access_control_mode': 'deny_all',
        'storage_instances': [{
            'name': 'storage-1',
            'volumes': [{'name': 'volume-1', 'size': size,
                         'replica_count': 1,
                         'placement_mode': 'hybrid'}],
        }],
    }


class ApiClient(object):
    """A Flask test client that logs in and sends the usual headers."""

    def __init__(self, app, version='v2.2', tenant='/root'):
        self.client = app.test_client()
        self.version = version
        self.tenant = tenant
        self.key = None

    def login(self, name='admin', password='password'):
        r = self.client.put('/%s/login' % self.version,
                            json={'name': name, 'password': password})
        assert r.status_code == 200, r.json
        self.key = r.json['key']
        return self

    def request(self, method, path, body=None, tenant=None, raw=None,
                query=None, headers=None):
        all_headers = {'Auth-Token': self.key or '',
                       'tenant': tenant or self.tenant,
                       'content-type': 'application/json; charset=utf-8'}
        all_headers.update(headers or {})
        data = raw if raw is not None else (
            json.dumps(body) if body is not None else None)
        return self.client.open('/%s%s' % (self.version, path),
                                method=method, data=data,
                                headers=all_headers, query_string=query)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body=None, **kw):
        return self.request('POST', path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request('PUT', path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request('DELETE', path, body, **kw)


class ServedApp(object):
    """The REST app served over plain HTTP on 127.0.0.1 in a thread."""

    def __init__(self, app):
        self.server = serving.make_server('127.0.0.1', 0, app,
                                          threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def sdk_connection_for_port(port):
    """An ApiConnection subclass that talks plain HTTP to ``port``."""

    class PortConnection(sdk_connection.ApiConnection):
        def _get_request_attrs(self, urlpath):
            attrs = list(super(PortConnection, self)._get_request_attrs(
                urlpath))
            protocol, _port, cert, api_version, host, _url = attrs
            url = '{}://{}:{}/v{}/{}'.format(
                protocol, host, port, api_version.strip('v'),
                urlpath.strip('/'))
            return protocol, port, cert, api_version, host, url

    return PortConnection


def sdk_api(port, version, schema_dir, tenant=None, username='admin',
            password='password'):
    """A dfs_sdk API object for the served simulator (not logged in)."""
    api = dfs_sdk.get_api(
        '127.0.0.1', username, password, version, tenant=tenant,
        secure=False, immediate_login=False, disable_log=True,
        retry_503_type=None, retry_connection_type=None,
        schema_loc=os.path.join(str(schema_dir), 'schema-%s' % version))
    api.context.connection = sdk_connection_for_port(port).from_context(
        api.context)
    return api


def load_real_schema():
    """The real v2.1 /api document, cleaned for jsonschema; or skip."""
    if not os.path.exists(REAL_SCHEMA):
        pytest.skip('the real Datera v2.1 schema is not here (%s): it '
                    'lives in the shared folder next to the repository, '
                    'which CI has and a plain clone does not'
                    % os.path.normpath(REAL_SCHEMA))
    with open(REAL_SCHEMA) as f:
        return json.load(f)


def clean_schema(schema):
    """Drop what jsonschema cannot use: non-string ``pattern`` values."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if 'pattern' in node and not isinstance(node['pattern'], str):
                del node['pattern']
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(schema)
    return schema


def new_model(path, dataplane=None, clock=None, **settings):
    kwargs = {'dataplane': dataplane}
    if clock is not None:
        kwargs['clock'] = clock
    kwargs.update(settings)
    return models.Model(str(path), **kwargs)


def new_app(path, dataplane=None, clock=None, **settings):
    model = new_model(path, dataplane=dataplane, clock=clock)
    return model, app_mod.create_app(model, dataplane=dataplane, **settings)
