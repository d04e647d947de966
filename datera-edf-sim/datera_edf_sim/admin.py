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

"""The simulator's admin API, for tests and benchmarks.

It lives under ``/__sim__/``, a prefix the real API does not use, on both
of the simulator's ports; :class:`~datera_edf_sim.faults.FaultInjector`
hands it those requests, which are neither logged nor faulted, and it
calls the injector (faults, latency, request log) and the model behind
it (keys, app instances, capacity, state):

=======  ==========================  =====================================
POST     /__sim__/faults             ``{"method", "path_pattern", "count",
                                     "kind", "skip", "ai_id", "tenant"}``
GET      /__sim__/faults             pending faults and latency rules
DELETE   /__sim__/faults             clear faults and latency rules
POST     /__sim__/latency            ``{"seconds", "method", "path_pattern",
                                     "count", "skip"}``
POST     /__sim__/wait_idle          ``{"timeout"}``: wait until no other
                                     request is being handled
POST     /__sim__/expire_keys        every session key becomes invalid
POST     /__sim__/force_offline      ``{"tenant", "ai_id"}``
PUT      /__sim__/capacity           ``{"gib"}`` (null: unlimited)
GET      /__sim__/requests           the request log
DELETE   /__sim__/requests           empty the request log
GET      /__sim__/state              the model's snapshot
=======  ==========================  =====================================

Answers are JSON; errors are ``{"message"}`` with the status of the
:mod:`~datera_edf_sim.exceptions` class (400 for a bad value, 404 when
the model has no such app instance, 501 without a model).
"""

import re

import flask

from datera_edf_sim import defaults
from datera_edf_sim import exceptions

ADMIN_PREFIX = '/__sim__'

bp = flask.Blueprint('sim_admin', __name__, url_prefix=ADMIN_PREFIX)


def make_app(injector):
    """The admin API's WSGI application over a fault injector.

    :param injector: a :class:`~datera_edf_sim.faults.FaultInjector`; the
        model calls go to its ``model``.
    """
    admin = flask.Flask(__name__)
    admin.config['SIM_INJECTOR'] = injector
    admin.register_blueprint(bp)

    @admin.errorhandler(exceptions.ApiError)
    def api_error(e):
        return flask.jsonify(message=e.message), e.status

    # The injector's own checks (an unknown fault kind, a bad pattern).
    @admin.errorhandler(ValueError)
    @admin.errorhandler(re.error)
    def bad_request(e):
        return flask.jsonify(message=str(e)), 400

    @admin.errorhandler(404)
    def not_found(e):
        return flask.jsonify(message='no such admin call'), 404

    @admin.errorhandler(405)
    def wrong_method(e):
        return flask.jsonify(message='method not allowed'), 405

    return admin


def _injector():
    return flask.current_app.config['SIM_INJECTOR']


def _model():
    model = _injector().model
    if model is None:
        raise exceptions.NoModel('no model behind this injector')
    return model


def _body():
    data = flask.request.get_json(force=True, silent=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise exceptions.BadRequest('body must be a JSON object')
    return data


def _call_model(func, *args):
    """Call the model; a stand-in's LookupError is a 404 too."""
    try:
        return func(*args)
    except exceptions.ApiError:
        raise
    except LookupError as e:
        raise exceptions.NotFound(getattr(e, 'message', str(e)))


@bp.route('/faults', methods=['GET'])
def list_faults():
    return flask.jsonify(_injector().faults())


@bp.route('/faults', methods=['POST'])
def add_fault():
    data = _body()
    if 'path_pattern' not in data:
        raise exceptions.BadRequest('path_pattern is required')
    injector = _injector()
    injector.fail_next(data.get('method'), data['path_pattern'],
                       count=data.get('count', 1),
                       kind=str(data.get('kind', '503')),
                       skip=data.get('skip') or 0,
                       ai_id=data.get('ai_id'),
                       tenant=data.get('tenant'))
    return flask.jsonify(injector.faults()), 201


@bp.route('/faults', methods=['DELETE'])
def clear_faults():
    injector = _injector()
    injector.clear_faults()
    return flask.jsonify(injector.faults())


@bp.route('/latency', methods=['POST'])
def add_latency():
    data = _body()
    if 'seconds' not in data:
        raise exceptions.BadRequest('seconds is required')
    injector = _injector()
    injector.add_latency(data['seconds'], data.get('method'),
                         data.get('path_pattern'),
                         count=data.get('count'),
                         skip=data.get('skip') or 0)
    return flask.jsonify(injector.faults()), 201


@bp.route('/wait_idle', methods=['POST'])
def wait_idle():
    timeout = _body().get('timeout', 30)
    if (not isinstance(timeout, (int, float)) or
            isinstance(timeout, bool) or timeout < 0):
        raise exceptions.BadRequest('timeout must be a non-negative number')
    # This admin call is in flight itself.
    return flask.jsonify({'idle': _injector().wait_idle(timeout, ignore=1)})


@bp.route('/expire_keys', methods=['POST'])
def expire_keys():
    _call_model(_model().expire_all_keys)
    return flask.jsonify({})


@bp.route('/force_offline', methods=['POST'])
def force_offline():
    data = _body()
    if not data.get('ai_id'):
        raise exceptions.BadRequest('ai_id is required')
    result = _call_model(_model().force_offline,
                         data.get('tenant') or defaults.ROOT_TENANT,
                         data['ai_id'])
    return flask.jsonify(result if isinstance(result, dict) else {})


@bp.route('/capacity', methods=['PUT'])
def set_capacity():
    gib = _body().get('gib')
    if gib is not None and (not isinstance(gib, (int, float))
                            or isinstance(gib, bool) or gib < 0):
        raise exceptions.BadRequest(
            'gib must be a non-negative number or null')
    _call_model(_model().set_capacity, gib)
    return flask.jsonify({'gib': gib})


@bp.route('/requests', methods=['GET'])
def get_requests():
    return flask.jsonify(_injector().requests())


@bp.route('/requests', methods=['DELETE'])
def clear_requests():
    _injector().clear_requests()
    return flask.jsonify([])


@bp.route('/state', methods=['GET'])
def state():
    return flask.jsonify(_model().snapshot())
