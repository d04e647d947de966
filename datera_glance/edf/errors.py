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

"""SDK errors, translated to glance_store exceptions at the boundary.

A configuration problem becomes BadStoreConfiguration naming the option
to fix; an outage at start-up becomes ClusterUnreachable; anything else
an operation meets becomes NotFound, StorageFull or BackendException
naming the image and what could not be done to it.
"""

import re

from glance_store import exceptions

from datera_glance.edf import connection
from datera_glance.i18n import _
from datera_glance.sdk_compat import dfs_sdk

sdk_exc = dfs_sdk.exceptions

STORE_NAME = 'datera'

# The option names users set, so that configuration errors point at them.
OPT_SAN_IP = 'datera_san_ip'
OPT_SAN_PORT = 'datera_san_port'
OPT_LOGIN = 'datera_san_login'
OPT_PASSWORD = 'datera_san_password'
OPT_LDAP = 'datera_ldap_server'
OPT_CA_FILE = 'datera_ca_certificates_file'
OPT_INSECURE = 'datera_api_insecure'
OPT_API_VERSION = 'datera_api_version'
OPT_TENANT = 'datera_tenant_id'

# How the cluster words a refusal of a create or grow for lack of room
# (422 "Insufficient capacity: ..."); other answers are not StorageFull.
_CAPACITY_RE = re.compile(
    r'\b(insufficient|not enough|out of)\s+(capacity|space)\b', re.I)
# What an HTTPS handshake with a plain-HTTP port looks like (the wording
# depends on the OpenSSL and Python builds: Debian's Python 3.11 reports
# the HTTP server's close as SSLZeroReturnError).
_PLAIN_HTTP_RE = re.compile(
    r'WRONG_VERSION_NUMBER|wrong version number|UNEXPECTED_EOF|'
    r'record layer failure|http request|'
    r'TLS/SSL connection has been closed \(EOF\)', re.I)


class ClusterUnreachable(exceptions.BackendException):
    """The cluster did not answer: an outage, not a configuration error."""


def api_message(e):
    """The server's message of an SDK error, else a short description."""
    message = getattr(e, 'message', None)
    if isinstance(message, str) and message:
        return message
    if e.args and not isinstance(e.args[0], str):
        return str(e.args[0])
    return str(e).split('\n')[0]


def _where(settings):
    return '%s:%s' % (settings.san_ip, settings.san_port)


def config_error(option, reason):
    """BadStoreConfiguration: ``reason``, and which option to check."""
    return exceptions.BadStoreConfiguration(
        store_name=STORE_NAME,
        reason=_('%(reason)s (check %(option)s)') % {'reason': reason,
                                                     'option': option})


def login_refused(settings, e):
    """A served API version refused the login request itself (422)."""
    return config_error('%s, %s' % (OPT_LOGIN, OPT_LDAP), _(
        'the Datera cluster at %(ip)s refused the login request of user '
        '%(user)s: %(e)s') % {'ip': settings.san_ip,
                              'user': settings.login, 'e': api_message(e)})


def login_error(settings, e):
    """What a failed login (SDK error ``e``) tells the operator."""
    where = _where(settings)
    if isinstance(e, connection.TlsVerifyError):
        return _tls_error(settings, e)
    if isinstance(e, sdk_exc.ApiAuthError):
        option = '%s, %s' % (OPT_LOGIN, OPT_PASSWORD)
        if settings.ldap_server:
            option += ', ' + OPT_LDAP
        return config_error(option, _(
            'the Datera cluster at %(where)s refused the login of user '
            '%(user)s') % {'where': where, 'user': settings.login})
    if isinstance(e, (sdk_exc.ApiConnectionError,
                      sdk_exc.Api503RetryError,
                      sdk_exc.ApiInternalError)):
        return unreachable(settings, e)
    return config_error(
        '%s, %s' % (OPT_SAN_IP, OPT_SAN_PORT),
        _('logging in to the Datera cluster at %(where)s failed: '
          '%(e)s') % {'where': where, 'e': api_message(e)})


def _tls_error(settings, e):
    where = _where(settings)
    if _PLAIN_HTTP_RE.search(str(e)):
        return config_error(OPT_SAN_PORT, _(
            'the Datera cluster at %(where)s does not speak HTTPS on '
            'this port (%(e)s); datera_san_port = %(http)d means plain '
            'HTTP, any other port HTTPS') % {
                'where': where, 'e': api_message(e),
                'http': connection.HTTP_PORT})
    option = OPT_CA_FILE if settings.ca_file else '%s or %s' % (
        OPT_CA_FILE, OPT_INSECURE)
    return config_error(option, _(
        'the TLS certificate of the Datera cluster at %(where)s '
        'could not be verified: %(e)s') % {'where': where,
                                           'e': api_message(e)})


def unreachable(settings, e):
    """ClusterUnreachable, naming the options that say where it is."""
    return ClusterUnreachable(_(
        'The Datera cluster at %(where)s did not answer (%(e)s); check '
        'that it runs and that %(ip)s and %(port)s name it') % {
            'where': _where(settings), 'e': api_message(e),
            'ip': OPT_SAN_IP, 'port': OPT_SAN_PORT})


def tenant_error(tenant, e):
    """The tenant could not be created (other than for an outage)."""
    return config_error(OPT_TENANT, _(
        'could not create the Datera tenant %(t)s: %(e)s') % {
            't': tenant, 'e': api_message(e)})


def image_not_found(image_id, tenant):
    return exceptions.NotFound(_(
        'Image %(image)s not found: no Datera app instance %(image)s in '
        'tenant %(tenant)s') % {'image': image_id, 'tenant': tenant})


def not_finished(what, image_id, timeout):
    """The cluster did not finish ``what`` within ``timeout`` seconds."""
    return exceptions.BackendException(
        _('Could not %(what)s for image %(image)s: the Datera '
          'cluster did not finish within %(t)ss') % {
            'what': what, 'image': image_id, 't': timeout})


def translate(settings, what, image_id, e, capacity=False):
    """The glance_store exception for SDK error ``e`` of an operation.

    :param capacity: whether the cluster may refuse the operation for
        lack of room (a create or a grow): only then is an answer saying
        so StorageFull
    """
    message = api_message(e)
    if (capacity and isinstance(e, sdk_exc.ApiValidationFailedError) and
            _CAPACITY_RE.search(message)):
        return exceptions.StorageFull(message=_(
            'The Datera cluster has no room to %(what)s for image '
            '%(image)s: %(e)s') % {'what': what, 'image': image_id,
                                   'e': message})
    if isinstance(e, sdk_exc.ApiAuthError):
        return exceptions.BackendException(_(
            'Logging in to the Datera cluster at %(ip)s:%(port)s failed '
            '(check %(l)s and %(p)s), so could not %(what)s for image '
            '%(image)s: %(e)s') % {
                'ip': settings.san_ip, 'port': settings.san_port,
                'l': OPT_LOGIN, 'p': OPT_PASSWORD, 'what': what,
                'image': image_id, 'e': message})
    return exceptions.BackendException(
        _('Could not %(what)s for image %(image)s: %(reason)s '
          '(%(e)s)') % {'what': what, 'image': image_id,
                        'reason': _reason(settings, e), 'e': message})


def _reason(settings, e):
    """Why an operation failed, in the operator's words."""
    if isinstance(e, connection.TlsVerifyError):
        return _('TLS verification of the Datera cluster failed; '
                 'check %s') % OPT_CA_FILE
    if isinstance(e, sdk_exc.ApiConnectionError):
        return _('the Datera cluster at %(ip)s:%(port)s did not '
                 'answer in time') % {'ip': settings.san_ip,
                                      'port': settings.san_port}
    if isinstance(e, sdk_exc.Api503RetryError):
        return _('the Datera cluster stayed busy')
    return _('the Datera API refused it')
