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

"""The simulator's REST API: a Flask application over the model.

This layer only parses requests, checks the session key and the tenant
header, validates bodies against :mod:`schemas`, calls the model and
formats answers the way a Datera cluster does:

- success: ``{"tenant", "path", "version", "data"}``, plus ``metadata``
  (``offset``, ``limit``, ``total_count``, ``request_count``) on lists;
- errors: ``{"name", "code", "http", "message", "ts", "api_req"}``, the
  fields dfs_sdk (``message``) and Datera's Go SDK read, plus the
  envelope's ``tenant``, ``path`` and ``version``;
- ``PUT /login`` answers ``{"key", "version", "request_time"}`` and
  ``GET /api`` the bare schema document, as the cluster does.

Status codes: 400 malformed JSON or unsupported query, 401 bad
credentials or a missing/expired key, 404 unknown path or entity (also
another tenant's), 405 wrong method, 409 duplicates and state conflicts
(deleting or offlining in-use objects without ``force``), 422 bodies the
schema refuses and values that cannot be applied (shrinking a volume,
references to unknown initiators), and 422 with a message starting with
``Insufficient capacity`` when a create or grow would exceed the
capacity set with :meth:`Model.set_capacity`.

``/api`` and ``/system`` never answer 401: dfs_sdk reads them while it
holds its login lock and deadlocks if they ask it to log in again.
"""

import datetime
import json
import logging
import time

import flask
import jsonschema
from werkzeug import exceptions as http_exceptions

from datera_edf_sim import apidoc
from datera_edf_sim import models
from datera_edf_sim import schemas

LOG = logging.getLogger(__name__)

_VERSION_RULE = '/<any("v2.1","v2.2"):version>'
# Endpoints reachable without a session (and without a tenant check).
_OPEN_PATHS = ('/login', '/logout', '/api', '/system')

_ERROR_NAMES = {
    400: 'InvalidRequestError',
    401: 'AuthFailedError',
    404: 'NotFoundError',
    405: 'InvalidRequestError',
    409: 'ConflictError',
    422: 'ValidationFailedError',
    500: 'InternalError',
}

_STATUS = [
    (models.NoData, 404),
    (models.NotFound, 404),
    (models.Conflict, 409),
    (models.Invalid, 422),
    (models.AuthError, 401),
    (models.BadRequest, 400),
]


class ApiError(Exception):
    """An error answer decided by the HTTP layer itself."""

    def __init__(self, status, message):
        super(ApiError, self).__init__(message)
        self.status = status
        self.message = message


class _Call(object):
    """What a handler needs from one request."""

    def __init__(self, model, version, tenant, body, params):
        self.model = model
        self.version = version
        self.tenant = tenant
        self.body = body
        self.params = params

    @property
    def initiator_tenant(self):
        # v2.1 keeps initiators (and their groups) at the root only.
        return models.ROOT_TENANT if self.version == 'v2.1' else self.tenant

    def __getattr__(self, name):
        try:
            return self.params[name]
        except KeyError:
            raise AttributeError(name)


def _si_args(c):
    return c.tenant, c.id, c.storage_instance_name


def _volume_args(c):
    return c.tenant, c.id, c.storage_instance_name, c.volume_name


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


# (endpoint path, operation) -> handler(call) -> data. Handlers of list
# reads return every entity; filtering and paging happen afterwards.
HANDLERS = {
    ('/system', 'read'): lambda c: c.model.system(),
    ('/storage_nodes', 'read'): lambda c: c.model.storage_nodes(),
    ('/storage_nodes/:uuid', 'read'): lambda c: _one(
        [n for n in c.model.storage_nodes() if n['uuid'] == c.uuid],
        'Storage node %s does not exist' % c.uuid),
    # parent_path defaults to /root whatever the tenant header says, as
    # the cluster's schema documents.
    ('/tenants', 'create'): lambda c: c.model.create_tenant(
        c.body['name'], c.body.get('parent_path', models.ROOT_TENANT)),
    ('/tenants', 'read'): lambda c: c.model.list_tenants(c.tenant),
    ('/app_instances', 'create'): lambda c: c.model.create_app_instance(
        c.tenant, c.body),
    ('/app_instances', 'read'): lambda c: c.model.list_app_instances(
        c.tenant),
    ('/app_instances/:id', 'read'): lambda c: c.model.get_app_instance(
        c.tenant, c.id),
    ('/app_instances/:id', 'update'): lambda c: (
        c.model.update_app_instance(c.tenant, c.id, c.body)),
    ('/app_instances/:id', 'delete'): lambda c: (
        c.model.delete_app_instance(c.tenant, c.id,
                                    force=c.body.get('force', False))),
    ('/app_instances/:id/metadata', 'read'): lambda c: (
        c.model.get_metadata(c.tenant, c.id)),
    ('/app_instances/:id/metadata', 'update'): lambda c: (
        c.model.update_metadata(c.tenant, c.id, c.body)),
    ('/app_instances/:id/int_ecosystem_data', 'read'): lambda c: (
        c.model.get_metadata(c.tenant, c.id)),
    ('/app_instances/:id/int_ecosystem_data', 'update'): lambda c: (
        c.model.update_metadata(c.tenant, c.id, c.body['data'])),
    ('/app_instances/:id/storage_instances', 'read'): lambda c: (
        c.model.list_storage_instances(c.tenant, c.id)),
    (schemas.SI_PATH, 'read'): lambda c: c.model.get_storage_instance(
        *_si_args(c)),
    (schemas.SI_PATH, 'update'): lambda c: c.model.update_storage_instance(
        *_si_args(c), body=c.body),
    (schemas.SI_PATH + '/acl_policy', 'read'): lambda c: (
        c.model.get_acl_policy(*_si_args(c))),
    (schemas.SI_PATH + '/acl_policy', 'update'): lambda c: (
        c.model.set_acl_policy(*_si_args(c), body=c.body)),
    (schemas.SI_PATH + '/acl_policy/initiators', 'read'): lambda c: (
        c.model.list_acl_members(*_si_args(c), kind='initiators')),
    (schemas.SI_PATH + '/acl_policy/initiators', 'update'): lambda c: (
        c.model.change_acl(*_si_args(c), kind='initiators',
                           op=c.body['op'], path=c.body['path'])),
    (schemas.SI_PATH + '/acl_policy/initiator_groups', 'read'): lambda c: (
        c.model.list_acl_members(*_si_args(c), kind='initiator_groups')),
    (schemas.SI_PATH + '/acl_policy/initiator_groups', 'update'): lambda c: (
        c.model.change_acl(*_si_args(c), kind='initiator_groups',
                           op=c.body['op'], path=c.body['path'])),
    (schemas.SI_PATH + '/volumes', 'read'): lambda c: c.model.list_volumes(
        *_si_args(c)),
    (schemas.VOLUME_PATH, 'read'): lambda c: c.model.get_volume(
        *_si_args(c), vol_name=c.volume_name),
    (schemas.VOLUME_PATH, 'update'): lambda c: c.model.update_volume(
        *_si_args(c), vol_name=c.volume_name, body=c.body),
    (schemas.SNAPSHOTS_PATH, 'create'): create_snapshot,
    (schemas.SNAPSHOTS_PATH, 'read'): list_snapshots,
    (schemas.SNAPSHOT_PATH, 'read'): get_snapshot,
    (schemas.SNAPSHOT_PATH, 'delete'): delete_snapshot,
    ('/initiators', 'create'): lambda c: c.model.create_initiator(
        c.initiator_tenant, c.body['id'], c.body['name'],
        force=c.body.get('force', False)),
    ('/initiators', 'read'): lambda c: c.model.list_initiators(
        c.initiator_tenant),
    ('/initiators/:initiator_id', 'read'): lambda c: (
        c.model.get_initiator(c.initiator_tenant, c.initiator_id)),
    ('/initiators/:initiator_id', 'update'): lambda c: (
        c.model.update_initiator(c.initiator_tenant, c.initiator_id,
                                 c.body)),
    ('/initiators/:initiator_id', 'delete'): lambda c: (
        c.model.delete_initiator(c.initiator_tenant, c.initiator_id)),
    ('/initiator_groups', 'create'): lambda c: (
        c.model.create_initiator_group(c.initiator_tenant, c.body['name'],
                                       c.body.get('members', []))),
    ('/initiator_groups', 'read'): lambda c: (
        c.model.list_initiator_groups(c.initiator_tenant)),
    ('/initiator_groups/:name', 'read'): lambda c: (
        c.model.get_initiator_group(c.initiator_tenant, c.name)),
    ('/initiator_groups/:name', 'update'): lambda c: (
        c.model.set_initiator_group_members(
            c.initiator_tenant, c.name, c.body.get('members', []))),
    ('/initiator_groups/:name', 'delete'): lambda c: (
        c.model.delete_initiator_group(c.initiator_tenant, c.name)),
    ('/initiator_groups/:name/members', 'read'): lambda c: (
        c.model.list_initiator_group_members(c.initiator_tenant, c.name)),
    ('/initiator_groups/:name/members', 'update'): lambda c: (
        c.model.change_initiator_group_members(
            c.initiator_tenant, c.name, c.body['op'], c.body['path'])),
    ('/metrics/io/:metric', 'read'): lambda c: _metric(c),
    ('/metrics/hw/:metric', 'read'): lambda c: _metric(c),
    (schemas.TENANT_PATH, 'read'): lambda c: c.model.get_tenant(
        c.tenant_path),
    (schemas.TENANT_PATH, 'delete'): lambda c: c.model.delete_tenant(
        c.tenant_path),
}

# Reads answering a list (filtered and paged).
LIST_READS = frozenset(
    endpoint.path for endpoint in schemas.ENDPOINTS
    if 'read' in endpoint.ops and
    endpoint.ops['read'].body('v2.2') is schemas.LIST_QUERY)


def _one(items, message):
    if not items:
        raise models.NotFound(message)
    return items[0]


def _metric(c):
    path = '/metrics/%s/:metric' % ('io' if '/io/' in flask.request.path
                                    else 'hw')
    if c.metric not in schemas.METRIC_ENUMS[path]:
        raise models.NotFound('Unknown metric %s' % c.metric)
    return []


def flask_rule(api_path):
    """The Flask URL rule (without the version prefix) of an API path."""
    # A parameter with a regex (the tenant path) may hold slashes; it is
    # always last.
    path, has_regex = api_path.split('(', 1)[0], '(' in api_path
    segments = path.split('/')
    parts = []
    for i, segment in enumerate(segments):
        if segment.startswith(':'):
            last = i == len(segments) - 1
            converter = 'path:' if has_regex and last else ''
            parts.append('<%s%s>' % (converter, segment[1:]))
        else:
            parts.append(segment)
    return '/'.join(parts)


def _api_path(version):
    return flask.request.path[len(version) + 1:] or '/'


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def error_body(status, message, version=None, tenant=None, op=None):
    """An error answer in the cluster's format.

    Besides the error fields, it repeats the envelope's ``tenant``,
    ``path`` and ``version`` (no ``data``), so every answer names them.
    """
    path = flask.request.path if flask.has_request_context() else None
    api_path = path
    if path and version and path.startswith('/%s/' % version):
        api_path = path[len(version) + 1:]
    return {
        'tenant': tenant,
        'path': api_path,
        'version': version,
        'name': _ERROR_NAMES.get(status, 'ApiError'),
        'code': status,
        'http': status,
        'message': message,
        'ts': _now_iso(),
        'api_req': {
            'version': version,
            'op': op,
            'tenant': tenant,
            'path': path,
        },
    }


def _json(body, status=200):
    response = flask.Response(json.dumps(body), status=status,
                              mimetype='application/json')
    return response


def _parse_body():
    raw = flask.request.get_data(cache=True)
    if not raw or not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ApiError(400, 'Malformed JSON body: %s' % e)


# Validators by schema identity: the schemas are module constants.
_VALIDATORS = {}


def _validate(schema, document, what):
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
        raise ApiError(422, 'Validation failed for %s%s: %s' % (
            what, (' at ' + location) if location else '', error.message))


def _list_query():
    query = {}
    for key, value in flask.request.args.items():
        if key in ('limit', 'offset'):
            try:
                value = int(value)
            except ValueError:
                pass
        query[key] = value
    _validate(schemas.LIST_QUERY, query, 'query parameters')
    return query


def _make_view(endpoint, op_name):
    op = endpoint.ops[op_name]
    handler = HANDLERS[(endpoint.path, op_name)]
    is_list = op_name == 'read' and endpoint.path in LIST_READS

    def view(version, **params):
        model = flask.current_app.config['SIM_MODEL']
        if endpoint.path not in _OPEN_PATHS:
            model.check_key(flask.request.headers.get('Auth-Token'))
            tenant = model.check_tenant(flask.request.headers.get('tenant'))
        else:
            tenant = models.ROOT_TENANT
        flask.g.sim_tenant = tenant
        body = _parse_body() if op_name != 'read' else {}
        if op_name != 'read':
            _validate(op.body(version), body, 'the request body')
        query = _list_query() if is_list else None
        data = handler(_Call(model, version, tenant, body, params))
        envelope = {
            'tenant': tenant,
            'path': _api_path(version),
            'version': version,
        }
        if is_list:
            page, total, limit = models.query(
                data, filter=query.get('filter'), sort=query.get('sort'),
                offset=query.get('offset', 0), limit=query.get('limit'))
            envelope['data'] = page
            envelope['metadata'] = {
                'offset': query.get('offset', 0),
                'limit': limit,
                'total_count': total,
                'request_count': len(page),
            }
        else:
            envelope['data'] = data
        return _json(envelope, 201 if op_name == 'create' else 200)

    view.__name__ = 'sim_%s_%s' % (op_name, endpoint.path)
    return view


def _login(version):
    body = _parse_body()
    _validate(schemas.find('/login').ops['update'].body(version), body,
              'the request body')
    model = flask.current_app.config['SIM_MODEL']
    started = time.time()
    key = model.login(body['name'], body['password'],
                      remote_server=body.get('remote_server'))
    return _json({'key': key, 'version': version,
                  'request_time': int((time.time() - started) * 1000)})


def _logout(version):
    model = flask.current_app.config['SIM_MODEL']
    key = flask.request.headers.get('Auth-Token')
    if key:
        model.logout(key)
    return _json({'tenant': models.ROOT_TENANT, 'path': '/logout',
                  'version': version, 'data': {}})


def _api(version):
    return _json(apidoc.build(version))


_SPECIAL_VIEWS = {
    ('/login', 'update'): _login,
    ('/logout', 'update'): _logout,
    ('/api', 'read'): _api,
}


def create_app(model, dataplane=None, username='admin', password='password',
               sw_version=models.DEFAULT_SW_VERSION, key_ttl=3600.0,
               resize_seconds=1.0, data_ips=models.DEFAULT_DATA_IPS,
               system_name='datera-edf-sim', resync=False,
               snapshot_seconds=0.5):
    """Build the WSGI application serving ``/v2.1/...`` and ``/v2.2/...``.

    :param model: a :class:`models.Model`; the settings below are applied
        to it.
    :param dataplane: the data plane the model drives (None: keep the
        model's).
    :param key_ttl: seconds a session key lives (None: forever).
    :param resize_seconds: how long a grown volume stays ``resizing``.
    :param snapshot_seconds: how long a new volume snapshot stays
        ``creating``.
    :param data_ips: the iSCSI portal IPs storage instances report.
    :param resync: tell the data plane every export once now, as a
        restarted cluster does (the server does this itself, through
        :meth:`Model.resync_exports`, before it serves).
    """
    model.configure(dataplane=dataplane, username=username,
                    password=password, sw_version=sw_version,
                    key_ttl=key_ttl, resize_seconds=resize_seconds,
                    data_ips=data_ips, system_name=system_name,
                    snapshot_seconds=snapshot_seconds)
    if resync and dataplane is not None:
        model.resync_exports()

    app = flask.Flask(__name__)
    app.config['SIM_MODEL'] = model
    app.url_map.strict_slashes = False

    for endpoint in schemas.ENDPOINTS:
        rule = _VERSION_RULE + flask_rule(endpoint.path)
        for op_name in endpoint.ops:
            view = _SPECIAL_VIEWS.get((endpoint.path, op_name))
            if view is None:
                view = _make_view(endpoint, op_name)
            app.add_url_rule(rule, endpoint='%s %s' % (op_name,
                                                       endpoint.path),
                             view_func=view,
                             methods=[schemas.OP_METHODS[op_name]],
                             # An automatic OPTIONS answer has no JSON
                             # body; the cluster has no OPTIONS either.
                             provide_automatic_options=False)

    def answer(status, message):
        version = (flask.request.view_args or {}).get('version')
        if version is None:
            # Unknown paths have no view arguments; name the version the
            # URL asked for, if any.
            first = flask.request.path.split('/')[1:2]
            version = first[0] if first and first[0] in (
                schemas.API_VERSIONS) else None
        tenant = getattr(flask.g, 'sim_tenant', None) or (
            flask.request.headers.get('tenant') or models.ROOT_TENANT)
        return _json(error_body(status, message, version=version,
                                tenant=tenant,
                                op=flask.request.method), status)

    @app.errorhandler(ApiError)
    def api_error(e):
        return answer(e.status, e.message)

    @app.errorhandler(models.ModelError)
    def model_error(e):
        for cls, status in _STATUS:
            if isinstance(e, cls):
                return answer(status, e.message)
        return answer(500, e.message)

    @app.errorhandler(http_exceptions.HTTPException)
    def http_error(e):
        if e.code == 404:
            message = 'No such endpoint: %s' % flask.request.path
        elif e.code == 405:
            message = 'Method %s not allowed on %s' % (flask.request.method,
                                                       flask.request.path)
        else:
            message = e.description
        return answer(e.code, message)

    @app.errorhandler(Exception)
    def internal_error(e):
        LOG.exception('Internal error answering %s %s',
                      flask.request.method, flask.request.path)
        return answer(500, 'Internal error: %s' % e)

    return app
