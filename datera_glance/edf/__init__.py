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

"""The Datera EDF REST API, as the store needs it.

This is the only package that talks to Datera's Python SDK (dfs_sdk). It
keeps the SDK's process-wide side effects away (logging configuration,
the shared schema cache in /tmp, unverified TLS, five-minute retry loops)
and translates every SDK error to a glance_store exception here, at the
boundary, so that the rest of the driver speaks one vocabulary.

One module per job:

- :mod:`.connection`: the SDK adapter (dfs_sdk's connection, fixed for
  use inside glance-api);
- :mod:`.errors`: SDK errors translated to glance_store exceptions;
- :mod:`.retries`: bounded retries and waits (tenacity);
- :mod:`.client`: the REST calls, :class:`EdfClient`.

The rest of the driver uses the names below, as ``edf.EdfClient`` etc.
"""

from datera_glance.edf import client
from datera_glance.edf import connection
from datera_glance.edf import errors

AI_NAME_PREFIX = client.AI_NAME_PREFIX
SI_NAME = client.SI_NAME
VOLUME_NAME = client.VOLUME_NAME
EdfClient = client.EdfClient
EdfSettings = client.EdfSettings
ai_name = client.ai_name
tenant_path = client.tenant_path

DRIVER_HEADER = connection.DRIVER_HEADER
HTTP_PORT = connection.HTTP_PORT
ROOT_TENANT = connection.ROOT_TENANT
TlsVerifyError = connection.TlsVerifyError
# Not part of the API: its tests reach it here, where it used to live.
_private_dir = connection._private_dir

STORE_NAME = errors.STORE_NAME
OPT_SAN_IP = errors.OPT_SAN_IP
OPT_SAN_PORT = errors.OPT_SAN_PORT
OPT_LOGIN = errors.OPT_LOGIN
OPT_PASSWORD = errors.OPT_PASSWORD
OPT_LDAP = errors.OPT_LDAP
OPT_CA_FILE = errors.OPT_CA_FILE
OPT_INSECURE = errors.OPT_INSECURE
OPT_API_VERSION = errors.OPT_API_VERSION
OPT_TENANT = errors.OPT_TENANT
ClusterUnreachable = errors.ClusterUnreachable
