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

"""The simulator process: model, data plane, fault injection, HTTPS + HTTP.

:class:`Simulator` puts the parts together and serves them with two
threaded werkzeug servers, one with TLS (the cluster's port 7718) and one
without (7717), each in its own thread. ``datera-edf-sim serve`` runs one
until SIGTERM or SIGINT. Optionally its exports are also served by a real
iSCSI target (:mod:`datera_edf_sim.iscsi_target`).
"""

import json
import logging
import os
import ssl
import threading

from werkzeug import serving

from datera_edf_sim import admin
from datera_edf_sim import certs
from datera_edf_sim import dataplane as dataplane_mod
from datera_edf_sim import defaults
from datera_edf_sim import faults
from datera_edf_sim import iscsi_target as iscsi_target_mod
from datera_edf_sim import naming

LOG = logging.getLogger(__name__)

EXPORT_DIR = 'exports'
TLS_DIR = 'tls'
# tgtd's output, with the iSCSI target.
TGTD_LOG = 'tgtd.log'
# The loopback data IPs picked for the iSCSI target, kept for a restart.
ISCSI_STATE = 'iscsi-target.json'
# A client that connects and then says nothing must not hold a server
# thread forever.
REQUEST_TIMEOUT = 300
# How long a stop waits for requests already being handled.
STOP_GRACE = 10


def state_path(data_dir):
    """Where the control-plane state of a data directory lives."""
    from datera_edf_sim import models
    return os.path.join(data_dir, models.DB_NAME)


def export_path(data_dir):
    """Where the export links of a data directory's simulator appear."""
    return os.path.join(data_dir, EXPORT_DIR)


class _TlsContext(ssl.SSLContext):
    """Server TLS context whose handshakes run in the request threads.

    werkzeug wraps the listening socket; with the default
    ``do_handshake_on_connect=True`` every TLS handshake would happen in the
    accept loop, one at a time, and a silent client would stall it.
    Without it, OpenSSL completes the handshake on the first read, in the
    thread that serves the connection.
    """

    def wrap_socket(self, sock, server_side=False,
                    do_handshake_on_connect=True, *args, **kwargs):
        return super(_TlsContext, self).wrap_socket(
            sock, server_side, False, *args, **kwargs)


class _RequestHandler(serving.WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT

    def log_request(self, code='-', size='-'):
        # An access log in the simulator's log file: what a failed test
        # asked for shows under it.
        LOG.info('%s %s %s %s', self.command, self.path,
                 getattr(code, 'value', code),
                 self.headers.get('tenant', '-') if self.headers else '-')

    def log_error(self, fmt, *args):
        LOG.warning('%s: ' + fmt, self.address_string(), *args)


class Simulator(object):
    """A Datera EDF simulator serving one data directory.

    :param data_dir: holds the SQLite state, volume files, export links and
        TLS material; created if missing, reused if present.
    :param port: HTTPS port (0: pick a free one).
    :param http_port: HTTP port (0: pick a free one).
    :param bind: address both servers listen on.
    :param block_devices: export loop devices instead of files (root).
    :param export_owner: ``(uid, gid)`` exported devices are handed to, so
        a glance-api that does not run as root can open them; None leaves
        them to root.
    :param iscsi_target: also serve every export with a real iSCSI target,
        a tgtd of this simulator's own listening on port 3260 of the data
        IPs (root and tgtd needed). Without ``data_ips``, two fresh
        loopback addresses 127.x.y.1 and 127.x.y.2 are picked (and kept in
        the data directory for a restart).
    :param model_factory: ``f(data_dir, dataplane, api_options)`` making
        the model; the REST layer's by default (tests pass stand-ins).
    :param app_factory: ``f(model, dataplane, api_options)`` making the
        WSGI application; the REST layer's by default.
    :param api_options: passed to the REST application factory
        (``username``, ``password``, ``sw_version``, ``key_ttl``,
        ``resize_seconds``, ``snapshot_seconds``, ``data_ips``); None
        values are left out so the application's defaults apply.
    """

    def __init__(self, data_dir, port=defaults.PORT,
                 http_port=defaults.HTTP_PORT, bind=defaults.BIND,
                 block_devices=False, export_owner=None, iscsi_target=False,
                 model_factory=None, app_factory=None, **api_options):
        self.data_dir = os.path.abspath(data_dir)
        self.export_dir = export_path(self.data_dir)
        self.bind = bind
        self.block_devices = block_devices
        self.export_owner = export_owner
        self.iscsi_target = bool(iscsi_target)
        self._requested_ports = (port, http_port)
        self.api_options = {k: v for k, v in api_options.items()
                            if v is not None}
        self.api_options.setdefault('username', defaults.USERNAME)
        self.api_options.setdefault('password', defaults.PASSWORD)
        self._model_factory = model_factory or _make_model
        self._app_factory = app_factory or _make_app
        self.model = None
        self.dataplane = None
        self.tgt = None
        self.injector = None
        self.tls = None
        self._servers = []
        self._threads = []

    @property
    def host(self):
        """The address clients connect to."""
        if self.bind in ('', '0.0.0.0'):
            return '127.0.0.1'
        if self.bind == '::':
            return '::1'
        return self.bind

    @property
    def port(self):
        return self._servers[0].server_port

    @property
    def http_port(self):
        return self._servers[1].server_port

    def start(self):
        """Open the state, rebuild exports, bind both ports, serve."""
        os.makedirs(self.data_dir, exist_ok=True)
        self.tls = certs.ensure_certificates(
            os.path.join(self.data_dir, TLS_DIR), hosts=[self.host, self.bind])
        if self.iscsi_target:
            self.tgt = self._start_iscsi_target()
        try:
            self.dataplane = dataplane_mod.DataPlane(
                self.data_dir, self.export_dir,
                block_devices=self.block_devices,
                export_owner=self.export_owner, iscsi_target=self.tgt)
        except BaseException:
            if self.tgt is not None:
                self.tgt.close()
            raise
        try:
            self.model = self._model_factory(self.data_dir, self.dataplane,
                                             self.api_options)
            app = self._app_factory(self.model, self.dataplane,
                                    self.api_options)
            self.injector = faults.FaultInjector(app, self.model)
            self._listen()
        except BaseException:
            self.stop()
            raise
        for server, name in zip(self._servers, ('https', 'http')):
            thread = threading.Thread(target=server.serve_forever,
                                      kwargs={'poll_interval': 0.2},
                                      name='edf-sim-%s' % name, daemon=True)
            thread.start()
            self._threads.append(thread)
        LOG.info('serving %s on https://%s:%d and http://%s:%d',
                 self.data_dir, self.host, self.port, self.host,
                 self.http_port)

    def _start_iscsi_target(self):
        """Start this simulator's tgtd on its data IPs (picked if unset)."""
        iscsi_target_mod.TgtTarget.check_usable()
        if not self.api_options.get('data_ips'):
            self.api_options['data_ips'] = self._loopback_data_ips()
        tgt = iscsi_target_mod.TgtTarget(
            self.api_options['data_ips'],
            log_file=os.path.join(self.data_dir, TGTD_LOG))
        tgt.start()
        return tgt

    def _loopback_data_ips(self):
        """The data IPs picked for an earlier run if free, else new ones.

        A host that had a volume attached finds its portals again after a
        restart, as with a real cluster.
        """
        path = os.path.join(self.data_dir, ISCSI_STATE)
        try:
            with open(path) as f:
                ips = json.load(f)['data_ips']
            if ips and all(iscsi_target_mod.portal_free(ip) for ip in ips):
                return ips
            LOG.warning('the data IPs of the last run (%s) are in use; '
                        'picking new ones', ', '.join(ips))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        ips = iscsi_target_mod.pick_loopback_ips(2)
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({'data_ips': ips}, f)
        os.replace(tmp, path)
        return ips

    def _listen(self):
        port, http_port = self._requested_ports
        context = _TlsContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._servers.append(serving.make_server(
            self.bind, port, self.injector, threaded=True,
            request_handler=_RequestHandler, ssl_context=context))
        self._servers.append(serving.make_server(
            self.bind, http_port, self.injector, threaded=True,
            request_handler=_RequestHandler))

    def alive(self):
        """Whether both server threads are still serving."""
        return bool(self._threads) and all(
            t.is_alive() for t in self._threads)

    def ready_info(self):
        """What clients need to reach this simulator (the ready line)."""
        http_url = 'http://%s:%d' % (_url_host(self.host), self.http_port)
        return {
            'api_url': 'https://%s:%d' % (_url_host(self.host), self.port),
            'http_url': http_url,
            'host': self.host,
            'port': self.port,
            'http_port': self.http_port,
            'ca_file': self.tls.ca_file,
            'export_dir': self.export_dir,
            'data_dir': self.data_dir,
            'username': self.api_options['username'],
            'password': self.api_options['password'],
            'admin_url': http_url + admin.ADMIN_PREFIX,
            'block_devices': self.block_devices,
            'export_owner': (list(self.export_owner) if self.export_owner
                             is not None else None),
            'iscsi_target': self.tgt.info() if self.tgt is not None else None,
            'pid': os.getpid(),
        }

    def stop(self):
        """Stop serving, remove exports, free loop devices, close state.

        The data plane stops the iSCSI target.
        """
        if self._threads:
            # shutdown() waits up to a poll interval: stop both at once.
            stoppers = [threading.Thread(target=server.shutdown)
                        for server in self._servers]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()
        for server in self._servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._servers = []
        self._threads = []
        # Requests already accepted still run in their threads; let them
        # finish before the exports go, or one could attach a loop device
        # after close() and leak it. Those that do not finish in time find
        # the data plane closed.
        if self.injector is not None and not self.injector.wait_idle(
                STOP_GRACE):
            LOG.warning('requests still running after %ss; stopping anyway',
                        STOP_GRACE)
        if self.dataplane is not None:
            self.dataplane.close()
        close = getattr(self.model, 'close', None)
        if close is not None:
            close()
        LOG.info('stopped')


_url_host = naming.uri_host


def _make_model(data_dir, dataplane, api_options):
    # The REST layer (model and application) is imported only here and in
    # _make_app, so the transport can be tested over stand-ins.
    from datera_edf_sim import models
    model = models.Model(data_dir, dataplane=dataplane, **api_options)
    # The data plane starts with nothing exported; rebuild the exports the
    # stored state calls for (online app instances and their ACLs).
    model.resync_exports()
    return model


def _make_app(model, dataplane, api_options):
    from datera_edf_sim import app as app_mod
    return app_mod.create_app(model, dataplane=dataplane, **api_options)
