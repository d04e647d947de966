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

"""App instances.

An app instance is stored as one JSON document (the ``app_instances``
table) holding its storage instances, volumes, volume snapshots, ACLs and
metadata; the other parts of the model load and save it through
``_load_ai`` and ``_save_ai``.
"""

import json
import uuid

from datera_edf_sim import exceptions
from datera_edf_sim.models import clones
from datera_edf_sim.models import tenants


class AppInstancesMixin(object):
    """App instances: their stored form, create, read, change, delete.

    A new app instance gets its storage from :class:`StorageMixin
    <datera_edf_sim.models.storage.StorageMixin>` (described in the
    body) or :class:`ClonesMixin
    <datera_edf_sim.models.clones.ClonesMixin>` (copied from a source).
    """

    def _load_ai(self, db, tenant, ai_id):
        row = db.execute('SELECT doc FROM app_instances WHERE id=? AND '
                         'tenant=?', (ai_id, tenant)).fetchone()
        if row is None:
            raise exceptions.NotFound(
                'App instance %s does not exist in tenant %s'
                % (ai_id, tenant))
        return json.loads(row['doc'])

    @staticmethod
    def _save_ai(db, doc):
        db.execute('UPDATE app_instances SET name=?, doc=? WHERE id=?',
                   (doc['name'], json.dumps(doc), doc['id']))

    def _load_ai_for_sub(self, db, tenant, ai_id, sub_path):
        """Load the parent of a sub-collection, NoData if missing."""
        try:
            return self._load_ai(db, tenant, ai_id)
        except exceptions.NotFound:
            raise exceptions.NoData(sub_path)

    def _ai_path(self, doc):
        return '/app_instances/%s' % doc['id']

    def _render_ai(self, doc):
        rendered = {
            'tenant': doc['tenant'],
            'path': self._ai_path(doc),
            'name': doc['name'],
            'id': doc['id'],
            'uuid': doc['uuid'],
            'health': 'ok',
            'causes': [],
            'admin_state': doc['admin_state'],
            'create_mode': doc['create_mode'],
            'access_control_mode': doc['access_control_mode'],
            'deployment_state': 'deployed',
            'storage_instances': [self._render_si(doc, si)
                                  for si in doc['storage_instances']],
            'snapshots': [],
            'snapshot_policies': [],
        }
        # The cluster sends "" for no description, which its own schema
        # refuses; leave the field out instead.
        if doc.get('descr'):
            rendered['descr'] = doc['descr']
        return rendered

    def create_app_instance(self, tenant, body):
        """Create an app instance with its storage instances and volumes.

        With ``create_mode: openstack`` and a ``uuid``, that uuid becomes
        the id. Duplicate names (in the tenant) and ids give Conflict.

        With one of :data:`clones.CLONE_SOURCES` (``{"path": ...}``
        naming an app instance, a volume or a volume snapshot of the same
        tenant), the app instance gets storage instances and volumes like
        the source's (new uuids, the source's sizes), each holding a copy
        of the source's bytes; a clone of one volume or snapshot has one
        ``storage-1`` with one ``volume-1``. A path to nothing is Invalid.
        """
        tenant = tenants.normalize_tenant(tenant)
        if 'app_template' in body:
            raise exceptions.Invalid(
                'app_template is not supported by the simulator')
        clone_key = clones.source_key(body)
        doc = self._new_ai_doc(tenant, body)
        if not clone_key:
            fills = self._add_storage(doc, body.get('storage_instances', []))
        with self._write() as db:
            self._check_new_ai(db, doc)
            if clone_key:
                fills = self._add_clone_storage(db, doc, clone_key,
                                                body[clone_key]['path'])
            for si in doc['storage_instances']:
                self._check_acl_refs(db, tenant, si['acl'])
            self._check_capacity(db, sum(size for _, size, _ in fills))
            db.execute('INSERT INTO app_instances VALUES (?, ?, ?, ?, ?)',
                       (doc['id'], tenant, doc['name'],
                        self._next_seq(db, 'app_instances'),
                        json.dumps(doc)))
            self._fill_volumes(fills)
            return self._render_ai(doc)

    @staticmethod
    def _new_ai_doc(tenant, body):
        """The stored form of a new app instance, without storage yet."""
        create_mode = body.get('create_mode', 'normal')
        given_uuid = body.get('uuid')
        if create_mode == 'openstack' and given_uuid:
            ai_id = given_uuid
        else:
            ai_id = str(uuid.uuid4())
        return {
            'tenant': tenant,
            'id': ai_id,
            'name': body['name'],
            'uuid': given_uuid or ai_id,
            'descr': body.get('descr') or '',
            'create_mode': create_mode,
            'admin_state': 'offline',
            'access_control_mode': body.get('access_control_mode',
                                            'deny_all'),
            'metadata': {},
            'storage_instances': [],
        }

    def _check_new_ai(self, db, doc):
        if self._tenant_row(db, doc['tenant']) is None:
            raise exceptions.NotFound(
                'Tenant %s does not exist' % doc['tenant'])
        if db.execute('SELECT 1 FROM app_instances WHERE id=?',
                      (doc['id'],)).fetchone():
            raise exceptions.Conflict(
                'App instance with id %s already exists' % doc['id'])
        if db.execute('SELECT 1 FROM app_instances WHERE tenant=? AND '
                      'name=?', (doc['tenant'], doc['name'])).fetchone():
            raise exceptions.Conflict(
                'App instance with name %s already exists' % doc['name'])

    def get_app_instance(self, tenant, ai_id):
        tenant = tenants.normalize_tenant(tenant)
        return self._render_ai(self._load_ai(self._read(), tenant, ai_id))

    def list_app_instances(self, tenant):
        tenant = tenants.normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM app_instances WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ai(json.loads(r['doc'])) for r in rows]

    def update_app_instance(self, tenant, ai_id, body):
        """Change admin_state (online/offline, with force) or the name.

        Going offline while hosts are still connected (the SI is exported
        to someone) needs ``force``, which cuts them off.
        """
        tenant = tenants.normalize_tenant(tenant)
        for unsupported in ('storage_instances', 'restore_point'):
            if unsupported in body:
                raise exceptions.Invalid(
                    'Changing %s is not supported by the '
                    'simulator' % unsupported)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            if 'name' in body and body['name'] != doc['name']:
                if db.execute('SELECT 1 FROM app_instances WHERE tenant=? '
                              'AND name=?',
                              (tenant, body['name'])).fetchone():
                    raise exceptions.Conflict(
                        'App instance with name %s already exists'
                        % body['name'])
                doc['name'] = body['name']
            state = body.get('admin_state')
            if state == 'offline' and doc['admin_state'] == 'online':
                if not body.get('force'):
                    busy = self._active_initiators(doc)
                    if busy:
                        raise exceptions.Conflict(
                            'App instance %s has active initiators (%s); '
                            'use force to take it offline'
                            % (ai_id, ', '.join(sorted(busy))))
            if state:
                doc['admin_state'] = state
            self._save_ai(db, doc)
            self._sync_ai(db, doc)
            return self._render_ai(doc)

    def _active_initiators(self, doc):
        busy = set()
        for si in doc['storage_instances']:
            busy |= set(self.dataplane.exported_initiators(si['uuid']))
        return busy

    def force_offline(self, tenant, ai_id):
        """Take an app instance offline as an admin or another host would."""
        return self.update_app_instance(
            tenant, ai_id, {'admin_state': 'offline', 'force': True})

    def delete_app_instance(self, tenant, ai_id, force=False):
        """Delete an app instance; refused while online unless forced."""
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            if doc['admin_state'] == 'online' and not force:
                raise exceptions.Conflict(
                    'App instance %s is online; take it offline '
                    'first or use force' % ai_id)
            rendered = self._render_ai(doc)
            db.execute('DELETE FROM app_instances WHERE id=?', (ai_id,))
            doc['admin_state'] = 'offline'
            self._sync_ai(db, doc)
            for si in doc['storage_instances']:
                for vol in si['volumes']:
                    self.dataplane.delete_volume(vol['uuid'])
                    for snap in vol.get('snapshots', []):
                        self.dataplane.delete_snapshot(snap['data_id'])
            rendered['admin_state'] = 'offline'
            return rendered
