"""Stand-ins for the simulator's REST layer, to test the transport and
fault injection on their own."""

import threading

import flask

from datera_edf_sim import server


class NotFound(LookupError):
    """Like the model's NotFound."""


class StubModel(object):
    """Records the admin calls the fault injector makes."""

    def __init__(self):
        self.calls = []
        self.known_ais = {('/root', 'ai-1')}

    def expire_all_keys(self):
        self.calls.append(('expire_all_keys',))

    def force_offline(self, tenant, ai_id):
        if (tenant, ai_id) not in self.known_ais:
            raise NotFound('app instance %s not found' % ai_id)
        self.calls.append(('force_offline', tenant, ai_id))
        return {'id': ai_id, 'admin_state': 'offline'}

    def set_capacity(self, gib):
        self.calls.append(('set_capacity', gib))

    def fill_capacity(self):
        self.calls.append(('fill_capacity',))
        return 7

    def snapshot(self):
        return {'tenants': ['/root'], 'app_instances': []}


def make_stub_app(model, dataplane, api_options):
    """A tiny API: every path answers an envelope and counts its calls."""
    app = flask.Flask('stub-api')
    app.config['hits'] = hits = {}
    lock = threading.Lock()

    @app.route('/v<version>/<path:path>',
               methods=['GET', 'POST', 'PUT', 'DELETE'])
    def anything(version, path):
        with lock:
            hits[path] = hits.get(path, 0) + 1
        return flask.jsonify(path='/' + path, version='v' + version,
                             tenant=flask.request.headers.get('tenant'),
                             data={'hits': hits[path]})

    model.app = app
    return app


def start_stub_simulator(data_dir, **kwargs):
    """An in-process :class:`server.Simulator` over the stand-ins."""
    model = StubModel()
    sim = server.Simulator(
        data_dir, port=0, http_port=0,
        model_factory=lambda data_dir, dataplane, options: model,
        app_factory=make_stub_app, **kwargs)
    sim.start()
    return sim
