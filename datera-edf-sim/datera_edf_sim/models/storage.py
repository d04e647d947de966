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

"""Storage instances and their volumes, inside an app instance."""

import secrets
import uuid

from datera_edf_sim import exceptions
from datera_edf_sim.models import core
from datera_edf_sim.models import tenants

IQN_PREFIX = 'iqn.2013-05.com.daterainc:tc:01:sn:'


class StorageMixin(object):
    """Storage instances and volumes: reads, changes, backing data."""

    @staticmethod
    def _find_si(doc, si_name):
        for si in doc['storage_instances']:
            if si['name'] == si_name:
                return si
        raise exceptions.NotFound(
            'Storage instance %s does not exist in app instance '
            '%s' % (si_name, doc['id']))

    @staticmethod
    def _find_volume(doc, si, vol_name):
        for vol in si['volumes']:
            if vol['name'] == vol_name:
                return vol
        raise exceptions.NotFound(
            'Volume %s does not exist in storage instance %s of '
            'app instance %s' % (vol_name, si['name'], doc['id']))

    def _load_volume(self, db, tenant, ai_id, si_name, vol_name):
        doc = self._load_ai(db, tenant, ai_id)
        si = self._find_si(doc, si_name)
        return doc, si, self._find_volume(doc, si, vol_name)

    def _si_path(self, doc, si):
        return '%s/storage_instances/%s' % (self._ai_path(doc), si['name'])

    def _volume_path(self, doc, si, vol):
        return '%s/volumes/%s' % (self._si_path(doc, si), vol['name'])

    def _render_si(self, doc, si):
        path = self._si_path(doc, si)
        online = doc['admin_state'] == 'online'
        return {
            'tenant': doc['tenant'],
            'path': path,
            'name': si['name'],
            'uuid': si['uuid'],
            'health': 'ok',
            'causes': [],
            'admin_state': doc['admin_state'],
            'op_state': 'available' if online else 'unavailable',
            'deployment_state': 'deployed',
            'access_control_mode': si['access_control_mode'],
            'volumes': [self._render_volume(doc, si, v)
                        for v in si['volumes']],
            'acl_policy': self._render_acl(doc, si),
            'ip_pool': {'path': si['ip_pool']},
            'access': {
                'path': '%s/access' % path,
                'ips': list(self.data_ips),
                'iqn': si['iqn'],
            },
            'auth': {
                'path': '%s/auth' % path,
                'type': 'none',
                'initiator_user_name': '',
                'initiator_pswd': '(hidden)',
                'target_user_name': '',
                'target_pswd': '(hidden)',
            },
            'active_initiators': sorted(
                self.dataplane.exported_initiators(si['uuid'])),
            'active_storage_nodes': [{'path': self.storage_node_path()}],
        }

    def _render_volume(self, doc, si, vol):
        resizing = (vol.get('resize_until') and
                    vol['resize_until'] > self.clock())
        rendered = {
            'tenant': doc['tenant'],
            'path': self._volume_path(doc, si, vol),
            'name': vol['name'],
            'uuid': vol['uuid'],
            'size': vol['size'],
            'replica_count': vol['replica_count'],
            'placement_mode': vol['placement_mode'],
            'capacity_in_use': 0,
            'snapshot_policies': [],
            'snapshots': [self._render_snapshot(doc, si, vol, snap)
                          for snap in vol.get('snapshots', [])],
            'op_state': 'resizing' if resizing else 'available',
            'availability_state': 'available',
            'active_storage_nodes': [{'path': self.storage_node_path()}],
            'health': 'ok',
            'causes': [],
            'deployment_state': 'deployed',
        }
        if resizing:
            rendered['op_status'] = 'volume_resize_in_progress'
        return rendered

    @staticmethod
    def _new_si(name, access_control_mode, acl=None, ip_pool=None):
        acl = acl or {}
        return {
            'name': name,
            'uuid': str(uuid.uuid4()),
            'iqn': IQN_PREFIX + secrets.token_hex(8),
            'access_control_mode': access_control_mode,
            'ip_pool': ip_pool or '/access_network_ip_pools/default',
            'acl': {
                'initiators': core.unique(
                    p['path'] for p in acl.get('initiators', [])),
                'initiator_groups': core.unique(
                    p['path'] for p in acl.get('initiator_groups', [])),
            },
            'volumes': [],
        }

    @staticmethod
    def _new_volume(name, size, replica_count=3, placement_mode='hybrid'):
        return {
            'name': name,
            'uuid': str(uuid.uuid4()),
            'size': whole_gib(size),
            'replica_count': replica_count,
            'placement_mode': placement_mode,
            'resize_until': None,
            'snapshots': [],
        }

    def _add_storage(self, doc, si_bodies):
        """Add the storage a create body describes to a new app instance.

        :returns: ``[(volume_uuid, size, None)]``: the volumes to create
            empty (see :meth:`_fill_volumes`).
        """
        fills = []
        for si_body in si_bodies:
            if any(si['name'] == si_body['name']
                   for si in doc['storage_instances']):
                raise exceptions.Invalid(
                    'Duplicate storage instance name %s' % si_body['name'])
            si = self._new_si(
                si_body['name'],
                si_body.get('access_control_mode',
                            doc['access_control_mode']),
                acl=si_body.get('acl_policy'),
                ip_pool=si_body.get('ip_pool', {}).get('path'))
            for vol_body in si_body.get('volumes', []):
                if any(v['name'] == vol_body['name'] for v in si['volumes']):
                    raise exceptions.Invalid(
                        'Duplicate volume name %s' % vol_body['name'])
                vol = self._new_volume(
                    vol_body['name'], vol_body['size'],
                    vol_body.get('replica_count', 3),
                    vol_body.get('placement_mode', 'hybrid'))
                si['volumes'].append(vol)
                fills.append((vol['uuid'], vol['size'], None))
            doc['storage_instances'].append(si)
        return fills

    def _fill_volumes(self, fills):
        """Make the backing data of new volumes: empty or copied.

        All or nothing: a failure deletes what was made before it.
        """
        made = []
        try:
            for volume_uuid, size, copy_of in fills:
                if copy_of is None:
                    self.dataplane.create_volume(volume_uuid, size)
                elif copy_of[0] == 'volume':
                    self.dataplane.clone_volume(volume_uuid, copy_of[1])
                else:
                    self.dataplane.clone_snapshot(volume_uuid, copy_of[1])
                made.append(volume_uuid)
        except BaseException:
            for volume_uuid in made:
                _best_effort(self.dataplane.delete_volume, volume_uuid)
            raise

    def list_storage_instances(self, tenant, ai_id):
        tenant = tenants.normalize_tenant(tenant)
        doc = self._load_ai_for_sub(
            self._read(), tenant, ai_id,
            '/app_instances/%s/storage_instances' % ai_id)
        return [self._render_si(doc, si) for si in doc['storage_instances']]

    def get_storage_instance(self, tenant, ai_id, si_name):
        tenant = tenants.normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        return self._render_si(doc, self._find_si(doc, si_name))

    def update_storage_instance(self, tenant, ai_id, si_name, body):
        """Change an SI's ACL (full replace) or access control mode.

        The simulator keeps one admin state per app instance, has no CHAP
        and creates volumes only with their app instance: asking for those
        is Invalid rather than silently ignored.
        """
        tenant = tenants.normalize_tenant(tenant)
        if 'admin_state' in body:
            raise exceptions.Invalid(
                'Set admin_state on the app instance; the '
                'simulator does not change it per storage '
                'instance')
        if body.get('auth', {}).get('type', 'none') != 'none':
            raise exceptions.Invalid('CHAP is not supported by the simulator')
        if 'volumes' in body:
            raise exceptions.Invalid(
                'Changing volumes through the storage instance '
                'is not supported by the simulator')
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            if 'acl_policy' in body:
                self._replace_acl(db, tenant, si, body['acl_policy'])
            if 'access_control_mode' in body:
                si['access_control_mode'] = body['access_control_mode']
            if 'ip_pool' in body:
                si['ip_pool'] = body['ip_pool']['path']
            self._save_ai(db, doc)
            self._sync_ai(db, doc)
            return self._render_si(doc, si)

    def list_volumes(self, tenant, ai_id, si_name):
        tenant = tenants.normalize_tenant(tenant)
        sub = '/app_instances/%s/storage_instances/%s/volumes' % (ai_id,
                                                                  si_name)
        doc = self._load_ai_for_sub(self._read(), tenant, ai_id, sub)
        try:
            si = self._find_si(doc, si_name)
        except exceptions.NotFound:
            raise exceptions.NoData(sub)
        return [self._render_volume(doc, si, v) for v in si['volumes']]

    def get_volume(self, tenant, ai_id, si_name, vol_name):
        tenant = tenants.normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        si = self._find_si(doc, si_name)
        return self._render_volume(doc, si,
                                   self._find_volume(doc, si, vol_name))

    def update_volume(self, tenant, ai_id, si_name, vol_name, body):
        """Grow a volume (never shrink) or change its replica/placement.

        A grow leaves ``op_state`` at ``resizing`` for ``resize_seconds``.
        Reverting to a snapshot (``restore_point``) is Invalid rather than
        silently ignored: the simulator does not do it.
        """
        tenant = tenants.normalize_tenant(tenant)
        if 'restore_point' in body:
            raise exceptions.Invalid(
                'Restoring a volume to a snapshot is not '
                'supported by the simulator')
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            if 'size' in body and body['size'] != vol['size']:
                size = whole_gib(body['size'])
                if size < vol['size']:
                    raise exceptions.Invalid(
                        'Volume %s cannot shrink from %s GiB to %s '
                        'GiB' % (vol_name, vol['size'], size))
                self._check_capacity(db, size - vol['size'])
                self.dataplane.grow_volume(vol['uuid'], size)
                vol['size'] = size
                vol['resize_until'] = self.clock() + self.resize_seconds
            for field in ('replica_count', 'placement_mode'):
                if field in body:
                    vol[field] = body[field]
            self._save_ai(db, doc)
            return self._render_volume(doc, si, vol)


def whole_gib(size):
    """A volume size as an integer number of GiB.

    JSON clients may send ``2.0`` for 2 (the API's schema types sizes as
    numbers); a fraction of a GiB is Invalid.
    """
    if isinstance(size, float):
        if not size.is_integer():
            raise exceptions.Invalid(
                'Volume size must be a whole number of GiB, not '
                '%s' % size)
        return int(size)
    return size


def _best_effort(func, *args):
    try:
        func(*args)
    except Exception:  # noqa: S110 - cleanup after an earlier failure
        pass
