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

"""Volume snapshots: frozen copies of a volume's bytes.

A snapshot is named by the time it was taken (its ``timestamp``).
"""

import uuid

from datera_edf_sim import exceptions
from datera_edf_sim.models import tenants

SNAPSHOT_CREATING = 'creating'
SNAPSHOT_AVAILABLE = 'available'


class SnapshotsMixin(object):
    """Volume snapshots: take, read, list, delete."""

    @staticmethod
    def _find_snapshot(doc, si, vol, timestamp):
        for snap in vol.get('snapshots', []):
            if snap['timestamp'] == timestamp:
                return snap
        raise exceptions.NotFound(
            'Snapshot %s does not exist for volume %s of storage '
            'instance %s of app instance %s'
            % (timestamp, vol['name'], si['name'], doc['id']))

    def _render_snapshot(self, doc, si, vol, snap):
        ready = snap['ready_at'] <= self.clock()
        return {
            'tenant': doc['tenant'],
            'path': '%s/snapshots/%s' % (self._volume_path(doc, si, vol),
                                         snap['timestamp']),
            'timestamp': snap['timestamp'],
            'utc_ts': snap['utc_ts'],
            'uuid': snap['uuid'],
            'op_state': SNAPSHOT_AVAILABLE if ready else SNAPSHOT_CREATING,
        }

    def create_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                               snapshot_uuid=None):
        """Freeze a copy of a volume's bytes now.

        The snapshot is named by its ``timestamp`` (unique per volume);
        it stays ``creating`` for ``snapshot_seconds``, then is
        ``available``. A ``snapshot_uuid`` already used on the volume is
        a Conflict.
        """
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            snapshots = vol.setdefault('snapshots', [])
            if snapshot_uuid and any(s['uuid'] == snapshot_uuid
                                     for s in snapshots):
                raise exceptions.Conflict(
                    'Snapshot with uuid %s already exists' % snapshot_uuid)
            now = self.clock()
            snap = dict(_snapshot_times(now, snapshots),
                        uuid=snapshot_uuid or str(uuid.uuid4()),
                        data_id=str(uuid.uuid4()), size=vol['size'],
                        ready_at=now + self.snapshot_seconds)
            snapshots.append(snap)
            self._save_ai(db, doc)
            self.dataplane.create_snapshot(snap['data_id'], vol['uuid'])
            return self._render_snapshot(doc, si, vol, snap)

    def list_volume_snapshots(self, tenant, ai_id, si_name, vol_name):
        tenant = tenants.normalize_tenant(tenant)
        sub = ('/app_instances/%s/storage_instances/%s/volumes/%s/snapshots'
               % (ai_id, si_name, vol_name))
        try:
            doc, si, vol = self._load_volume(self._read(), tenant, ai_id,
                                             si_name, vol_name)
        except exceptions.NotFound:
            raise exceptions.NoData(sub)
        return [self._render_snapshot(doc, si, vol, snap)
                for snap in vol.get('snapshots', [])]

    def get_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                            timestamp):
        tenant = tenants.normalize_tenant(tenant)
        doc, si, vol = self._load_volume(self._read(), tenant, ai_id,
                                         si_name, vol_name)
        snap = self._find_snapshot(doc, si, vol, timestamp)
        return self._render_snapshot(doc, si, vol, snap)

    def delete_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                               timestamp):
        """Delete a snapshot and its frozen copy; clones made of it stay."""
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            snap = self._find_snapshot(doc, si, vol, timestamp)
            rendered = self._render_snapshot(doc, si, vol, snap)
            vol['snapshots'].remove(snap)
            self._save_ai(db, doc)
            self.dataplane.delete_snapshot(snap['data_id'])
            return rendered


def _snapshot_times(now, existing):
    """``timestamp`` and ``utc_ts`` of a snapshot taken at ``now``.

    The cluster writes microseconds padded to nanoseconds
    (``1575422318.143125000``); the timestamp names the snapshot in its
    path, so one taken within the same microsecond as another moves on
    by one.
    """
    taken = {snap['timestamp'] for snap in existing}
    micros = int(round(now * 1000000))
    while True:
        seconds, fraction = divmod(micros, 1000000)
        timestamp = '%d.%06d000' % (seconds, fraction)
        if timestamp not in taken:
            return {'timestamp': timestamp, 'utc_ts': str(seconds)}
        micros += 1
