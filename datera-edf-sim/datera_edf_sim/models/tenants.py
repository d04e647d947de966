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

"""Tenants, named by their path (``/root``, ``/root/<name>``)."""

from datera_edf_sim import defaults
from datera_edf_sim import exceptions


def tenant_name(path):
    """The last part of a tenant path (``/root/a`` gives ``a``)."""
    return path.rstrip('/').rsplit('/', 1)[-1]


def normalize_tenant(tenant):
    """Turn a tenant header value into a tenant path (``/root/...``)."""
    if not tenant:
        return defaults.ROOT_TENANT
    path = '/' + tenant.strip().strip('/')
    root = defaults.ROOT_TENANT
    if path != root and not path.startswith(root + '/'):
        raise exceptions.NotFound('Tenant %s does not exist' % tenant)
    return path


def ancestors(tenant):
    """The tenant itself, then its parents up to /root."""
    parts = tenant.strip('/').split('/')
    return ['/' + '/'.join(parts[:i]) for i in range(len(parts), 0, -1)]


class TenantsMixin(object):
    """Tenants: create, read, list, delete."""

    def _tenant_row(self, db, path):
        return db.execute('SELECT * FROM tenants WHERE path=?',
                          (path,)).fetchone()

    def check_tenant(self, tenant):
        """Normalize a tenant header value; NotFound if no such tenant."""
        path = normalize_tenant(tenant)
        if self._tenant_row(self._read(), path) is None:
            raise exceptions.NotFound('Tenant %s does not exist' % path)
        return path

    def _render_tenant(self, db, row):
        children = [r['path'] for r in db.execute(
            'SELECT path FROM tenants WHERE parent_path=? ORDER BY seq',
            (row['path'],))]
        return {
            'path': row['path'],
            'name': row['name'],
            'parent_path': row['parent_path'],
            'subtenants': children,
        }

    def create_tenant(self, name, parent_path=defaults.ROOT_TENANT):
        parent = normalize_tenant(parent_path)
        path = '%s/%s' % (parent, name)
        with self._write() as db:
            if self._tenant_row(db, parent) is None:
                raise exceptions.NotFound('Tenant %s does not exist' % parent)
            if self._tenant_row(db, path) is not None:
                raise exceptions.Conflict('Tenant %s already exists' % path)
            db.execute('INSERT INTO tenants VALUES (?, ?, ?, ?)',
                       (path, name, parent, self._next_seq(db, 'tenants')))
            return self._render_tenant(db, self._tenant_row(db, path))

    def get_tenant(self, path):
        path = normalize_tenant(path)
        db = self._read()
        row = self._tenant_row(db, path)
        if row is None:
            raise exceptions.NotFound('Tenant %s does not exist' % path)
        return self._render_tenant(db, row)

    def list_tenants(self, tenant=defaults.ROOT_TENANT):
        """The tenant and every tenant below it."""
        tenant = normalize_tenant(tenant)
        db = self._read()
        rows = db.execute(
            'SELECT * FROM tenants WHERE path=? OR path LIKE ? ORDER BY seq',
            (tenant, tenant + '/%')).fetchall()
        return [self._render_tenant(db, r) for r in rows]

    def delete_tenant(self, path):
        path = normalize_tenant(path)
        if path == defaults.ROOT_TENANT:
            raise exceptions.Invalid('The root tenant cannot be deleted')
        with self._write() as db:
            row = self._tenant_row(db, path)
            if row is None:
                raise exceptions.NotFound('Tenant %s does not exist' % path)
            for table in ('tenants', 'app_instances', 'initiators',
                          'initiator_groups'):
                column = 'parent_path' if table == 'tenants' else 'tenant'
                if db.execute('SELECT 1 FROM %s WHERE %s=? LIMIT 1'
                              % (table, column), (path,)).fetchone():
                    raise exceptions.Conflict('Tenant %s is not empty' % path)
            rendered = self._render_tenant(db, row)
            db.execute('DELETE FROM tenants WHERE path=?', (path,))
            return rendered
