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

"""Access: the ACL policies of storage instances, and exports.

After every change that can alter who may see a volume, the model tells
the data plane the whole export set of the storage instances concerned
(``sync_exports``), inside the same transaction.
"""

import json

from datera_edf_sim import exceptions
from datera_edf_sim.models import core
from datera_edf_sim.models import initiators
from datera_edf_sim.models import tenants


class AclMixin(object):
    """ACL policies of storage instances, and the exports following them."""

    def _render_acl(self, doc, si):
        return {
            'tenant': doc['tenant'],
            'path': '%s/acl_policy' % self._si_path(doc, si),
            'initiators': [{'path': p} for p in si['acl']['initiators']],
            'initiator_groups': [{'path': p}
                                 for p in si['acl']['initiator_groups']],
        }

    def _check_acl_refs(self, db, tenant, acl):
        for kind, prefix in (('initiators', initiators.INITIATOR_PREFIX),
                             ('initiator_groups', initiators.GROUP_PREFIX)):
            for path in acl[kind]:
                if not path.startswith(prefix) or self._resolve(
                        db, tenant, path) is None:
                    raise exceptions.Invalid(
                        '%s: no such %s' % (path, kind[:-1]))

    def _replace_acl(self, db, tenant, si, body):
        acl = {
            'initiators': core.unique(
                p['path'] for p in body.get('initiators', [])),
            'initiator_groups': core.unique(
                p['path'] for p in body.get('initiator_groups', [])),
        }
        self._check_acl_refs(db, tenant, acl)
        si['acl'] = acl

    def get_acl_policy(self, tenant, ai_id, si_name):
        tenant = tenants.normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        return self._render_acl(doc, self._find_si(doc, si_name))

    def set_acl_policy(self, tenant, ai_id, si_name, body):
        """Replace the SI's ACL lists that ``body`` gives (full replace)."""
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            merged = {
                'initiators': body.get('initiators', [
                    {'path': p} for p in si['acl']['initiators']]),
                'initiator_groups': body.get('initiator_groups', [
                    {'path': p} for p in si['acl']['initiator_groups']]),
            }
            self._replace_acl(db, tenant, si, merged)
            self._save_ai(db, doc)
            self._sync_si(db, doc, si)
            return self._render_acl(doc, si)

    def list_acl_members(self, tenant, ai_id, si_name, kind):
        """The initiators (or groups) in an SI's ACL, as full entities."""
        tenant = tenants.normalize_tenant(tenant)
        sub = ('/app_instances/%s/storage_instances/%s/acl_policy/%s'
               % (ai_id, si_name, kind))
        db = self._read()
        doc = self._load_ai_for_sub(db, tenant, ai_id, sub)
        try:
            si = self._find_si(doc, si_name)
        except exceptions.NotFound:
            raise exceptions.NoData(sub)
        result = []
        for path in si['acl'][kind]:
            found = self._resolve(db, tenant, path)
            if found is not None:
                result.append(self._render_ref(*found))
        return result

    def change_acl(self, tenant, ai_id, si_name, kind, op, path):
        """Add or remove one ACL entry atomically.

        :param kind: ``initiators`` or ``initiator_groups``.
        :returns: the initiator (or group) the path names.
        """
        tenant = tenants.normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            found = self._resolve(db, tenant, path)
            prefix = (initiators.INITIATOR_PREFIX if kind == 'initiators'
                      else initiators.GROUP_PREFIX)
            if found is None or not path.startswith(prefix):
                raise exceptions.Invalid('%s: no such %s' % (path, kind[:-1]))
            entries = si['acl'][kind]
            if op == 'add' and path not in entries:
                entries.append(path)
            elif op == 'remove' and path in entries:
                entries.remove(path)
            self._save_ai(db, doc)
            self._sync_si(db, doc, si)
            return self._render_ref(*found)

    def _effective_initiators(self, db, tenant, si):
        """IQNs the SI's ACL admits, directly or through groups."""
        iqns = set()
        for path in si['acl']['initiators']:
            iqns.add(path[len(initiators.INITIATOR_PREFIX):])
        for path in si['acl']['initiator_groups']:
            found = self._resolve(db, tenant, path)
            if found is None:
                continue
            for member in found[2]['members']:
                if member.startswith(initiators.INITIATOR_PREFIX):
                    iqns.add(member[len(initiators.INITIATOR_PREFIX):])
        return iqns

    def _sync_si(self, db, doc, si):
        if doc['admin_state'] == 'online' and si['volumes']:
            wanted = self._effective_initiators(db, doc['tenant'], si)
        else:
            wanted = set()
        volume_uuid = si['volumes'][0]['uuid'] if si['volumes'] else None
        self.dataplane.sync_exports(si['uuid'], si['iqn'],
                                    list(self.data_ips), volume_uuid, wanted)

    def _sync_ai(self, db, doc):
        for si in doc['storage_instances']:
            self._sync_si(db, doc, si)

    def _sync_all(self, db):
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            self._sync_ai(db, json.loads(row['doc']))

    def resync_exports(self):
        """Tell the data plane every SI's export set (e.g. on startup)."""
        with self._write() as db:
            self._sync_all(db)
