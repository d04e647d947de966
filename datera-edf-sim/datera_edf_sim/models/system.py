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

"""The cluster as a whole: ``/system``, its one storage node, its capacity.

Also :meth:`SystemMixin.snapshot`, everything the model holds as one
JSON-able dictionary (the admin API's ``/state``, ``datera-edf-sim
status``).
"""

import copy
import json

from datera_edf_sim import exceptions

INSUFFICIENT_CAPACITY_MESSAGE = 'Insufficient capacity'


class SystemMixin(object):
    """The system, its storage node and capacity; a snapshot of all."""

    def system(self):
        db = self._read()
        system_uuid = self._system_uuid
        capacity = self._setting(db, 'capacity_gib')
        used = self._provisioned_gib(db)
        total_gib = capacity if capacity is not None else 1024 * 1024
        total = int(total_gib * 1024 ** 3)
        available = max(0, total - int(used * 1024 ** 3))
        return {
            'path': '/system',
            'name': self.system_name,
            'uuid': system_uuid,
            'sw_version': self.sw_version,
            'build_version': 'sim-%s' % self.sw_version,
            'op_state': 'running',
            'health': 'ok',
            'causes': [],
            'callhome_enabled': False,
            'compression_enabled': False,
            'compression_ratio': '1.0',
            'l3_enabled': False,
            'total_capacity': total,
            'available_capacity': available,
            'total_provisioned_capacity': int(used * 1024 ** 3),
            'all_flash_total_capacity': total,
            'all_flash_available_capacity': available,
            'all_flash_provisioned_capacity': int(used * 1024 ** 3),
            'hybrid_total_capacity': 0,
            'hybrid_available_capacity': 0,
            'hybrid_provisioned_capacity': 0,
        }

    def storage_node_path(self):
        return self._node_path

    def storage_nodes(self):
        path = self.storage_node_path()
        return [{
            'path': path,
            'uuid': path.rsplit('/', 1)[-1],
            'name': 'sim-node-1',
            'op_state': 'online',
            'admin_state': 'online',
            'health': 'ok',
            'causes': [],
            'sw_version': self.sw_version,
        }]

    def set_capacity(self, gib):
        """Limit the total provisioned size (GiB); None: unlimited.

        Creates and grows that would go beyond it fail with
        InsufficientCapacity, as on a full cluster. Existing volumes are
        kept even if they already exceed it.
        """
        with self._write() as db:
            db.execute('UPDATE settings SET value=? WHERE key=?',
                       (json.dumps(gib), 'capacity_gib'))

    def fill_capacity(self):
        """Make the cluster full: capacity = what is provisioned now.

        :returns: the new capacity in GiB.
        """
        with self._write() as db:
            gib = self._provisioned_gib(db)
            db.execute('UPDATE settings SET value=? WHERE key=?',
                       (json.dumps(gib), 'capacity_gib'))
        return gib

    @staticmethod
    def _provisioned_gib(db):
        total = 0
        for row in db.execute('SELECT doc FROM app_instances'):
            doc = json.loads(row['doc'])
            for si in doc['storage_instances']:
                for vol in si['volumes']:
                    total += vol['size']
        return total

    def _check_capacity(self, db, extra_gib):
        capacity = self._setting(db, 'capacity_gib')
        if capacity is None or extra_gib <= 0:
            return
        used = self._provisioned_gib(db)
        if used + extra_gib > capacity:
            raise exceptions.InsufficientCapacity(
                '%s: %s GiB requested, %s GiB of %s GiB available'
                % (INSUFFICIENT_CAPACITY_MESSAGE, extra_gib,
                   max(0, capacity - used), capacity))

    def snapshot(self):
        """Everything the simulator holds, as a JSON-able dictionary."""
        db = self._read()
        system = self.system()
        ais = []
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            doc = json.loads(row['doc'])
            sis = []
            for si in doc['storage_instances']:
                sis.append({
                    'name': si['name'],
                    'uuid': si['uuid'],
                    'iqn': si['iqn'],
                    'op_state': ('available'
                                 if doc['admin_state'] == 'online'
                                 else 'unavailable'),
                    'acl_policy': copy.deepcopy(si['acl']),
                    'exported_to': sorted(
                        self.dataplane.exported_initiators(si['uuid'])),
                    'volumes': [{
                        'name': v['name'],
                        'uuid': v['uuid'],
                        'size': v['size'],
                        'snapshots': [
                            {'timestamp': snap['timestamp'],
                             'uuid': snap['uuid'],
                             'data_id': snap['data_id']}
                            for snap in v.get('snapshots', [])],
                        'op_state': self._render_volume(doc, si,
                                                        v)['op_state'],
                    } for v in si['volumes']],
                })
            ais.append({
                'tenant': doc['tenant'],
                'id': doc['id'],
                'name': doc['name'],
                'admin_state': doc['admin_state'],
                'metadata': dict(doc['metadata']),
                'storage_instances': sis,
            })
        return {
            'system': {k: system[k] for k in ('name', 'uuid', 'sw_version',
                                              'total_capacity',
                                              'available_capacity')},
            'capacity_gib': self._setting(db, 'capacity_gib'),
            'tenants': [r['path'] for r in db.execute(
                'SELECT path FROM tenants ORDER BY seq')],
            'app_instances': ais,
            'initiators': [dict(json.loads(r['doc']), tenant=r['tenant'])
                           for r in db.execute(
                               'SELECT tenant, doc FROM initiators '
                               'ORDER BY seq')],
            'initiator_groups': [dict(json.loads(r['doc']),
                                      tenant=r['tenant'])
                                 for r in db.execute(
                                     'SELECT tenant, doc FROM '
                                     'initiator_groups ORDER BY seq')],
            'sessions': db.execute(
                'SELECT COUNT(*) AS n FROM sessions WHERE expires IS NULL '
                'OR expires > ?', (self.clock(),)).fetchone()['n'],
        }
