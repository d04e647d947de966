# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The SDK adapter: dfs_sdk's connection, fixed for use inside glance-api.

The SDK is built for scripts: it configures logging for the process,
caches the API schema in one shared file in /tmp, reaches only ports
7717/7718, retries for minutes and logs request bodies. Everything here
keeps those side effects away; what is left of the SDK is its URL
building, its response checks and its error classes.
"""

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import time

from oslo_log import log as logging
import requests
import requests.adapters

from datera_glance.i18n import _
from datera_glance import names
from datera_glance.sdk_compat import dfs_sdk

sdk_exc = dfs_sdk.exceptions
sdk_connection = dfs_sdk.connection

# One logger for the whole package, named as before it was split: the
# README and operators' logging configurations name it.
LOG = logging.getLogger(__package__)

HTTP_PORT = 7717
ROOT_TENANT = '/root'
DRIVER_HEADER = 'OpenStack-Glance-datera-glance'

_JSON = 'application/json; charset=utf-8'


class TlsVerifyError(sdk_exc.ApiConnectionError):
    """The server's certificate could not be verified.

    Never retried: it is a configuration problem, not a transient one.
    """


_schema_dir_lock = threading.Lock()


def _private_dir():
    """The schema cache folder of this user's processes (mode 0700).

    One folder per user, reused by every process and every restart (a
    folder per process would pile up in the temp folder whenever a
    process is killed). Files in it are written aside and renamed, so
    processes sharing it never read half a file. A folder of that name
    that is not a private folder of this user is not used.
    """
    path = os.path.join(tempfile.gettempdir(),
                        'datera-glance-schema-%d' % os.geteuid())
    with _schema_dir_lock:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    if (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and
            not st.st_mode & 0o077):
        return path
    raise OSError(_('%s is not a private folder of this user') % path)


def schema_file(settings):
    """Where to cache the API schema of the cluster ``settings`` name."""
    folder = settings.schema_cache_dir
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    else:
        try:
            folder = _private_dir()
        except OSError as e:
            # Someone else's folder: never trust it; fall back to a
            # folder of this process, removed when it exits.
            LOG.warning('Caching the Datera API schema in a folder of '
                        'this process: %s', e)
            folder = tempfile.mkdtemp(prefix='datera-glance-schema-')
            atexit.register(shutil.rmtree, folder, True)
    cluster = '%s:%s' % (settings.san_ip, settings.san_port)
    digest = hashlib.sha256(cluster.encode('utf-8')).hexdigest()[:16]
    return os.path.join(folder, 'schema-%s.json' % digest)


def _verify(settings):
    """What requests' ``verify`` gets: the CA file, or whether to check."""
    if settings.ca_file:
        return settings.ca_file
    return not settings.insecure


def new_api(settings, tenant, version, schema_loc):
    """An SDK API object of ``version`` speaking through a _Connection.

    The SDK's own retries are off (the client bounds its retries) and so
    is its logging configuration; nothing is sent before the first call.
    """
    s = settings
    api = dfs_sdk.get_api(
        s.san_ip, s.login, s.password, version,
        tenant=tenant, disable_log=True, immediate_login=False,
        secure=s.san_port != HTTP_PORT, verify=_verify(s),
        ldap_server=s.ldap_server or None, timeout=s.request_timeout,
        retry_503_type=None, retry_connection_type=None,
        schema_loc=schema_loc,
        extra_headers={'Datera-Driver': DRIVER_HEADER})
    conn = _Connection.from_context(api.context)
    conn.setup(s.san_port, _verify(s), s.request_timeout,
               api.context.schema_loc)
    api.context.connection = conn
    return api, conn


class _Connection(sdk_connection.ApiConnection):
    """The SDK's connection, fixed for use inside glance-api.

    Reaches the configured port (the SDK only knows 7717/7718), keeps one
    ``requests.Session`` per client for connection reuse with a real
    timeout, verifies TLS, logs neither headers nor bodies (they carry the
    auth token and the password), keeps failed-login errors free of the
    password, and logs in without going through the SDK's retry and
    re-login wrappers (a 401 while loading /api or /system deadlocks
    those).
    """

    def setup(self, port, verify, request_timeout, schema_file):
        self._port = port
        self._request_timeout = request_timeout
        self._schema_file = schema_file
        self._deadline = threading.local()
        self._sent_key = threading.local()
        self._verify_tls = verify
        self._session = requests.Session()
        # glance-api serves requests on threads; let them share the pool.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=16)
        self._session.mount('https://', adapter)
        self._session.mount('http://', adapter)

    def close(self):
        self._session.close()

    def set_deadline(self, deadline):
        """Bound the requests this thread makes until ``deadline``."""
        self._deadline.value = deadline

    def _time_left(self):
        deadline = getattr(self._deadline, 'value', None)
        if deadline is None:
            return self._request_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise sdk_exc.ApiTimeoutError(
                'operation deadline passed before the request was sent', '')
        return min(self._request_timeout, remaining)

    def _get_request_attrs(self, urlpath):
        protocol = 'http' if self._port == HTTP_PORT else 'https'
        host = names.uri_host(self._hostname)
        url = '%s://%s:%s/v%s/%s' % (protocol, host, self._port,
                                     self._version.strip('v'),
                                     urlpath.strip('/'))
        return protocol, self._port, None, self._version, host, url

    def _http_connect_request(self, method, urlpath, headers=None,
                              params=None, body=None, files=None,
                              sensitive=False):
        url = self._get_request_attrs(urlpath)[-1]
        headers = dict(headers or {})
        headers.update(self._extra_headers or {})
        self._sent_key.value = headers.get('Auth-Token')
        started = time.monotonic()
        try:
            resp = self._session.request(
                method, url, headers=headers, params=params, data=body,
                files=files, timeout=self._time_left(),
                # Per request: a session-level False would lose against
                # REQUESTS_CA_BUNDLE from the environment.
                verify=self._verify_tls)
        except requests.exceptions.SSLError as e:
            raise TlsVerifyError(e, '')
        except requests.Timeout as e:
            raise sdk_exc.ApiTimeoutError(e, '')
        except requests.RequestException as e:
            raise sdk_exc.ApiConnectionError(e, '')
        LOG.debug('Datera API %(method)s %(path)s: %(status)s in %(t).3fs',
                  {'method': method, 'path': urlpath,
                   'status': resp.status_code,
                   't': time.monotonic() - started})
        try:
            data = resp.json()
        except ValueError:
            # Proxies and very old clusters answer errors in HTML.
            data = {'message': resp.text[:200]} if resp.status_code >= 300 \
                else {}
        self._assert_response_successful(
            method, urlpath, '<redacted>' if sensitive else body, data,
            resp.status_code, resp.reason)
        return data, resp.status_code, resp.reason, resp.headers

    def _raw_get(self, urlpath):
        headers = {'content-type': _JSON, 'tenant': ROOT_TENANT,
                   'Auth-Token': self._key}
        data = self._http_connect_request('GET', urlpath, headers=headers,
                                          sensitive=True)[0]
        if isinstance(data, dict) and 'data' in data:
            return data['data']
        return data

    def _load_schema(self):
        """Read /api once per cluster and API version, cached privately."""
        cache = {}
        try:
            with open(self._schema_file, 'rb') as f:
                cache = json.loads(f.read().decode('utf-8'))
        except (OSError, ValueError):
            cache = {}
        if isinstance(cache, dict) and isinstance(
                cache.get(self._version), dict):
            return cache[self._version]
        schema = self._raw_get('/api')
        cache = cache if isinstance(cache, dict) else {}
        cache[self._version] = schema
        self._write_schema_cache(cache)
        return schema

    def _write_schema_cache(self, cache):
        # Write aside and rename: a reader never sees half a file.
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(
                dir=os.path.dirname(self._schema_file))
            with os.fdopen(fd, 'wb') as f:
                f.write(json.dumps(cache).encode('utf-8'))
            os.replace(tmp, self._schema_file)
        except OSError as e:
            LOG.warning('Could not cache the Datera API schema in %(f)s: '
                        '%(e)s', {'f': self._schema_file, 'e': e})
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def login(self, **params):
        """Log in, then read the product version (and the schema once).

        When the key this thread was refused with has already been
        replaced by another thread's login, that new key is used instead
        of logging in once more per thread.
        """
        body = {'name': self._username, 'password': self._password}
        if self._ldap_server:
            body['remote_server'] = self._ldap_server
        refused = getattr(self._sent_key, 'value', None)
        with self._lock:
            if self._logged_in and refused and refused != self._key:
                return
            resp = self._http_connect_request(
                'PUT', '/login', headers={'content-type': _JSON},
                body=json.dumps(body), sensitive=True)[0]
            key = resp.get('key') if isinstance(resp, dict) else None
            if not key:
                raise sdk_exc.ApiAuthError(
                    'PUT /login: no key returned',
                    {'message': 'no auth key returned'})
            self._key = str(key)
            if self.reader is None:
                reader_cls = sdk_connection.get_reader(self._version)
                self.reader = reader_cls(self._load_schema())
            # Read again at every login: an upgraded cluster (which ends
            # every session) may have moved the metadata endpoint.
            self._product_version = self._raw_get('/system')['sw_version']
            self._logged_in = True
