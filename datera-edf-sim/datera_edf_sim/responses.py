#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""What the REST API answers: request handlers and the answer formats.

A handler takes the :class:`Call` of one request and returns the data of
the answer, from the model; :mod:`datera_edf_sim.urls` says which handler
serves which endpoint and operation, and :mod:`datera_edf_sim.app` wraps
each in a view that checks the session and the tenant, validates the
body and puts the data in the envelope. Handlers of list reads return
every entity: the view filters and pages them.

Answers are formatted the way a Datera cluster formats them:

- success: ``{"tenant", "path", "version", "data"}``, plus ``metadata``
  (``offset``, ``limit``, ``total_count``, ``request_count``) on lists;
- errors: ``{"name", "code", "http", "message", "ts", "api_req"}``, the
  fields dfs_sdk (``message``) and Datera's Go SDK read, plus the
  envelope's ``tenant``, ``path`` and ``version``; every error the API
  answers with goes through :func:`error_response`;
- ``PUT /login`` answers ``{"key", "version", "request_time"}`` and
  ``GET /api`` the bare schema document, as the cluster does.
"""

import datetime
import json
import time

import flask
import jsonschema

from datera_edf_sim import apidoc
from datera_edf_sim import defaults
from datera_edf_sim import exceptions
from datera_edf_sim import schemas


class Call(object):
    """What a handler needs from one request.

    Besides the attributes below, the URL's parameters are attributes
    too (``c.id``, ``c.storage_instance_name``...).
    """

    def __init__(self, model, version, tenant, body, params):
        self.model = model
        self.version = version
        self.tenant = tenant
        self.body = body
        self.params = params

    @property
    def initiator_tenant(self):
        # v2.1 keeps initiators (and their groups) at the root only.
        return defaults.ROOT_TENANT if self.version == 'v2.1' else (
            self.tenant)

    def __getattr__(self, name):
        try:
            return self.params[name]
        except KeyError:
            raise AttributeError(name)


# Reading requests

def parse_body():
    """The request's JSON body; ``{}`` when there is none."""
    raw = flask.request.get_data(cache=True)
    if not raw or not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as e:
        raise exceptions.BadRequest('Malformed JSON body: %s' % e)


# Validators by schema identity: the schemas are module constants.
_VALIDATORS = {}


def validate(schema, document, what):
    """Raise Invalid if ``document`` does not follow ``schema`` (None: any).

    :param what: what the document is, for the message (``the request
        body``).
    """
    if schema is None:
        return
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft7Validator(
            schema)
    error = jsonschema.exceptions.best_match(
        validator.iter_errors(document))
    if error is not None:
        location = '/'.join(str(p) for p in error.absolute_path)
        raise exceptions.Invalid('Validation failed for %s%s: %s' % (
            what, (' at ' + location) if location else '', error.message))


def list_query():
    """The query parameters of a list read, validated."""
    query = {}
    for key, value in flask.request.args.items():
        if key in ('limit', 'offset'):
            try:
                value = int(value)
            except ValueError:
                pass
        query[key] = value
    validate(schemas.LIST_QUERY, query, 'query parameters')
    return query


# Writing answers

def json_response(body, status=200):
    return flask.Response(json.dumps(body), status=status,
                          mimetype='application/json')


def envelope(version, tenant):
    """The fields every answer starts with (``data`` is added to it)."""
    return {
        'tenant': tenant,
        'path': _api_path(version),
        'version': version,
    }


def _api_path(version):
    return flask.request.path[len(version) + 1:] or '/'


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def error_body(error, version=None, tenant=None, op=None):
    """The answer to an :class:`~datera_edf_sim.exceptions.ApiError`.

    Besides the error fields, it repeats the envelope's ``tenant``,
    ``path`` and ``version`` (no ``data``), so every answer names them.
    """
    path = flask.request.path if flask.has_request_context() else None
    api_path = path
    if path and version and path.startswith('/%s/' % version):
        api_path = path[len(version) + 1:]
    body = {
        'tenant': tenant,
        'path': api_path,
        'version': version,
    }
    body.update(error.body())
    body['ts'] = _now_iso()
    body['api_req'] = {
        'version': version,
        'op': op,
        'tenant': tenant,
        'path': path,
    }
    return body


def error_response(error):
    """Answer the request being handled with ``error``.

    The one place errors become answers: the application's error
    handlers turn everything else (unknown paths, wrong methods, internal
    errors) into an :class:`~datera_edf_sim.exceptions.ApiError` first.
    """
    version = (flask.request.view_args or {}).get('version')
    if version is None:
        # Unknown paths have no view arguments; name the version the URL
        # asked for, if any.
        first = flask.request.path.split('/')[1:2]
        version = first[0] if first and first[0] in (
            schemas.API_VERSIONS) else None
    tenant = getattr(flask.g, 'sim_tenant', None) or (
        flask.request.headers.get('tenant') or defaults.ROOT_TENANT)
    return json_response(error_body(error, version=version, tenant=tenant,
                                    op=flask.request.method), error.status)


# Views answering in formats of their own

def login(version):
    body = parse_body()
    validate(schemas.find('/login').ops['update'].body(version), body,
             'the request body')
    model = flask.current_app.config['SIM_MODEL']
    started = time.time()
    key = model.login(body['name'], body['password'],
                      remote_server=body.get('remote_server'))
    return json_response({'key': key, 'version': version,
                          'request_time': int((time.time() - started) *
                                              1000)})


def logout(version):
    model = flask.current_app.config['SIM_MODEL']
    key = flask.request.headers.get('Auth-Token')
    if key:
        model.logout(key)
    return json_response({'tenant': defaults.ROOT_TENANT, 'path': '/logout',
                          'version': version, 'data': {}})


def api_document(version):
    return json_response(apidoc.build(version))


# Handlers: Call -> data

def get_system(c):
    return c.model.system()


def list_storage_nodes(c):
    return c.model.storage_nodes()


def get_storage_node(c):
    for node in c.model.storage_nodes():
        if node['uuid'] == c.uuid:
            return node
    raise exceptions.NotFound('Storage node %s does not exist' % c.uuid)


def create_tenant(c):
    # parent_path defaults to /root whatever the tenant header says, as
    # the cluster's schema documents.
    return c.model.create_tenant(
        c.body['name'], c.body.get('parent_path', defaults.ROOT_TENANT))


def list_tenants(c):
    return c.model.list_tenants(c.tenant)


def get_tenant(c):
    return c.model.get_tenant(c.tenant_path)


def delete_tenant(c):
    return c.model.delete_tenant(c.tenant_path)


def create_app_instance(c):
    return c.model.create_app_instance(c.tenant, c.body)


def list_app_instances(c):
    return c.model.list_app_instances(c.tenant)


def get_app_instance(c):
    return c.model.get_app_instance(c.tenant, c.id)


def update_app_instance(c):
    return c.model.update_app_instance(c.tenant, c.id, c.body)


def delete_app_instance(c):
    return c.model.delete_app_instance(c.tenant, c.id,
                                       force=c.body.get('force', False))


def get_metadata(c):
    return c.model.get_metadata(c.tenant, c.id)


def update_metadata(c):
    return c.model.update_metadata(c.tenant, c.id, c.body)


def update_int_ecosystem_data(c):
    # The same map as the metadata, under a "data" key.
    return c.model.update_metadata(c.tenant, c.id, c.body['data'])


def _si_args(c):
    return c.tenant, c.id, c.storage_instance_name


def _volume_args(c):
    return c.tenant, c.id, c.storage_instance_name, c.volume_name


def list_storage_instances(c):
    return c.model.list_storage_instances(c.tenant, c.id)


def get_storage_instance(c):
    return c.model.get_storage_instance(*_si_args(c))


def update_storage_instance(c):
    return c.model.update_storage_instance(*_si_args(c), body=c.body)


def get_acl_policy(c):
    return c.model.get_acl_policy(*_si_args(c))


def update_acl_policy(c):
    return c.model.set_acl_policy(*_si_args(c), body=c.body)


def list_acl_initiators(c):
    return c.model.list_acl_members(*_si_args(c), kind='initiators')


def change_acl_initiators(c):
    return c.model.change_acl(*_si_args(c), kind='initiators',
                              op=c.body['op'], path=c.body['path'])


def list_acl_initiator_groups(c):
    return c.model.list_acl_members(*_si_args(c), kind='initiator_groups')


def change_acl_initiator_groups(c):
    return c.model.change_acl(*_si_args(c), kind='initiator_groups',
                              op=c.body['op'], path=c.body['path'])


def list_volumes(c):
    return c.model.list_volumes(*_si_args(c))


def get_volume(c):
    return c.model.get_volume(*_si_args(c), vol_name=c.volume_name)


def update_volume(c):
    return c.model.update_volume(*_si_args(c), vol_name=c.volume_name,
                                 body=c.body)


def create_snapshot(c):
    return c.model.create_volume_snapshot(*_volume_args(c),
                                          snapshot_uuid=c.body.get('uuid'))


def list_snapshots(c):
    return c.model.list_volume_snapshots(*_volume_args(c))


def get_snapshot(c):
    return c.model.get_volume_snapshot(*_volume_args(c),
                                       timestamp=c.timestamp)


def delete_snapshot(c):
    return c.model.delete_volume_snapshot(*_volume_args(c),
                                          timestamp=c.timestamp)


def create_initiator(c):
    return c.model.create_initiator(c.initiator_tenant, c.body['id'],
                                    c.body['name'],
                                    force=c.body.get('force', False))


def list_initiators(c):
    return c.model.list_initiators(c.initiator_tenant)


def get_initiator(c):
    return c.model.get_initiator(c.initiator_tenant, c.initiator_id)


def update_initiator(c):
    return c.model.update_initiator(c.initiator_tenant, c.initiator_id,
                                    c.body)


def delete_initiator(c):
    return c.model.delete_initiator(c.initiator_tenant, c.initiator_id)


def create_initiator_group(c):
    return c.model.create_initiator_group(
        c.initiator_tenant, c.body['name'], c.body.get('members', []))


def list_initiator_groups(c):
    return c.model.list_initiator_groups(c.initiator_tenant)


def get_initiator_group(c):
    return c.model.get_initiator_group(c.initiator_tenant, c.name)


def update_initiator_group(c):
    return c.model.set_initiator_group_members(
        c.initiator_tenant, c.name, c.body.get('members', []))


def delete_initiator_group(c):
    return c.model.delete_initiator_group(c.initiator_tenant, c.name)


def list_initiator_group_members(c):
    return c.model.list_initiator_group_members(c.initiator_tenant, c.name)


def change_initiator_group_members(c):
    return c.model.change_initiator_group_members(
        c.initiator_tenant, c.name, c.body['op'], c.body['path'])


def get_io_metric(c):
    return _metric(c, '/metrics/io/:metric')


def get_hw_metric(c):
    return _metric(c, '/metrics/hw/:metric')


def _metric(c, path):
    # The simulator measures nothing: a known metric has no samples.
    if c.metric not in schemas.METRIC_ENUMS[path]:
        raise exceptions.NotFound('Unknown metric %s' % c.metric)
    return []
