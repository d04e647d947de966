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
formats answers the way a Datera cluster does. The routes are in
:mod:`urls`, the handlers they name and the answer formats in
:mod:`responses`, the errors in :mod:`exceptions`.

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

import logging

import flask
from werkzeug import exceptions as http_exceptions

from datera_edf_sim import defaults
from datera_edf_sim import exceptions
from datera_edf_sim import models
from datera_edf_sim import responses
from datera_edf_sim import schemas
from datera_edf_sim import urls

LOG = logging.getLogger(__name__)


def _make_view(endpoint, op_name):
    """The view serving one operation of an endpoint through its handler.

    It checks the session and the tenant (except on open paths),
    validates the body, calls the handler and puts what it returns in the
    envelope, filtered and paged for list reads.
    """
    op = endpoint.ops[op_name]
    handler = urls.HANDLERS[(endpoint.path, op_name)]
    is_list = op_name == 'read' and endpoint.path in urls.LIST_READS

    def view(version, **params):
        model = flask.current_app.config['SIM_MODEL']
        if endpoint.path not in urls.OPEN_PATHS:
            model.check_key(flask.request.headers.get('Auth-Token'))
            tenant = model.check_tenant(flask.request.headers.get('tenant'))
        else:
            tenant = defaults.ROOT_TENANT
        flask.g.sim_tenant = tenant
        body = responses.parse_body() if op_name != 'read' else {}
        if op_name != 'read':
            responses.validate(op.body(version), body, 'the request body')
        query = responses.list_query() if is_list else None
        data = handler(responses.Call(model, version, tenant, body, params))
        envelope = responses.envelope(version, tenant)
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
        return responses.json_response(envelope,
                                       201 if op_name == 'create' else 200)

    view.__name__ = 'sim_%s_%s' % (op_name, endpoint.path)
    return view


def create_app(model, dataplane=None, username=defaults.USERNAME,
               password=defaults.PASSWORD, sw_version=defaults.SW_VERSION,
               key_ttl=defaults.KEY_TTL,
               resize_seconds=defaults.RESIZE_SECONDS,
               data_ips=defaults.DATA_IPS, system_name=defaults.SYSTEM_NAME,
               resync=False, snapshot_seconds=defaults.SNAPSHOT_SECONDS):
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
        rule = urls.VERSION_RULE + urls.flask_rule(endpoint.path)
        for op_name in endpoint.ops:
            view = urls.VIEWS.get((endpoint.path, op_name))
            if view is None:
                view = _make_view(endpoint, op_name)
            app.add_url_rule(rule, endpoint='%s %s' % (op_name,
                                                       endpoint.path),
                             view_func=view,
                             methods=[schemas.OP_METHODS[op_name]],
                             # An automatic OPTIONS answer has no JSON
                             # body; the cluster has no OPTIONS either.
                             provide_automatic_options=False)

    # Every error ends in responses.error_response.

    @app.errorhandler(exceptions.ApiError)
    def api_error(e):
        return responses.error_response(e)

    @app.errorhandler(http_exceptions.HTTPException)
    def http_error(e):
        if e.code == 404:
            message = 'No such endpoint: %s' % flask.request.path
        elif e.code == 405:
            message = 'Method %s not allowed on %s' % (flask.request.method,
                                                       flask.request.path)
        else:
            message = e.description
        return responses.error_response(exceptions.for_status(e.code,
                                                              message))

    @app.errorhandler(Exception)
    def internal_error(e):
        LOG.exception('Internal error answering %s %s',
                      flask.request.method, flask.request.path)
        return responses.error_response(
            exceptions.InternalError('Internal error: %s' % e))

    return app
