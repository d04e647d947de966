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

"""The simulator's defaults, in one place.

The command line (:mod:`cli`), the server (:mod:`server`), the REST
application (:func:`app.create_app`), the model (:class:`models.Model`),
the fault injector and the test fixture all start from these values;
each can be overridden where it is taken (``datera-edf-sim serve
--key-ttl 60``, ``Model(..., key_ttl=60)``...).
"""

# Where the simulator listens: the cluster's REST ports.
#: HTTPS port.
PORT = 7718
#: Plain HTTP port.
HTTP_PORT = 7717
#: Address both servers listen on.
BIND = '127.0.0.1'

# The cluster.
#: The one account every login is checked against.
USERNAME = 'admin'
PASSWORD = 'password'
#: ``sw_version`` of ``/system`` and the storage nodes.
SW_VERSION = '3.3.5.0'
#: ``name`` of ``/system``.
SYSTEM_NAME = 'datera-edf-sim'
#: Seconds a session key lives (None: for ever).
KEY_TTL = 3600.0
#: Seconds a grown volume stays ``resizing``.
RESIZE_SECONDS = 1.0
#: Seconds a new volume snapshot stays ``creating``.
SNAPSHOT_SECONDS = 0.5
#: The iSCSI portal IPs storage instances report.
DATA_IPS = ('127.0.0.1', '127.0.0.2')
#: The tenant of requests without a tenant header, and of admin calls
#: that name none.
ROOT_TENANT = '/root'

# Fault injection.
#: How many requests the request log keeps (oldest dropped).
REQUEST_LOG_SIZE = 100000
