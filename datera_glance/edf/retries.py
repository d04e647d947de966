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

"""Bounded retries and waits of the Datera REST calls, with tenacity.

A store operation must end in bounded time even when the cluster is
slow or restarting: each REST call retries transient failures with
exponential backoff, but only while the next try can still start before
the deadline of the operation it belongs to, and waits for the cluster
to finish something (a resize, an export) end at that deadline too.
"""

import contextlib
import functools
import operator
import threading
import time

from oslo_log import log as logging
import tenacity

from datera_glance.edf import connection
from datera_glance.edf import errors
from datera_glance.sdk_compat import dfs_sdk

sdk_exc = dfs_sdk.exceptions

# One logger for the whole package, named as before it was split: the
# README and operators' logging configurations name it.
LOG = logging.getLogger(__package__)

RETRIABLE = (sdk_exc.Api503RetryError, sdk_exc.ApiConnectionError)
# Releasing a volume is retried on any server error: a host that gives up
# leaves its ACL entry and the export behind.
RELEASE_RETRIABLE = RETRIABLE + (sdk_exc.ApiInternalError,
                                 sdk_exc.ApiAuthError)

# A wait for the cluster looks again after 0.05 s, then after twice the
# previous pause, at most every second: quick for the usual short waits
# without hammering a busy cluster during long ones.
_POLL_FIRST_WAIT = 0.05
_POLL_MAX_WAIT = 1.0


class Retrier:
    """The retries and waits of one client's REST calls.

    Every call, its retries and waits included, ends within
    ``settings.operation_timeout``, or sooner when the operation the
    calling thread runs (:meth:`operation`) ends sooner.
    """

    def __init__(self, settings):
        self.settings = settings
        # The deadline and retry policy of the operation each thread runs.
        self._operation = threading.local()

    @contextlib.contextmanager
    def operation(self, timeout=None, retries=True):
        """Bound every REST call this thread makes inside the block.

        All calls, their retries and waits included, end within
        ``timeout`` seconds (default: ``operation_timeout``) from the
        start of the block, or of an enclosing block when that ends
        sooner. ``retries=False`` tries each call once.
        """
        state = self._operation
        saved = (getattr(state, 'deadline', None),
                 getattr(state, 'retries', True))
        if timeout is None:
            timeout = self.settings.operation_timeout
        deadline = time.monotonic() + timeout
        if saved[0] is not None:
            deadline = min(deadline, saved[0])
        state.deadline, state.retries = deadline, retries and saved[1]
        try:
            yield
        finally:
            state.deadline, state.retries = saved

    def deadline(self, timeout):
        """``timeout`` seconds from now, or the operation's end if sooner."""
        deadline = time.monotonic() + timeout
        outer = getattr(self._operation, 'deadline', None)
        if outer is not None:
            deadline = min(deadline, outer)
        return deadline

    def call(self, conn, fn, *args, retriable=RETRIABLE, **kwargs):
        """Call ``fn`` with bounded retries of transient failures.

        The first retry follows ``retry_interval`` seconds after the
        first failure, each later one twice the previous wait after the
        last; there are at most ``retry_attempts`` of them, none that
        would start past the deadline. The last failure is raised as is.
        """
        s = self.settings
        deadline = self.deadline(s.operation_timeout)
        attempts = (s.retry_attempts
                    if getattr(self._operation, 'retries', True) else 0)
        retrying = _retrying(retriable, attempts, s.retry_interval, deadline)
        # Each request's timeout shrinks to the time left.
        conn.set_deadline(deadline)
        try:
            return retrying(fn, *args, **kwargs)
        finally:
            conn.set_deadline(None)

    def poll(self, check, timeout, timed_out):
        """Call ``check`` until it returns true, backing off.

        Gives up after ``timeout`` seconds, or when the enclosing
        :meth:`operation` ends, raising what ``timed_out()`` returns.
        What ``check`` raises is raised at once.
        """
        deadline = self.deadline(timeout)
        backoff = tenacity.wait_exponential(multiplier=_POLL_FIRST_WAIT,
                                            max=_POLL_MAX_WAIT)

        def pause(retry_state):
            # Never sleep past the deadline: wake up for a last look.
            return min(backoff(retry_state),
                       max(0.0, deadline - time.monotonic()))

        def give_up(retry_state):
            raise timed_out()

        tenacity.Retrying(
            retry=tenacity.retry_if_result(operator.not_),
            wait=pause,
            stop=lambda retry_state: time.monotonic() >= deadline,
            retry_error_callback=give_up)(check)


def _retrying(retriable, attempts, interval, deadline):
    """The tenacity policy of one REST call (see :meth:`Retrier.call`)."""
    backoff = tenacity.wait_exponential(multiplier=interval)

    def next_try_too_late(retry_state):
        return time.monotonic() + backoff(retry_state) >= deadline

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            functools.partial(_transient, retriable)),
        wait=backoff,
        stop=tenacity.stop_any(tenacity.stop_after_attempt(attempts + 1),
                               next_try_too_late),
        before_sleep=functools.partial(_log_retry, attempts),
        reraise=True)


def _transient(retriable, e):
    # A certificate that does not verify will not verify on a retry.
    return (isinstance(e, retriable) and
            not isinstance(e, connection.TlsVerifyError))


def _log_retry(attempts, retry_state):
    LOG.warning('Datera API call failed (%(e)s); retry %(n)d of %(max)d '
                'in %(wait).1fs',
                {'e': errors.api_message(retry_state.outcome.exception()),
                 'n': retry_state.attempt_number, 'max': attempts,
                 'wait': retry_state.next_action.sleep})
