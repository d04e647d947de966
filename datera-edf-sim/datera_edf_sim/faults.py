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

"""Fault injection and request observation for the simulator.

:class:`FaultInjector` is WSGI middleware around the REST application. It
keeps a bounded log of the requests the API answered and can, for requests
matching a method and a path pattern:

- answer ``503`` (the SDK backs off and retries), ``500`` (an internal
  error nobody retries),
- drop the connection without answering (``drop``: the request never
  reaches the cluster; ``drop_after``: the cluster performs it, then the
  answer is lost, which is what makes a client retry a POST that
  succeeded),
- add latency,
- act just before handling a request, as something else on the cluster
  would (``expire_keys``: every session key ends, so the request gets 401;
  ``force_offline``: another host forces an app instance offline;
  ``full``: the capacity becomes what is in use, so creates and grows
  fail with "Insufficient capacity"); the request then runs normally.

A failure or latency rule may first let ``skip`` matching requests
through, so that a test can hit the k-th call of a kind, not the next.

Tests and benchmarks drive it through the admin API
(:mod:`datera_edf_sim.admin`) under ``/__sim__/``, a prefix the real API
does not use; the injector hands those requests to it, and they are
neither logged nor faulted.
"""

import collections
import io
import json
import logging
import re
import socket
import threading
import time

import flask

from datera_edf_sim import admin
from datera_edf_sim import defaults
from datera_edf_sim import exceptions

LOG = logging.getLogger(__name__)

# Answers instead of the cluster's.
FAILURE_KINDS = ('503', '500', 'drop', 'drop_after')
# Done to the cluster just before the request, which then runs normally.
ACTION_KINDS = ('expire_keys', 'force_offline', 'full')
FAULT_KINDS = FAILURE_KINDS + ACTION_KINDS

_VERSION_PREFIX = re.compile(r'^/v\d+(?:\.\d+)?(?=/|$)')
_AI_IN_PATH = re.compile(r'/app_instances/([^/?]+)')

# What the failure kinds '503' and '500' answer. The SDK retries any 503;
# a real cluster sends one while it is busy.
_INJECTED_ERRORS = {
    '503': exceptions.ServiceUnavailable(
        'The service is temporarily unavailable, please retry later'),
    # Deliberately not the "REST server is still initializing" message,
    # which the SDK would retry: an injected 500 is a plain internal error.
    '500': exceptions.InternalError('Internal server error (injected fault)'),
}


class FaultRule(object):
    """Requests a fault applies to: method (None: any) and path regex."""

    def __init__(self, method=None, path_pattern=None):
        self.method = method.upper() if method and method != '*' else None
        self.path_pattern = path_pattern or ''
        self._regex = re.compile(self.path_pattern)

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        return bool(self._regex.search(path))

    def describe(self):
        return {'method': self.method, 'path_pattern': self.path_pattern}


def _non_negative_int(name, value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < 0:
        raise ValueError('%s must be a non-negative integer' % name)
    return number


class _CountedRule(FaultRule):
    """A rule that lets ``skip`` matches through, then applies.

    It applies ``count`` times, or for ever when ``count`` is None.
    """

    def __init__(self, method, path_pattern, count, skip):
        super(_CountedRule, self).__init__(method, path_pattern)
        if count is not None and _non_negative_int('count', count) < 1:
            raise ValueError('count must be at least 1')
        self.remaining = None if count is None else int(count)
        self.skip = _non_negative_int('skip', skip or 0)

    def take(self, method, path):
        """Whether the rule applies to this request (counts it if so)."""
        if not self.matches(method, path):
            return False
        if self.skip:
            self.skip -= 1
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    @property
    def spent(self):
        return self.remaining is not None and self.remaining <= 0

    def describe(self):
        d = super(_CountedRule, self).describe()
        d.update(remaining=self.remaining, skip=self.skip)
        return d


class _Failure(_CountedRule):
    def __init__(self, method, path_pattern, count, kind, skip=0,
                 ai_id=None, tenant=None):
        super(_Failure, self).__init__(method, path_pattern, count, skip)
        if kind not in FAULT_KINDS:
            raise ValueError('unknown fault kind %r (one of %s)' % (
                kind, ', '.join(FAULT_KINDS)))
        self.kind = kind
        self.ai_id = ai_id
        self.tenant = tenant

    def describe(self):
        d = super(_Failure, self).describe()
        d['kind'] = self.kind
        if self.ai_id:
            d.update(ai_id=self.ai_id, tenant=self.tenant)
        return d


class _Latency(_CountedRule):
    def __init__(self, seconds, method=None, path_pattern=None, count=None,
                 skip=0):
        super(_Latency, self).__init__(method, path_pattern, count, skip)
        if float(seconds) < 0:
            raise ValueError('latency must not be negative')
        self.seconds = float(seconds)

    def describe(self):
        d = super(_Latency, self).describe()
        d['seconds'] = self.seconds
        return d


class FaultInjector(object):
    """WSGI middleware adding faults, latency and a request log to an app.

    :param app: the REST API WSGI application.
    :param model: the simulator's model; the admin API and the action
        faults call its ``expire_all_keys()``, ``force_offline(tenant,
        ai_id)``, ``set_capacity(gib)``, ``fill_capacity()`` and
        ``snapshot()``. Without a model those admin calls answer 501.
    :param log_size: how many requests the log keeps (oldest dropped).
    """

    def __init__(self, app, model=None,
                 log_size=defaults.REQUEST_LOG_SIZE):
        self.app = app
        self.model = model
        self._lock = threading.Lock()
        self._idle = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._failures = []
        self._latencies = []
        self._log = collections.deque(maxlen=log_size)
        self._admin = admin.make_app(self)

    # Python API (the admin API calls these too)

    def fail_next(self, method, path_pattern, count=1, kind='503', skip=0,
                  ai_id=None, tenant=None):
        """Fail the next ``count`` requests matching a method and path.

        ``method`` None or '*' matches any; the regex ``path_pattern`` is
        searched in the path as sent (``/v2.2/app_instances``). ``kind`` is
        one of :data:`FAULT_KINDS`. The first ``skip`` matching requests
        are let through untouched (``skip=k-1``: the k-th and later).

        The action kinds change the cluster just before the request runs:
        ``force_offline`` takes app instance ``ai_id`` of ``tenant`` (by
        default the one in the request's path, in the request's tenant)
        offline; nothing happens when it does not exist.
        """
        failure = _Failure(method, path_pattern, count, str(kind), skip,
                           ai_id, tenant)
        with self._lock:
            self._failures.append(failure)
        LOG.info('will fail %d %s %s with %s after %d', failure.remaining,
                 failure.method or '*', failure.path_pattern, failure.kind,
                 failure.skip)

    def add_latency(self, seconds, method=None, path_pattern=None,
                    count=None, skip=0):
        """Delay matching requests by ``seconds``.

        Every matching request by default; with ``count``, only that many,
        after ``skip`` matching requests that are not delayed. When several
        rules match, the largest delay applies.
        """
        rule = _Latency(seconds, method, path_pattern, count, skip)
        with self._lock:
            self._latencies.append(rule)

    def clear_faults(self):
        """Remove every pending failure and latency rule."""
        with self._lock:
            self._failures = []
            self._latencies = []

    def faults(self):
        """Pending failures and latency rules."""
        with self._lock:
            return {'failures': [f.describe() for f in self._failures],
                    'latency': [r.describe() for r in self._latencies]}

    def requests(self):
        """The request log, oldest first.

        Each entry has ``method``, ``path`` (as sent, without the query
        string), ``api_path`` (without the ``/v2.x`` prefix), ``version``,
        ``tenant``, ``status`` (None when the connection was dropped),
        ``fault`` (the injected kind or None) and ``time``.
        """
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_requests(self):
        with self._lock:
            self._log.clear()

    # WSGI

    @property
    def in_flight(self):
        """How many API or admin requests are being handled now."""
        with self._idle:
            return self._in_flight

    def wait_idle(self, timeout, ignore=0):
        """Wait until no request is being handled; False on timeout.

        ``ignore``: that many requests in flight count as idle (an admin
        call waiting here is one of them).
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= ignore,
                                       timeout)

    def __call__(self, environ, start_response):
        with self._idle:
            self._in_flight += 1
        try:
            return self._handle(environ, start_response)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _handle(self, environ, start_response):
        path = environ.get('PATH_INFO', '') or '/'
        if (path == admin.ADMIN_PREFIX or
                path.startswith(admin.ADMIN_PREFIX + '/')):
            return self._admin(environ, start_response)

        method = environ.get('REQUEST_METHOD', 'GET').upper()
        failure, delay = self._match(method, path)
        if delay:
            time.sleep(delay)
        entry = _log_entry(environ, method, path)
        entry['fault'] = failure.kind if failure else None
        if failure:
            LOG.info('injecting %s into %s %s', failure.kind, method, path)
        if failure and failure.kind in ACTION_KINDS:
            self._act(failure, method, path, environ)

        if failure and failure.kind in _INJECTED_ERRORS:
            error = _INJECTED_ERRORS[failure.kind]
            entry['status'] = error.status
            self._record(entry)
            return _json_response(start_response, error.status,
                                  error.body())

        if failure and failure.kind == 'drop':
            self._record(entry)
            _drop_connection(environ)  # raises

        if failure and failure.kind == 'drop_after':
            # Let the cluster do the work, throw the answer away.
            result = self.app(environ, lambda *a, **k: lambda data: None)
            try:
                for _chunk in result:
                    pass
            finally:
                if hasattr(result, 'close'):
                    result.close()
            self._record(entry)
            _drop_connection(environ)  # raises

        status = {}

        def logging_start_response(status_line, headers, exc_info=None):
            status['code'] = int(status_line.split(None, 1)[0])
            return start_response(status_line, headers, exc_info)

        try:
            result = self.app(environ, logging_start_response)
        except Exception:
            entry['status'] = 500
            self._record(entry)
            raise
        entry['status'] = status.get('code')
        self._record(entry)
        return result

    def _match(self, method, path):
        with self._lock:
            failure = None
            for candidate in self._failures:
                if candidate.take(method, path):
                    failure = candidate
                    if candidate.spent:
                        self._failures.remove(candidate)
                    break
            # Every latency rule sees the request (each counts its skips).
            delays = [r.seconds for r in list(self._latencies)
                      if r.take(method, path)]
            self._latencies = [r for r in self._latencies if not r.spent]
        return failure, max(delays) if delays else 0

    def _act(self, failure, method, path, environ):
        """Apply an action fault to the model before the request runs."""
        if self.model is None:
            LOG.warning('no model: cannot apply %s', failure.kind)
            return
        try:
            if failure.kind == 'expire_keys':
                self.model.expire_all_keys()
            elif failure.kind == 'full':
                gib = self.model.fill_capacity()
                LOG.info('capacity set to what is in use: %s GiB', gib)
            elif failure.kind == 'force_offline':
                ai_id = failure.ai_id
                if not ai_id:
                    match = _AI_IN_PATH.search(path)
                    ai_id = match.group(1) if match else None
                if not ai_id:
                    LOG.info('force_offline: no app instance in %s', path)
                    return
                tenant = (failure.tenant or environ.get('HTTP_TENANT') or
                          defaults.ROOT_TENANT)
                self.model.force_offline(tenant, ai_id)
                LOG.info('forced app instance %s of %s offline', ai_id,
                         tenant)
        except LookupError as e:
            # Nothing to act on (e.g. the app instance is not there yet).
            LOG.info('%s before %s %s did nothing: %s', failure.kind, method,
                     path, e)
        except Exception:
            # The request itself still runs.
            LOG.exception('%s before %s %s failed', failure.kind, method,
                          path)

    def _record(self, entry):
        with self._lock:
            self._log.append(entry)


# Body fields an app instance create names its clone source with.
CLONE_SOURCES = ('clone_volume_src', 'clone_snapshot_src', 'clone_src')


def _log_entry(environ, method, path):
    version_match = _VERSION_PREFIX.match(path)
    api_path = (path[version_match.end():] or '/'
                if version_match else path)
    return {
        'time': time.time(),
        'method': method,
        'path': path,
        'api_path': api_path,
        'version': version_match.group(0)[1:] if version_match else None,
        'tenant': environ.get('HTTP_TENANT'),
        'status': None,
        'clone': (_clone_source(environ)
                  if method == 'POST' and
                  api_path.rstrip('/') == '/app_instances' else None),
    }


def _clone_source(environ):
    """``{field: source path}`` of an app instance create that clones.

    Only these fields are kept from a body: the log never holds what else
    a request carries (a login's password). The body is read and put back
    for the application.
    """
    try:
        length = int(environ.get('CONTENT_LENGTH') or 0)
    except ValueError:
        return None
    if length <= 0:
        return None
    data = environ['wsgi.input'].read(length)
    environ['wsgi.input'] = io.BytesIO(data)
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    found = {key: (body[key] or {}).get('path')
             for key in CLONE_SOURCES if isinstance(body.get(key), dict)}
    return found or None


def _json_response(start_response, code, body):
    data = flask.json.dumps(body).encode('utf-8')
    reason = {500: 'INTERNAL SERVER ERROR',
              503: 'SERVICE UNAVAILABLE'}.get(code, '')
    start_response('%d %s' % (code, reason),
                   [('Content-Type', 'application/json'),
                    ('Content-Length', str(len(data)))])
    return [data]


def _drop_connection(environ):
    """Cut the client's connection without an answer.

    Shutting the socket down both ways makes the client see the connection
    close before any status line (``requests`` raises ConnectionError).
    Never returns.
    """
    sock = environ.get('werkzeug.socket')
    if sock is None:
        raise RuntimeError('cannot drop the connection: the server does not '
                           'expose its socket (werkzeug.socket)')
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    # werkzeug handles a connection error raised by the application as a
    # client that went away: no answer, no traceback in the log.
    raise ConnectionAbortedError('connection dropped (injected fault)')
