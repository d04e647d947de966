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

"""The errors the simulated cluster answers with.

Each class carries its HTTP status and the error name a Datera cluster
gives it, and :meth:`ApiError.body` the fields every error answer holds::

    {"name": "NotFoundError", "code": 404, "http": 404, "message": ...}

The model raises them (it knows nothing of HTTP otherwise), the REST
layer raises them for what it refuses itself (malformed JSON, bodies the
schema rejects), and :func:`datera_edf_sim.responses.error_response` is
the one place that turns them into answers; the admin API
(:mod:`datera_edf_sim.admin`) answers them with their status too.

This module imports nothing, so the model stays free of the web
framework.
"""


class ApiError(Exception):
    """Base class of the errors the simulator answers with.

    Raised as such, it is an internal error.
    """

    #: HTTP status of the answer.
    status = 500
    #: The error's name in the answer, as the cluster names it.
    name = 'InternalError'

    def __init__(self, message):
        super(ApiError, self).__init__(message)
        self.message = message

    def body(self):
        """The error fields of the answer."""
        return {
            'name': self.name,
            'code': self.status,
            'http': self.status,
            'message': self.message,
        }


class BadRequest(ApiError):
    """The request cannot be understood (malformed JSON, unknown filter)."""

    status = 400
    name = 'InvalidRequestError'


class AuthError(ApiError):
    """Wrong credentials, or a missing, unknown or expired key."""

    status = 401
    name = 'AuthFailedError'


class NotFound(ApiError, LookupError):
    """The addressed entity does not exist (in the caller's tenant)."""

    status = 404
    name = 'NotFoundError'


class NoData(NotFound):
    """A sub-collection was listed under a parent that does not exist.

    Its message starts with ``No data at``: dfs_sdk's ``list()`` turns
    such an answer into an empty list.
    """

    def __init__(self, path):
        super(NoData, self).__init__('No data at %s' % path)


class MethodNotAllowed(ApiError):
    """The path exists, but not with this method."""

    status = 405
    name = 'InvalidRequestError'


class Conflict(ApiError):
    """The request conflicts with the current state (duplicate, in use)."""

    status = 409
    name = 'ConflictError'


class Invalid(ApiError):
    """The request is well formed but its values cannot be applied.

    Also a body or query the API's schema refuses.
    """

    status = 422
    name = 'ValidationFailedError'


class InsufficientCapacity(Invalid):
    """A create or grow would exceed the cluster's capacity."""


class InternalError(ApiError):
    """Something failed inside the simulator."""


class ServiceUnavailable(ApiError):
    """The cluster is busy; clients (dfs_sdk) back off and retry."""

    status = 503
    name = 'ServiceUnavailableError'


class NoModel(ApiError):
    """The admin API has no model behind it to call."""

    status = 501


class HttpError(ApiError):
    """A status the web framework answers with, of no class above (413)."""

    name = 'ApiError'

    def __init__(self, status, message):
        super(HttpError, self).__init__(message)
        self.status = status


# The class of each status the REST API answers with on its own.
_BY_STATUS = {cls.status: cls for cls in (
    BadRequest, AuthError, NotFound, MethodNotAllowed, Conflict, Invalid,
    InternalError)}


def for_status(status, message):
    """The error answering ``status`` with ``message``."""
    if status in _BY_STATUS:
        return _BY_STATUS[status](message)
    return HttpError(status, message)
