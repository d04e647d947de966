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

"""State and rules of the simulated Datera EDF cluster.

The model is the control plane: tenants, sessions, app instances with
their storage instances, volumes and volume snapshots, ACLs, initiators,
initiator groups and app instance metadata. It keeps everything in SQLite
inside the data directory, so a new model over the same directory sees
everything an earlier one stored, and several threads (or processes) may
use one data directory at once.

It knows nothing of HTTP: callers pass plain values, get plain
dictionaries shaped like the REST API's entities back, and see failures
as the errors of :mod:`datera_edf_sim.exceptions` (also named here:
``models.NotFound``...). Whatever must happen to volume files and
exports is delegated to an injected data plane object with this
interface::

    create_volume(volume_uuid, size_gib)
    clone_volume(volume_uuid, source_volume_uuid)
    grow_volume(volume_uuid, size_gib)
    delete_volume(volume_uuid)
    create_snapshot(snapshot_id, volume_uuid)
    clone_snapshot(volume_uuid, snapshot_id)
    delete_snapshot(snapshot_id)
    sync_exports(si_uuid, target_iqn, ips, volume_uuid, initiator_iqns)
    exported_initiators(si_uuid) -> set of IQNs

Entity paths never carry the API version (``/app_instances/<id>``), and
tenants are named by their path (``/root``, ``/root/<name>``).

:class:`Model` is made of one part per resource, each a mixin in its own
module, over :class:`core.ModelCore` (settings, database, lock):

=================  ====================================================
``sessions``       login keys and their expiry
``system``         ``/system``, the storage node, capacity, snapshot
``tenants``        tenants
``app_instances``  app instances and their stored form
``storage``        storage instances and volumes
``clones``         app instances created as copies
``snapshots``      volume snapshots
``acl``            ACL policies, and the exports that follow them
``initiators``     initiators and initiator groups
``metadata``       app instance metadata
``listing``        filtering, sorting and paging of lists
=================  ====================================================

The parts call one another through ``self`` (an app instance create
checks ACL references and capacity, renders its storage instances...);
what each offers the others is named with a leading underscore.
"""

from datera_edf_sim import defaults
from datera_edf_sim import exceptions
from datera_edf_sim.models import acl
from datera_edf_sim.models import app_instances
from datera_edf_sim.models import clones
from datera_edf_sim.models import core
from datera_edf_sim.models import initiators
from datera_edf_sim.models import listing
from datera_edf_sim.models import metadata
from datera_edf_sim.models import sessions
from datera_edf_sim.models import snapshots
from datera_edf_sim.models import storage
from datera_edf_sim.models import system
from datera_edf_sim.models import tenants

# The names the model's users know it by.
ROOT_TENANT = defaults.ROOT_TENANT
DB_NAME = core.DB_NAME
EXPIRED_KEY_MESSAGE = sessions.EXPIRED_KEY_MESSAGE
INSUFFICIENT_CAPACITY_MESSAGE = system.INSUFFICIENT_CAPACITY_MESSAGE
IQN_PREFIX = storage.IQN_PREFIX
DEFAULT_LIST_LIMIT = listing.DEFAULT_LIST_LIMIT
MAX_LIST_LIMIT = listing.MAX_LIST_LIMIT
CLONE_SOURCES = clones.CLONE_SOURCES
CLONE_SI_NAME = clones.CLONE_SI_NAME
CLONE_VOLUME_NAME = clones.CLONE_VOLUME_NAME
SNAPSHOT_CREATING = snapshots.SNAPSHOT_CREATING
SNAPSHOT_AVAILABLE = snapshots.SNAPSHOT_AVAILABLE

tenant_name = tenants.tenant_name
normalize_tenant = tenants.normalize_tenant
compile_filter = listing.compile_filter
query = listing.query
whole_gib = storage.whole_gib

# The errors the model raises.
ModelError = exceptions.ApiError
NotFound = exceptions.NotFound
NoData = exceptions.NoData
Conflict = exceptions.Conflict
Invalid = exceptions.Invalid
InsufficientCapacity = exceptions.InsufficientCapacity
AuthError = exceptions.AuthError
BadRequest = exceptions.BadRequest


class Model(sessions.SessionsMixin,
            system.SystemMixin,
            tenants.TenantsMixin,
            app_instances.AppInstancesMixin,
            storage.StorageMixin,
            clones.ClonesMixin,
            snapshots.SnapshotsMixin,
            acl.AclMixin,
            initiators.InitiatorsMixin,
            metadata.MetadataMixin,
            core.ModelCore):
    """The simulated cluster's control plane, persisted in SQLite.

    :param data_dir: folder holding the database (created if missing).
    :param dataplane: the data plane object (see the module docstring);
        without one, exports are only remembered in memory.
    :param clock: a ``time.time``-like callable, replaceable in tests.
    :param resize_seconds: how long a grown volume stays ``resizing``.
    :param snapshot_seconds: how long a new volume snapshot stays
        ``creating`` before it is ``available`` (its bytes are frozen at
        once; clients still have to wait, as on a cluster).

    Every change runs in one SQLite write transaction (``BEGIN
    IMMEDIATE``) under a model-wide lock, and the data plane is called
    inside it, so read-modify-write operations (atomic ACL edits,
    metadata merges) never lose updates and the exports always follow the
    committed state in order.
    """
