"""Datera's SDK (dfs_sdk) pointed at a simulator, for tests.

The SDK builds its URLs with the fixed ports 7717/7718; a simulator started
by the fixture listens on free ports. :func:`make_api` installs an
``ApiConnection`` subclass that uses the simulator's port (the SDK has no
port setting), and keeps the SDK's schema cache and logging private to the
test.
"""

import os
import uuid

from datera_glance.sdk_compat import connection
from datera_glance.sdk_compat import dfs_sdk


def connection_class(port):
    """An ``ApiConnection`` subclass that talks to ``port``."""

    class SimulatorConnection(connection.ApiConnection):
        def _get_request_attrs(self, urlpath):
            protocol, _port, cert_data, api_version, host, _url = (
                super(SimulatorConnection, self)._get_request_attrs(urlpath))
            url = '{}://{}:{}/v{}/{}'.format(
                protocol, host, port, api_version.strip('v'),
                urlpath.strip('/'))
            return protocol, port, cert_data, api_version, host, url

    return SimulatorConnection


def make_api(sim, version='v2.2', tenant=None, secure=True, ca_file=None,
             username=None, password=None, login=True, **kwargs):
    """A dfs_sdk API object for a running simulator.

    :param sim: a :class:`datera_edf_sim.fixture.SimulatorProcess`.
    :param version: ``'v2.1'`` or ``'v2.2'``.
    :param secure: HTTPS (verified against ``ca_file``, by default the
        simulator's CA) or plain HTTP.
    :param login: log in now, so that TLS and credential errors surface
        here rather than at the first call.
    :param kwargs: more ``dfs_sdk.get_api`` arguments, e.g.
        ``retry_503_type=None`` or ``retry_connection_type=None`` to see
        failures at once instead of the SDK's retries (up to 300 s).
    """
    # One cache file per API object: the SDK writes it without locking or
    # renaming, so API objects made in parallel must not share one.
    cache = '.sdk-schema-%s-%s.json' % (version, uuid.uuid4().hex)
    kwargs.setdefault('schema_loc', os.path.join(sim.data_dir, cache))
    api = dfs_sdk.get_api(
        sim.host, username or sim.username, password or sim.password,
        version, tenant=tenant, secure=secure,
        verify=(ca_file or sim.ca_file) if secure else False,
        immediate_login=False, disable_log=True, **kwargs)
    port = sim.port if secure else sim.http_port
    api.context.connection = connection_class(port).from_context(api.context)
    if login:
        # The context logs in on first use of its schema reader and
        # caches it; logging in through the connection directly would
        # leave the context to log in a second time.
        api.context.reader
    return api
