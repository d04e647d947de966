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

"""Configuration options of the Datera glance store.

The first fourteen options keep the names, types and meanings of the
original Datera glance driver (2019.4.16.1) so that an existing
``glance-api.conf`` keeps working unchanged. Two deliberate differences:

* ``datera_san_ip``, ``datera_san_login`` and ``datera_san_password`` are
  not declared ``required`` to oslo.config: glance registers the options of
  every installed store, so a required option would stop glance-api from
  starting on hosts that do not use this store at all. The store checks
  them itself in ``configure_add`` and disables writes with an error naming
  the missing option instead.
* ``datera_chunk_size`` defaults to 8 MiB instead of 1 GiB; see its help.

The options are read in ``[glance_store]`` (single store) or in the
backend's own group (``enabled_backends = <name>:datera``).
"""

import math
import os
import re

from oslo_config import cfg
from oslo_utils import units

STORE_NAME = 'datera'

DEFAULT_CHUNK_SIZE = 8 * units.Mi

_DATERA_OPTS = [
    cfg.StrOpt('datera_san_ip',
               help="""
Hostname or IP address of the Datera EDF management interface.

REQUIRED. The store sends every REST API call to this address. It
is also written into the location URI of every image the store
creates
(``datera://<datera_san_ip>:<datera_san_port>/app_instances/...``);
reads and deletes always go to the address configured here, so the
URIs of existing images stay valid when the management address
changes.

Possible values:
    * A hostname, an IPv4 address or an IPv6 address

Related options:
    * datera_san_port
    * datera_san_login
    * datera_san_password

"""),
    cfg.StrOpt('datera_san_login',
               help="""
User name of the Datera EDF account the store logs in with.

REQUIRED. The account needs the right to create, export and delete
app instances and to create initiators in the tenant named by
``datera_tenant_id``.

Possible values:
    * A Datera EDF user name (local, or LDAP with ``datera_ldap_server``)

Related options:
    * datera_san_password
    * datera_ldap_server

"""),
    cfg.StrOpt('datera_san_password',
               secret=True,
               help="""
Password of the Datera EDF account named by ``datera_san_login``.

REQUIRED. It is never logged.

Possible values:
    * The account's password

Related options:
    * datera_san_login

"""),
    cfg.PortOpt('datera_san_port',
                default=7718,
                help="""
TCP port of the Datera EDF REST API.

7718 is the HTTPS port and the default. 7717 is the plain-HTTP
port: with it the store talks HTTP, so credentials and auth tokens
cross the network unencrypted; use it only on an isolated
management network. Any other port is spoken to over HTTPS.

Possible values:
    * 7718 (HTTPS, the default)
    * 7717 (plain HTTP)
    * Any other valid port number, spoken to over HTTPS

Related options:
    * datera_san_ip
    * datera_ca_certificates_file
    * datera_api_insecure

"""),
    cfg.StrOpt('datera_tenant_id',
               default='/root',
               help="""
Datera tenant under which image volumes are created.

Every app instance the store creates lives in this tenant;
resources of other tenants are invisible to it. A tenant other
than ``/root`` is created on first use when it does not exist.

Possible values:
    * ``/root`` (the default)
    * ``/root/<name>`` or ``<name>``: the child tenant ``<name>`` of /root

Related options:
    * datera_api_version (tenant-scoped initiators need API 2.2)

"""),
    cfg.IntOpt('datera_replica_count',
               default=3,
               help="""
Number of replicas of each image volume.

Possible values:
    * An integer from 1 to 5 (the Datera API's range), no larger than
      the number of storage nodes

Related options:
    * datera_placement_mode

"""),
    cfg.StrOpt('datera_placement_mode',
               default='hybrid',
               choices=[
                   ('single_flash', 'one replica on flash, the others on '
                                    'any media'),
                   ('all_flash', 'every replica on flash'),
                   ('hybrid', 'replicas placed on any media'),
               ],
               help="""
Media placement of the replicas of each image volume.

Possible values:
    * single_flash
    * all_flash
    * hybrid (the default)

Related options:
    * datera_replica_count

"""),
    cfg.IntOpt('datera_chunk_size',
               default=DEFAULT_CHUNK_SIZE,
               min=1,
               help="""
Size, in bytes, of the buffers used to read and write image data.

Each upload holds up to five buffers of this size in memory and
each download up to six. The original driver defaulted to 1 GiB,
which made every concurrent transfer hold gigabytes of memory; the
default is now 8 MiB (8388608), on the plateau of ``make bench``'s
chunk-size sweep. Raise it only after measuring.

It is also the unit of the digests an upload records (one per
buffer; images of more than 4096 buffers keep only their md5), which
downloads check in parallel. A multiple of 4096 lets uploads write
around the page cache (O_DIRECT); other sizes write through it.

Possible values:
    * A positive integer, in bytes, up to 1073741824 (1 GiB)

Related options:
    * datera_thin_provisioning (zero detection works per buffer)

"""),
    cfg.StrOpt('datera_glance_rootwrap_path',
               default='sudo glance-rootwrap',
               help="""
Command, with any leading environment, that runs glance-rootwrap.

Together with ``datera_glance_rootwrap_config`` it forms the root
helper that starts the privileged helpers (oslo.privsep) of os-brick
and of this store, for the iSCSI attach, grow and detach steps.

The default fits glance from distribution packages. With glance in a
virtualenv, name glance-rootwrap by its full path, the same path as in
the sudoers rule (sudo's ``secure_path`` does not search the
virtualenv). A glance-api that runs as root without sudo (a container)
names glance-rootwrap alone, without ``sudo``.

Possible values:
    * A command line, for example ``sudo glance-rootwrap``,
      ``sudo /opt/glance/bin/glance-rootwrap`` or
      ``/opt/glance/bin/glance-rootwrap``

Related options:
    * datera_glance_rootwrap_config

"""),
    cfg.StrOpt('datera_glance_rootwrap_config',
               default='/etc/glance/rootwrap.conf',
               help="""
Path of the rootwrap configuration passed to glance-rootwrap.

Its ``filters_path`` must include the folder holding the
``datera.filters`` file installed with this driver, and its
``exec_dirs`` the folder of ``privsep-helper`` (the virtualenv's
``bin`` when glance runs from one). A pip install puts glance's own
copy under ``<prefix>/etc/glance/``, not under ``/etc/glance``.

Possible values:
    * A path to a rootwrap configuration file

Related options:
    * datera_glance_rootwrap_path

"""),
    cfg.IntOpt('datera_default_image_size',
               default=1,
               min=1,
               help="""
Initial size, in GiB, of the volume of an image uploaded without a
size.

When glance does not know an image's size in advance, the store
creates a volume of this size and grows it while the data arrives,
doubling the growth step each time (at most 8 GiB per step), so a
large image needs only a handful of grows. Set it near the size of
a typical image to avoid growing at all.

Possible values:
    * A positive integer, in GiB

Related options:
    * None

"""),
    cfg.IntOpt('datera_retry_attempts',
               default=5,
               min=0,
               help="""
Number of times a REST API call is retried after a retryable
failure.

Retryable failures are 503 answers, 500 answers saying the REST
server is still initialising, dropped connections and timeouts.

Possible values:
    * 0 (never retry) or a positive integer

Related options:
    * datera_retry_interval
    * datera_operation_max_timeout

"""),
    cfg.FloatOpt('datera_retry_interval',
                 default=1.0,
                 help="""
Seconds to wait before the first retry of a REST API call.

Each further retry waits twice as long as the one before, within
``datera_operation_max_timeout``.

Possible values:
    * A non-negative number of seconds

Related options:
    * datera_retry_attempts
    * datera_operation_max_timeout

"""),
    cfg.FloatOpt('datera_operation_max_timeout',
                 default=20.0,
                 help="""
Upper bound, in seconds, on each wait of a store call for the
Datera cluster, its retries included.

A download or a size query spends at most this long on the cluster
before its data flows, a delete at most this long in all. An upload
spends at most this long creating its volume, again attaching it,
and again on each grow and on its final bookkeeping; releasing a
volume after a transfer has its own bound of the same length. Keep
it below the request timeout of the WSGI server that runs glance-api
(gunicorn's default ``timeout`` is 30 seconds; uWSGI's ``harakiri``
is often 60), so that a slow cluster gives a clear error instead of
a killed worker. Raise it together with that timeout for a cluster
that is slow to export volumes.

At glance-api start-up the store checks the cluster once, for at
most 5 seconds (or this value, if smaller), and never disables
itself because the cluster did not answer.

Possible values:
    * A number of seconds from 1 to 3600

Related options:
    * datera_retry_attempts
    * datera_retry_interval

"""),
    cfg.StrOpt('datera_api_version',
               default='auto',
               choices=[
                   ('auto', 'use the newest version the cluster offers'),
                   ('2.2', 'REST API v2.2'),
                   ('2.1', 'REST API v2.1'),
               ],
               help="""
Version of the Datera EDF REST API to use.

``auto`` asks the cluster and uses the newest version both sides
support. Pin a version only to work around a cluster problem.

Possible values:
    * auto (the default)
    * 2.2
    * 2.1

Related options:
    * datera_tenant_id

"""),
    cfg.StrOpt('datera_ldap_server',
               help="""
Name of the LDAP server configured on the cluster that
authenticates ``datera_san_login``.

Leave unset for a local Datera account.

Possible values:
    * The name of an LDAP server known to the Datera cluster

Related options:
    * datera_san_login

"""),
    cfg.StrOpt('datera_ca_certificates_file',
               help="""
Path of a CA bundle used to verify the Datera cluster's TLS
certificate.

When unset, the system's CA bundle is used.

Possible values:
    * A path to a PEM file of CA certificates

Related options:
    * datera_api_insecure
    * datera_san_port

"""),
    cfg.BoolOpt('datera_api_insecure',
                default=False,
                help="""
Skip verification of the Datera cluster's TLS certificate.

The default verifies the certificate. Turning verification off
lets anyone on the path between glance and the cluster read the
credentials and the API traffic; use it only for testing.

Possible values:
    * False (verify; the default)
    * True (do not verify)

Related options:
    * datera_ca_certificates_file

"""),
    cfg.BoolOpt('datera_use_multipath',
                default=False,
                help="""
Attach image volumes through every iSCSI portal with multipath.

Requires multipathd on the glance-api host.

Possible values:
    * False (a single portal; the default)
    * True

Related options:
    * datera_transport

"""),
    cfg.BoolOpt('datera_thin_provisioning',
                default=False,
                help="""
Create thin-provisioned volumes and do not write all-zero data.

A new Datera volume reads as zeros, so buffers that contain only
zero bytes are counted in the checksums but not written, which
saves space on the cluster and time on the network for sparse
images (raw disks, mostly empty file systems).

Possible values:
    * False (write every byte; the default)
    * True

Related options:
    * datera_chunk_size

"""),
    cfg.StrOpt('datera_transport',
               default='iscsi',
               choices=[
                   ('iscsi', 'attach volumes with os-brick\'s iSCSI '
                             'connector'),
                   ('local', 'use the device that the Datera EDF simulator '
                             'exports under datera_local_export_dir'),
               ],
               help="""
How the glance-api host attaches image volumes to read and write
them.

``iscsi`` is the production transport. ``local`` resolves the
by-path link that the Datera EDF simulator exports for this host
under ``datera_local_export_dir``, the way the iSCSI connector
finds its device under /dev/disk/by-path; it exists for
development and testing.

Possible values:
    * iscsi (the default)
    * local

Related options:
    * datera_local_export_dir
    * datera_use_multipath
    * datera_initiator_name

"""),
    cfg.StrOpt('datera_local_export_dir',
               help="""
Directory in which the simulator exports volumes (``local``
transport).

Possible values:
    * The ``export_dir`` of a running Datera EDF simulator

Related options:
    * datera_transport

"""),
    cfg.StrOpt('datera_initiator_name',
               help="""
Initiator name (IQN) this host presents with the ``local`` transport.

Only for ``datera_transport = local`` (the EDF simulator), where it
lets several glance-api "hosts" run on one machine; unset, a stable
name derived from the host name is used. Under ``iscsi`` the login
always presents the host's own initiator name (InitiatorName in
/etc/iscsi/initiatorname.iscsi, read through os-brick), so setting
this option there is refused at start-up, as is a host that has no
initiator name.

Possible values:
    * An iSCSI name (RFC 3720), for example
      ``iqn.1993-08.org.debian:01:glance1``; ``eui.`` and ``naa.``
      names are accepted too. No whitespace and no ``/``.

Related options:
    * datera_transport

"""),
]

OPTIONS = _DATERA_OPTS

# RFC 3720 names: iqn.<yyyy-mm>.<reversed domain>[:<anything>], or the
# eui./naa. hexadecimal forms; never whitespace or a '/', which ends up in
# URL paths (/initiators/<name>) and in export folder names.
_IQN_RE = re.compile(r'(?:iqn\.\d{4}-\d{2}\.[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?'
                     r'(?::[^\s/]+)?|eui\.[0-9A-Fa-f]{16}|'
                     r'naa\.[0-9A-Fa-f]{16}(?:[0-9A-Fa-f]{16})?)')
REPLICA_RANGE = (1, 5)          # the API's bounds for replica_count
MAX_TIMEOUT = 3600.0
MAX_CHUNK_SIZE = units.Gi       # the original driver's default


def check(conf):
    """Check the values oslo.config's own types do not check.

    Ranges are checked here rather than by oslo.config so that the
    message says the value as well as the option.

    :param conf: the group holding the options
    :raises ValueError: naming the option and its value, for the first
        value the store cannot use
    """
    def refuse(name, reason):
        raise ValueError('%s = %r: %s' % (name, getattr(conf, name), reason))

    if not 1 <= conf.datera_san_port <= 65535:
        refuse('datera_san_port', 'must be a TCP port from 1 to 65535')
    if conf.datera_chunk_size > MAX_CHUNK_SIZE:
        refuse('datera_chunk_size', 'at most %d (1 GiB): each transfer '
               'holds one buffer of this size in memory' % MAX_CHUNK_SIZE)
    low, high = REPLICA_RANGE
    if not low <= conf.datera_replica_count <= high:
        refuse('datera_replica_count', 'the Datera API accepts %d to %d'
               % (low, high))
    timeout = conf.datera_operation_max_timeout
    if not math.isfinite(timeout) or not 1 <= timeout <= MAX_TIMEOUT:
        refuse('datera_operation_max_timeout',
               'must be a number of seconds from 1 to %d' % MAX_TIMEOUT)
    interval = conf.datera_retry_interval
    if not math.isfinite(interval) or not 0 <= interval <= timeout:
        refuse('datera_retry_interval', 'must be a number of seconds '
               'from 0 to datera_operation_max_timeout')
    name = conf.datera_initiator_name
    if name is not None and not _IQN_RE.fullmatch(name):
        refuse('datera_initiator_name', 'not an iSCSI name (iqn.yyyy-mm.'
               'reversed.domain[:id], eui.<16 hex> or naa.<hex>)')
    if conf.datera_transport == 'local':
        folder = conf.datera_local_export_dir
        if folder and not os.path.isdir(folder):
            refuse('datera_local_export_dir', 'no such folder')
    ca_file = conf.datera_ca_certificates_file
    if ca_file and not os.access(ca_file, os.R_OK):
        refuse('datera_ca_certificates_file',
               'no such file, or not readable by this user')


def list_opts():
    """The store's options, for oslo-config-generator.

    They are listed under ``[glance_store]``, where a single-store
    deployment sets them; a multi-store deployment sets the same options
    in each Datera backend's own group.
    """
    return [('glance_store', list(OPTIONS))]


def allow_default_store():
    """Accept ``[glance_store] default_store = datera``.

    glance_store's deprecated ``default_store`` option has a fixed list of
    choices, which the original driver's install guide patched by hand.
    Adding this store's scheme to the option's choices when the driver
    loads makes the legacy single-store configuration work unchanged.
    glance loads the store drivers before it first reads the option.
    Safe to call any number of times.
    """
    from glance_store import backend

    for opt in backend._STORE_OPTS:
        if opt.name != 'default_store':
            continue
        choices = opt.type.choices
        if choices is not None and STORE_NAME not in choices:
            choices[STORE_NAME] = None
            lower = getattr(opt.type, 'lower_case_choices', None)
            if lower is not None:
                lower.append(STORE_NAME)
