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

"""The REST API's routes: which handler serves each endpoint operation.

The endpoints themselves (paths, operations, schemas) are described in
:mod:`datera_edf_sim.schemas`; every one of them is served under
``/v2.1`` and ``/v2.2``.
"""

from datera_edf_sim import responses
from datera_edf_sim import schemas

VERSION_RULE = '/<any("v2.1","v2.2"):version>'

# Endpoints reachable without a session (and without a tenant check).
OPEN_PATHS = ('/login', '/logout', '/api', '/system')

# (endpoint path, operation) -> handler(call) -> data, wrapped in the
# application's view (session, tenant, body, envelope).
HANDLERS = {
    ('/system', 'read'): responses.get_system,
    ('/storage_nodes', 'read'): responses.list_storage_nodes,
    ('/storage_nodes/:uuid', 'read'): responses.get_storage_node,
    ('/tenants', 'create'): responses.create_tenant,
    ('/tenants', 'read'): responses.list_tenants,
    (schemas.TENANT_PATH, 'read'): responses.get_tenant,
    (schemas.TENANT_PATH, 'delete'): responses.delete_tenant,
    ('/app_instances', 'create'): responses.create_app_instance,
    ('/app_instances', 'read'): responses.list_app_instances,
    ('/app_instances/:id', 'read'): responses.get_app_instance,
    ('/app_instances/:id', 'update'): responses.update_app_instance,
    ('/app_instances/:id', 'delete'): responses.delete_app_instance,
    ('/app_instances/:id/metadata', 'read'): responses.get_metadata,
    ('/app_instances/:id/metadata', 'update'): responses.update_metadata,
    ('/app_instances/:id/int_ecosystem_data', 'read'):
        responses.get_metadata,
    ('/app_instances/:id/int_ecosystem_data', 'update'):
        responses.update_int_ecosystem_data,
    ('/app_instances/:id/storage_instances', 'read'):
        responses.list_storage_instances,
    (schemas.SI_PATH, 'read'): responses.get_storage_instance,
    (schemas.SI_PATH, 'update'): responses.update_storage_instance,
    (schemas.SI_PATH + '/acl_policy', 'read'): responses.get_acl_policy,
    (schemas.SI_PATH + '/acl_policy', 'update'): responses.update_acl_policy,
    (schemas.SI_PATH + '/acl_policy/initiators', 'read'):
        responses.list_acl_initiators,
    (schemas.SI_PATH + '/acl_policy/initiators', 'update'):
        responses.change_acl_initiators,
    (schemas.SI_PATH + '/acl_policy/initiator_groups', 'read'):
        responses.list_acl_initiator_groups,
    (schemas.SI_PATH + '/acl_policy/initiator_groups', 'update'):
        responses.change_acl_initiator_groups,
    (schemas.SI_PATH + '/volumes', 'read'): responses.list_volumes,
    (schemas.VOLUME_PATH, 'read'): responses.get_volume,
    (schemas.VOLUME_PATH, 'update'): responses.update_volume,
    (schemas.SNAPSHOTS_PATH, 'create'): responses.create_snapshot,
    (schemas.SNAPSHOTS_PATH, 'read'): responses.list_snapshots,
    (schemas.SNAPSHOT_PATH, 'read'): responses.get_snapshot,
    (schemas.SNAPSHOT_PATH, 'delete'): responses.delete_snapshot,
    ('/initiators', 'create'): responses.create_initiator,
    ('/initiators', 'read'): responses.list_initiators,
    ('/initiators/:initiator_id', 'read'): responses.get_initiator,
    ('/initiators/:initiator_id', 'update'): responses.update_initiator,
    ('/initiators/:initiator_id', 'delete'): responses.delete_initiator,
    ('/initiator_groups', 'create'): responses.create_initiator_group,
    ('/initiator_groups', 'read'): responses.list_initiator_groups,
    ('/initiator_groups/:name', 'read'): responses.get_initiator_group,
    ('/initiator_groups/:name', 'update'): responses.update_initiator_group,
    ('/initiator_groups/:name', 'delete'): responses.delete_initiator_group,
    ('/initiator_groups/:name/members', 'read'):
        responses.list_initiator_group_members,
    ('/initiator_groups/:name/members', 'update'):
        responses.change_initiator_group_members,
    ('/metrics/io/:metric', 'read'): responses.get_io_metric,
    ('/metrics/hw/:metric', 'read'): responses.get_hw_metric,
}

# (endpoint path, operation) -> Flask view(version): the endpoints that
# answer in formats of their own, outside the envelope.
VIEWS = {
    ('/login', 'update'): responses.login,
    ('/logout', 'update'): responses.logout,
    ('/api', 'read'): responses.api_document,
}

# Reads answering a list (filtered and paged).
LIST_READS = frozenset(
    endpoint.path for endpoint in schemas.ENDPOINTS
    if 'read' in endpoint.ops and
    endpoint.ops['read'].body('v2.2') is schemas.LIST_QUERY)


def flask_rule(api_path):
    """The Flask URL rule (without the version prefix) of an API path."""
    # A parameter with a regex (the tenant path) may hold slashes; it is
    # always last.
    path, has_regex = api_path.split('(', 1)[0], '(' in api_path
    segments = path.split('/')
    parts = []
    for i, segment in enumerate(segments):
        if segment.startswith(':'):
            last = i == len(segments) - 1
            converter = 'path:' if has_regex and last else ''
            parts.append('<%s%s>' % (converter, segment[1:]))
        else:
            parts.append(segment)
    return '/'.join(parts)
