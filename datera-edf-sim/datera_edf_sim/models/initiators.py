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

"""Initiators (hosts' IQNs) and initiator groups.

Both belong to a tenant; a path (``/initiators/<iqn>``) names the one of
the tenant or, failing that, of its nearest parent that has it.
"""

import json

from datera_edf_sim import exceptions
from datera_edf_sim.models import core
from datera_edf_sim.models import tenants

# The paths ACLs and initiator groups name their members by.
INITIATOR_PREFIX = '/initiators/'
GROUP_PREFIX = '/initiator_groups/'


class InitiatorsMixin(object):
    """Initiators and initiator groups."""

    def _resolve(self, db, tenant, path):
        """Find the initiator or group a path names, in tenant or above.

        :returns: ``(kind, tenant, doc)`` or None.
        """
        if path.startswith(INITIATOR_PREFIX):
            table, key, kind = 'initiators', 'id', 'initiator'
            ident = path[len(INITIATOR_PREFIX):]
        elif path.startswith(GROUP_PREFIX):
            table, key, kind = 'initiator_groups', 'name', 'initiator_group'
            ident = path[len(GROUP_PREFIX):]
        else:
            return None
        for candidate in tenants.ancestors(tenant):
            row = db.execute('SELECT doc FROM %s WHERE tenant=? AND %s=?'
                             % (table, key), (candidate, ident)).fetchone()
            if row is not None:
                return kind, candidate, json.loads(row['doc'])
        return None

    @staticmethod
    def _render_ref(kind, tenant, doc):
        if kind == 'initiator':
            return {
                'tenant': tenant,
                'path': INITIATOR_PREFIX + doc['id'],
                'id': doc['id'],
                'name': doc['name'],
            }
        return {
            'tenant': tenant,
            'path': GROUP_PREFIX + doc['name'],
            'name': doc['name'],
            'members': [{'path': p} for p in doc['members']],
        }

    def _referencing_sis(self, db, path):
        """(tenant, ai_id, si_name) of every SI whose ACL names path."""
        refs = []
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            doc = json.loads(row['doc'])
            for si in doc['storage_instances']:
                if (path in si['acl']['initiators'] or
                        path in si['acl']['initiator_groups']):
                    refs.append((doc['tenant'], doc['id'], si['name']))
        return refs

    def create_initiator(self, tenant, iqn, name, force=False):
        """Register a host's initiator in a tenant.

        An IQN already registered in the same tenant is a Conflict. One
        registered in another tenant is a Conflict too unless ``force``.
        """
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            if self._tenant_row(db, tenant) is None:
                raise exceptions.NotFound('Tenant %s does not exist' % tenant)
            rows = db.execute('SELECT tenant FROM initiators WHERE id=?',
                              (iqn,)).fetchall()
            owners = [r['tenant'] for r in rows]
            if tenant in owners:
                raise exceptions.Conflict('Initiator %s already exists' % iqn)
            if owners and not force:
                raise exceptions.Conflict(
                    'Initiator %s already exists in another '
                    'tenant; use force to register it here' % iqn)
            doc = {'id': iqn, 'name': name}
            db.execute('INSERT INTO initiators VALUES (?, ?, ?, ?)',
                       (tenant, iqn, self._next_seq(db, 'initiators'),
                        json.dumps(doc)))
            return self._render_ref('initiator', tenant, doc)

    def get_initiator(self, tenant, iqn):
        """Look an initiator up in the tenant, then in its parents."""
        tenant = tenants.normalize_tenant(tenant)
        found = self._resolve(self._read(), tenant, INITIATOR_PREFIX + iqn)
        if found is None:
            raise exceptions.NotFound('Initiator %s does not exist' % iqn)
        return self._render_ref(*found)

    def list_initiators(self, tenant):
        tenant = tenants.normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM initiators WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ref('initiator', tenant, json.loads(r['doc']))
                for r in rows]

    def update_initiator(self, tenant, iqn, body):
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            row = db.execute('SELECT doc FROM initiators WHERE tenant=? AND '
                             'id=?', (tenant, iqn)).fetchone()
            if row is None:
                raise exceptions.NotFound('Initiator %s does not exist' % iqn)
            doc = json.loads(row['doc'])
            if 'name' in body:
                doc['name'] = body['name']
            db.execute('UPDATE initiators SET doc=? WHERE tenant=? AND id=?',
                       (json.dumps(doc), tenant, iqn))
            return self._render_ref('initiator', tenant, doc)

    def delete_initiator(self, tenant, iqn):
        """Delete an initiator; Conflict while an ACL or group uses it."""
        tenant = tenants.normalize_tenant(tenant)
        path = INITIATOR_PREFIX + iqn
        with self._write() as db:
            row = db.execute('SELECT doc FROM initiators WHERE tenant=? AND '
                             'id=?', (tenant, iqn)).fetchone()
            if row is None:
                raise exceptions.NotFound('Initiator %s does not exist' % iqn)
            if self._referencing_sis(db, path):
                raise exceptions.Conflict(
                    'Initiator %s is in use by an ACL policy' % iqn)
            for group in db.execute('SELECT doc FROM initiator_groups'):
                if path in json.loads(group['doc'])['members']:
                    raise exceptions.Conflict(
                        'Initiator %s is a member of an '
                        'initiator group' % iqn)
            db.execute('DELETE FROM initiators WHERE tenant=? AND id=?',
                       (tenant, iqn))
            return self._render_ref('initiator', tenant,
                                    json.loads(row['doc']))

    def _load_group(self, db, tenant, name):
        row = db.execute('SELECT doc FROM initiator_groups WHERE tenant=? '
                         'AND name=?', (tenant, name)).fetchone()
        if row is None:
            raise exceptions.NotFound(
                'Initiator group %s does not exist' % name)
        return json.loads(row['doc'])

    def _save_group(self, db, tenant, doc):
        db.execute('UPDATE initiator_groups SET doc=? WHERE tenant=? AND '
                   'name=?', (json.dumps(doc), tenant, doc['name']))

    def _check_members(self, db, tenant, members):
        for path in members:
            found = (self._resolve(db, tenant, path)
                     if path.startswith(INITIATOR_PREFIX) else None)
            if found is None:
                raise exceptions.Invalid('%s: no such initiator' % path)

    def create_initiator_group(self, tenant, name, members=()):
        tenant = tenants.normalize_tenant(tenant)
        members = core.unique(m['path'] for m in members)
        with self._write() as db:
            if self._tenant_row(db, tenant) is None:
                raise exceptions.NotFound('Tenant %s does not exist' % tenant)
            if db.execute('SELECT 1 FROM initiator_groups WHERE tenant=? AND '
                          'name=?', (tenant, name)).fetchone():
                raise exceptions.Conflict(
                    'Initiator group %s already exists' % name)
            self._check_members(db, tenant, members)
            doc = {'name': name, 'members': members}
            db.execute('INSERT INTO initiator_groups VALUES (?, ?, ?, ?)',
                       (tenant, name, self._next_seq(db, 'initiator_groups'),
                        json.dumps(doc)))
            return self._render_ref('initiator_group', tenant, doc)

    def get_initiator_group(self, tenant, name):
        tenant = tenants.normalize_tenant(tenant)
        found = self._resolve(self._read(), tenant, GROUP_PREFIX + name)
        if found is None:
            raise exceptions.NotFound(
                'Initiator group %s does not exist' % name)
        return self._render_ref(*found)

    def list_initiator_groups(self, tenant):
        tenant = tenants.normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM initiator_groups WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ref('initiator_group', tenant,
                                 json.loads(r['doc'])) for r in rows]

    def set_initiator_group_members(self, tenant, name, members):
        """Replace a group's members; exports follow."""
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            doc['members'] = core.unique(m['path'] for m in members)
            self._check_members(db, tenant, doc['members'])
            self._save_group(db, tenant, doc)
            self._sync_all(db)
            return self._render_ref('initiator_group', tenant, doc)

    def change_initiator_group_members(self, tenant, name, op, path):
        """Add or remove one member atomically; exports follow.

        :returns: the initiator the path names.
        """
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            found = (self._resolve(db, tenant, path)
                     if path.startswith(INITIATOR_PREFIX) else None)
            if found is None:
                raise exceptions.Invalid('%s: no such initiator' % path)
            if op == 'add' and path not in doc['members']:
                doc['members'].append(path)
            elif op == 'remove' and path in doc['members']:
                doc['members'].remove(path)
            self._save_group(db, tenant, doc)
            self._sync_all(db)
            return self._render_ref(*found)

    def list_initiator_group_members(self, tenant, name):
        tenant = tenants.normalize_tenant(tenant)
        db = self._read()
        try:
            doc = self._load_group(db, tenant, name)
        except exceptions.NotFound:
            raise exceptions.NoData('/initiator_groups/%s/members' % name)
        result = []
        for path in doc['members']:
            found = self._resolve(db, tenant, path)
            if found is not None:
                result.append(self._render_ref(*found))
        return result

    def delete_initiator_group(self, tenant, name):
        """Delete a group; Conflict while an ACL uses it."""
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            if self._referencing_sis(db, GROUP_PREFIX + name):
                raise exceptions.Conflict(
                    'Initiator group %s is in use by an ACL '
                    'policy' % name)
            db.execute('DELETE FROM initiator_groups WHERE tenant=? AND '
                       'name=?', (tenant, name))
            return self._render_ref('initiator_group', tenant, doc)
