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

"""App instance metadata: a flat map of strings.

The API serves it as ``/app_instances/<id>/metadata`` and as
``int_ecosystem_data``.
"""

from datera_edf_sim import exceptions
from datera_edf_sim.models import tenants


class MetadataMixin(object):
    """App instance metadata."""

    def get_metadata(self, tenant, ai_id):
        """An app instance's metadata: a flat map of strings."""
        tenant = tenants.normalize_tenant(tenant)
        return dict(self._load_ai(self._read(), tenant, ai_id)['metadata'])

    def update_metadata(self, tenant, ai_id, values):
        """Merge ``values`` into the metadata; returns the whole map.

        Values are stored as strings; nested values are refused.
        """
        tenant = tenants.normalize_tenant(tenant)
        converted = {}
        for key, value in values.items():
            if isinstance(value, bool):
                converted[key] = 'true' if value else 'false'
            elif isinstance(value, (str, int, float)):
                converted[key] = str(value)
            else:
                raise exceptions.Invalid(
                    'Metadata value for %r must be a string' % key)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            doc['metadata'].update(converted)
            self._save_ai(db, doc)
            return dict(doc['metadata'])
