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

"""The simulator's endpoints and the JSON schemas of their bodies.

Written for the simulator to accept and refuse the same request bodies as
a Datera EDF cluster running the v2.1/v2.2 REST API (same fields, types,
ranges, name patterns and "no extra keys" rules), and to describe the
entities it returns. They are expressed independently of Datera's own
schema document; tests compare the two.

:data:`ENDPOINTS` is the one table of what the simulator serves. The HTTP
layer routes from it and :mod:`apidoc` builds the ``/api`` document from
it, so the document always lists exactly what is served.
"""

import collections

API_VERSIONS = ('v2.1', 'v2.2')

# Operation names as the /api document spells them, with their methods.
OP_METHODS = collections.OrderedDict([
    ('create', 'POST'),
    ('read', 'GET'),
    ('update', 'PUT'),
    ('delete', 'DELETE'),
])

_UUID = '[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}'
_NAME = r'[A-Za-z_][A-Za-z0-9_.\-]{2,63}'

NAME = {'type': 'string', 'pattern': '^%s$' % _NAME}
UUID = {'type': 'string', 'pattern': '^%s$' % _UUID}
# App instance and tenant names may also be a bare UUID.
AI_NAME = {'type': 'string', 'pattern': '^(?:%s|%s)$' % (_UUID, _NAME)}
DESCR = {'type': ['string', 'null'],
         'pattern': r'^[A-Za-z_][A-Za-z0-9_\-\s.]{2,127}$'}
PATH = {'type': 'string', 'pattern': '^(?:/|(?:/[^/]+)+)$'}
REF = {
    'type': 'object',
    'properties': {'path': PATH},
    'required': ['path'],
    'additionalProperties': False,
}
REFS = {'type': 'array', 'items': REF}
IQN = {
    'type': 'string',
    'minLength': 16,
    'maxLength': 223,
    'pattern': (r'^(?:iqn\.[0-9]{4}-[01][0-9]\.[^/]*\.[^/]*'
                r'|eui\.[0-9A-Fa-f]{16})$'),
}
INITIATOR_NAME = {'type': 'string',
                  'pattern': r'^[A-Za-z_][A-Za-z0-9_\-\s.]{2,127}$'}
BOOLEAN = {'type': 'boolean'}
ADMIN_STATE = {'enum': ['online', 'offline']}
ACCESS_CONTROL_MODE = {'enum': ['allow_all', 'deny_all']}
PLACEMENT_MODE = {'enum': ['hybrid', 'single_flash', 'all_flash']}
REPLICA_COUNT = {'type': 'integer', 'minimum': 1, 'maximum': 5}
SIZE_GIB = {'type': 'number', 'minimum': 1, 'maximum': 32768}
CREATE_MODES = ['normal', 'openstack', 'internal', 'docker', 'cloudstack',
                'kubernetes', 'mesos', 'vmware_vro', 'vmware_vcenter',
                'docker_swarm']
OPERATION = {'type': 'string', 'enum': ['add', 'remove']}


def _object(properties, required=(), closed=True):
    schema = {'type': 'object', 'properties': properties}
    if required:
        schema['required'] = list(required)
    if closed:
        schema['additionalProperties'] = False
    return schema


SNAPSHOT_POLICY = _object({
    'name': NAME,
    'interval': {'enum': ['1min', '2min', '15min', '1hour', '1day', '1week',
                          '1month', '1year']},
    'retention_count': {'type': 'integer', 'minimum': 1, 'maximum': 256},
    'start_time': {'type': 'string', 'format': 'date-time'},
}, required=['name', 'interval', 'retention_count'])
SNAPSHOT_POLICIES = {'type': 'array', 'items': SNAPSHOT_POLICY}

_IOPS = {'type': 'integer', 'minimum': 0, 'maximum': 10000000}
_BANDWIDTH = {'type': 'integer', 'minimum': 0, 'maximum': 10240000}
PERFORMANCE_POLICY = _object({
    'read_iops_max': _IOPS,
    'write_iops_max': _IOPS,
    'total_iops_max': _IOPS,
    'read_bandwidth_max': _BANDWIDTH,
    'write_bandwidth_max': _BANDWIDTH,
    'total_bandwidth_max': _BANDWIDTH,
})

_CHAP_SECRET = {'type': 'string', 'minLength': 12, 'maxLength': 16}
_AUTH_PROPERTIES = {
    'type': {'type': 'string', 'enum': ['none', 'chap', 'mchap']},
    'initiator_user_name': NAME,
    'initiator_pswd': _CHAP_SECRET,
    'target_user_name': NAME,
    'target_pswd': _CHAP_SECRET,
}
AUTH_CREATE = _object(_AUTH_PROPERTIES, required=['type'])
AUTH_UPDATE = _object(_AUTH_PROPERTIES)

ACL_POLICY_BODY = _object({'initiators': REFS, 'initiator_groups': REFS})

VOLUME_CREATE = _object({
    'name': NAME,
    'size': SIZE_GIB,
    'replica_count': REPLICA_COUNT,
    'placement_mode': PLACEMENT_MODE,
    'performance_policy': PERFORMANCE_POLICY,
    'snapshot_policies': SNAPSHOT_POLICIES,
}, required=['name', 'size'])

STORAGE_INSTANCE_CREATE = _object({
    'name': NAME,
    'access': _object({}),
    'access_control_mode': ACCESS_CONTROL_MODE,
    'acl_policy': ACL_POLICY_BODY,
    'admin_state': ADMIN_STATE,
    'auth': AUTH_CREATE,
    'ip_pool': REF,
    'volumes': {'type': 'array', 'items': VOLUME_CREATE},
}, required=['name'])

APP_INSTANCE_CREATE = _object({
    'name': AI_NAME,
    'descr': DESCR,
    'uuid': UUID,
    'create_mode': {'type': 'string', 'enum': CREATE_MODES},
    'access_control_mode': ACCESS_CONTROL_MODE,
    'app_template': REF,
    'clone_src': REF,
    'clone_snapshot_src': REF,
    'clone_volume_src': REF,
    'snapshot_policies': SNAPSHOT_POLICIES,
    'storage_instances': {'type': 'array',
                          'items': STORAGE_INSTANCE_CREATE},
}, required=['name'])

APP_INSTANCE_UPDATE = _object({
    'admin_state': ADMIN_STATE,
    'force': BOOLEAN,
    'name': AI_NAME,
    'provisioned': BOOLEAN,
    'restore_point': {'type': 'string'},
    'snapshot_policies': SNAPSHOT_POLICIES,
    'storage_instances': {'type': 'array',
                          'items': STORAGE_INSTANCE_CREATE},
})

SNAPSHOT_CREATE = _object({'uuid': UUID})

FORCE_DELETE = _object({'force': BOOLEAN})
EMPTY = _object({})

STORAGE_INSTANCE_UPDATE = _object({
    'access_control_mode': ACCESS_CONTROL_MODE,
    'acl_policy': ACL_POLICY_BODY,
    'admin_state': ADMIN_STATE,
    'auth': AUTH_UPDATE,
    'force': BOOLEAN,
    'ip_pool': REF,
    'volumes': {'type': 'array', 'items': VOLUME_CREATE},
})

VOLUME_UPDATE = _object({
    'size': SIZE_GIB,
    'replica_count': REPLICA_COUNT,
    'placement_mode': PLACEMENT_MODE,
    'restore_point': {'type': 'string'},
})

# {"op": "add"|"remove", "path": ...}: extra keys are tolerated, as on the
# cluster (dfs_sdk may leave a "tenant" key it did not pop).
LINK_OPERATION = _object({'op': OPERATION, 'path': PATH},
                         required=['op', 'path'], closed=False)

INITIATOR_CREATE_V21 = _object({'id': IQN, 'name': INITIATOR_NAME},
                               required=['id', 'name'])
# v2.2 lets a host register an IQN that another tenant already holds.
INITIATOR_CREATE_V22 = _object({'id': IQN, 'name': INITIATOR_NAME,
                                'force': BOOLEAN},
                               required=['id', 'name'])
INITIATOR_UPDATE = _object({'name': INITIATOR_NAME})

INITIATOR_GROUP_CREATE = _object({'name': NAME, 'members': REFS},
                                 required=['name'])
INITIATOR_GROUP_UPDATE = _object({'members': REFS})

TENANT_CREATE = _object({'name': AI_NAME, 'parent_path': {'type': 'string'}},
                        required=['name'])

LOGIN = _object({
    'name': {'type': 'string', 'pattern': '^[A-Za-z0-9_]{3,32}$'},
    'password': {'type': 'string',
                 'pattern': r'^[A-Za-z_][A-Za-z0-9_\-.]{2,127}$'},
    # LDAP users name their server; the cluster takes any value here.
    'remote_server': {},
}, required=['name', 'password'], closed=False)

METADATA = {
    'type': 'object',
    'additionalProperties': {'type': ['string', 'number', 'boolean']},
}
ECOSYSTEM_DATA = _object({'data': METADATA}, required=['data'])

# Query parameters of list requests (validated after integer conversion).
LIST_QUERY = _object({
    'filter': {'type': 'string', 'pattern': r'^\S*$'},
    'limit': {'type': 'integer', 'minimum': 0, 'maximum': 1000},
    'offset': {'type': 'integer', 'minimum': 0},
    'sort': {'type': 'string', 'pattern': r'^\S*$'},
}, closed=False)

METRIC_QUERY = _object({
    'from': {'type': ['string', 'integer']},
    'to': {'type': ['string', 'integer']},
    'since': {'type': 'string', 'pattern': r'^(?:[0-9]+[dhms])+$'},
    'path': {'type': 'string'},
    'uuid': UUID,
})

IO_METRICS = ['reads', 'writes', 'bytes_read', 'bytes_written', 'iops_read',
              'iops_write', 'thpt_read', 'thpt_write', 'lat_avg_read',
              'lat_avg_write']
HW_METRICS = ['cpu_usage', 'mem_usage', 'nic_rx', 'nic_tx']

# Returned entities. Open objects: fields may be added without breaking
# clients.

_HEALTH = {'enum': ['unknown', 'ok', 'warning', 'critical']}
_CAUSES = {'type': 'array'}
_ENTITY_PATH = {'type': 'string'}
_TENANT = {'type': 'string'}


def _entity(properties):
    properties = dict(properties, path=_ENTITY_PATH, tenant=_TENANT)
    return {'type': 'object', 'properties': properties,
            'required': ['path'], 'additionalProperties': True}


SNAPSHOT = _entity({
    'timestamp': {'type': 'string',
                  'pattern': r'^[0-9]+\.[0-9]{9}$'},
    # Seconds, as text: clients read it with float().
    'utc_ts': {'type': 'string', 'pattern': '^[0-9]+$'},
    'uuid': UUID,
    'op_state': {'enum': ['creating', 'available']},
})

VOLUME = _entity({
    'name': NAME,
    'uuid': {'type': 'string'},
    'size': SIZE_GIB,
    'replica_count': REPLICA_COUNT,
    'placement_mode': PLACEMENT_MODE,
    'capacity_in_use': {'type': 'number', 'minimum': 0},
    'op_state': {'type': 'string'},
    'op_status': {'enum': ['volume_resize_in_progress']},
    'availability_state': {'enum': ['available', 'unavailable']},
    'deployment_state': {'enum': ['deployed', 'not_deployed', 'failed']},
    'health': _HEALTH,
    'causes': _CAUSES,
    'active_storage_nodes': REFS,
    'snapshots': {'type': 'array', 'items': SNAPSHOT},
    'snapshot_policies': {'type': 'array'},
})

ACL_POLICY = _entity({'initiators': REFS, 'initiator_groups': REFS})

STORAGE_INSTANCE = _entity({
    'name': NAME,
    'uuid': {'type': 'string'},
    'admin_state': ADMIN_STATE,
    'op_state': {'enum': ['available', 'unavailable', 'failed']},
    'deployment_state': {'enum': ['deployed', 'not_deployed', 'failed']},
    'health': _HEALTH,
    'causes': _CAUSES,
    'access_control_mode': ACCESS_CONTROL_MODE,
    'access': {
        'type': 'object',
        'properties': {'ips': {'type': 'array',
                               'items': {'type': 'string'}},
                       'iqn': {'type': 'string'},
                       'path': _ENTITY_PATH},
    },
    'acl_policy': ACL_POLICY,
    'active_initiators': {'type': 'array', 'items': {'type': 'string'}},
    'active_storage_nodes': REFS,
    'ip_pool': REF,
    'volumes': {'type': 'array', 'items': VOLUME},
})

APP_INSTANCE = _entity({
    'id': UUID,
    'uuid': UUID,
    'name': AI_NAME,
    'descr': {'type': 'string'},
    'admin_state': ADMIN_STATE,
    'create_mode': {'type': 'string', 'enum': CREATE_MODES},
    'access_control_mode': ACCESS_CONTROL_MODE,
    'deployment_state': {'enum': ['deployed', 'failed', 'degraded']},
    'health': _HEALTH,
    'causes': _CAUSES,
    'storage_instances': {'type': 'array', 'items': STORAGE_INSTANCE},
    'snapshots': {'type': 'array'},
    'snapshot_policies': {'type': 'array'},
})

INITIATOR = _entity({'id': IQN, 'name': INITIATOR_NAME})
INITIATOR_GROUP = _entity({'name': NAME, 'members': REFS})
TENANT = _entity({
    'name': {'type': 'string'},
    'parent_path': {'type': 'string'},
    'subtenants': {'type': 'array', 'items': {'type': 'string'}},
})
SYSTEM = _entity({
    'name': {'type': 'string'},
    'uuid': {'type': 'string'},
    'sw_version': {'type': 'string',
                   'pattern': r'^[0-9]+(?:\.[0-9]+){3}$'},
    'op_state': {'enum': ['running']},
    'health': _HEALTH,
    'total_capacity': {'type': 'integer'},
    'available_capacity': {'type': 'integer'},
})
STORAGE_NODE = _entity({
    'name': {'type': 'string'},
    'uuid': {'type': 'string'},
    'op_state': {'type': 'string'},
    'health': _HEALTH,
})


class Op(object):
    """One operation of an endpoint.

    :param body: schema of the request body, or of the query parameters
        for reads.
    :param body_by_version: ``{version: schema}`` where a version differs.
    :param returns: schema of the returned entity (of each list item).
    :param descr: one line for the ``/api`` document.
    """

    def __init__(self, descr, body=EMPTY, returns=None, entity=None,
                 body_by_version=None):
        self.descr = descr
        self._body = body
        self._body_by_version = body_by_version or {}
        self.returns = returns
        self.entity = entity

    def body(self, version):
        return self._body_by_version.get(version, self._body)


class Endpoint(object):
    """A path of the API (``/app_instances/:id``) and its operations.

    :param versions: the API versions whose ``/api`` document lists it
        (every endpoint is served under both versions).
    """

    def __init__(self, path, ops, versions=API_VERSIONS):
        self.path = path
        self.ops = ops
        self.versions = versions

    @property
    def url_params(self):
        params = []
        for segment in self.path.split('/'):
            if segment.startswith(':'):
                params.append(segment[1:].split('(', 1)[0])
        return params


AI_PATH = '/app_instances/:id'
SI_PATH = AI_PATH + '/storage_instances/:storage_instance_name'
VOLUME_PATH = SI_PATH + '/volumes/:volume_name'
SNAPSHOTS_PATH = VOLUME_PATH + '/snapshots'
SNAPSHOT_PATH = SNAPSHOTS_PATH + '/:timestamp'
TENANT_PATH = ('/tenants/:tenant_path([A-Za-z0-9_-]+'
               '(?:/[.A-Za-z0-9_-]+)*)')

# Schemas of URL parameters, for the /api document.
URL_PARAMS = {
    'id': UUID,
    'storage_instance_name': NAME,
    'volume_name': NAME,
    'initiator_id': IQN,
    'name': NAME,
    'tenant_path': {'type': 'string'},
    'uuid': UUID,
    'timestamp': {'type': 'string'},
}

ENDPOINTS = [
    Endpoint('/login', {
        'update': Op('Open a session; answers its key', body=LOGIN),
    }),
    Endpoint('/logout', {
        'update': Op('End the session of the given key'),
    }),
    Endpoint('/api', {
        'read': Op('This document', body=_object(
            {'group_by': {'enum': ['group', 'route']},
             'group_filter': {'type': 'string'}})),
    }),
    Endpoint('/system', {
        'read': Op('Cluster name, version and capacity', returns=SYSTEM,
                   entity='system'),
    }),
    Endpoint('/storage_nodes', {
        'read': Op('List storage nodes', body=LIST_QUERY,
                   returns=STORAGE_NODE, entity='storage_node'),
    }),
    Endpoint('/storage_nodes/:uuid', {
        'read': Op('Show a storage node', returns=STORAGE_NODE,
                   entity='storage_node'),
    }),
    Endpoint('/tenants', {
        'create': Op('Create a tenant under parent_path (default /root)',
                     body=TENANT_CREATE, returns=TENANT, entity='tenant'),
        'read': Op('List the request tenant and the tenants below it',
                   body=LIST_QUERY, returns=TENANT, entity='tenant'),
    }),
    Endpoint(TENANT_PATH, {
        'read': Op('Show a tenant by its path without the leading slash',
                   returns=TENANT, entity='tenant'),
        'delete': Op('Delete an empty tenant', returns=TENANT,
                     entity='tenant'),
    }),
    Endpoint('/app_instances', {
        'create': Op('Create an app instance with its storage instances '
                     'and volumes, or as a copy of clone_src, '
                     'clone_volume_src or clone_snapshot_src',
                     body=APP_INSTANCE_CREATE,
                     returns=APP_INSTANCE, entity='app_instance'),
        'read': Op('List app instances (filter, sort, offset, limit)',
                   body=LIST_QUERY, returns=APP_INSTANCE,
                   entity='app_instance'),
    }),
    Endpoint(AI_PATH, {
        'read': Op('Show an app instance', returns=APP_INSTANCE,
                   entity='app_instance'),
        'update': Op('Change admin_state (online, offline) or the name',
                     body=APP_INSTANCE_UPDATE, returns=APP_INSTANCE,
                     entity='app_instance'),
        'delete': Op('Delete an offline app instance (or any, with force)',
                     body=FORCE_DELETE, returns=APP_INSTANCE,
                     entity='app_instance'),
    }),
    Endpoint(AI_PATH + '/metadata', {
        'read': Op('Show the metadata map', returns=METADATA),
        'update': Op('Merge keys into the metadata map', body=METADATA,
                     returns=METADATA),
    }),
    Endpoint(AI_PATH + '/int_ecosystem_data', {
        'read': Op('Show the metadata map', returns=METADATA),
        'update': Op('Merge data into the metadata map',
                     body=ECOSYSTEM_DATA, returns=METADATA),
    }, versions=('v2.2',)),
    Endpoint(AI_PATH + '/storage_instances', {
        'read': Op('List storage instances', body=LIST_QUERY,
                   returns=STORAGE_INSTANCE, entity='storage_instance'),
    }),
    Endpoint(SI_PATH, {
        'read': Op('Show a storage instance', returns=STORAGE_INSTANCE,
                   entity='storage_instance'),
        'update': Op('Change ACL policy or access control mode',
                     body=STORAGE_INSTANCE_UPDATE, returns=STORAGE_INSTANCE,
                     entity='storage_instance'),
    }),
    Endpoint(SI_PATH + '/acl_policy', {
        'read': Op('Show the ACL policy', returns=ACL_POLICY,
                   entity='acl_policy'),
        'update': Op('Replace the given ACL lists', body=ACL_POLICY_BODY,
                     returns=ACL_POLICY, entity='acl_policy'),
    }),
    Endpoint(SI_PATH + '/acl_policy/initiators', {
        'read': Op('List the initiators in the ACL', body=LIST_QUERY,
                   returns=INITIATOR, entity='initiator'),
        'update': Op('Add or remove one initiator atomically',
                     body=LINK_OPERATION, returns=INITIATOR,
                     entity='initiator'),
    }),
    Endpoint(SI_PATH + '/acl_policy/initiator_groups', {
        'read': Op('List the initiator groups in the ACL', body=LIST_QUERY,
                   returns=INITIATOR_GROUP, entity='initiator_group'),
        'update': Op('Add or remove one initiator group atomically',
                     body=LINK_OPERATION, returns=INITIATOR_GROUP,
                     entity='initiator_group'),
    }),
    Endpoint(SI_PATH + '/volumes', {
        'read': Op('List volumes', body=LIST_QUERY, returns=VOLUME,
                   entity='volume'),
    }),
    Endpoint(VOLUME_PATH, {
        'read': Op('Show a volume', returns=VOLUME, entity='volume'),
        'update': Op('Grow a volume or change its placement',
                     body=VOLUME_UPDATE, returns=VOLUME, entity='volume'),
    }),
    Endpoint(SNAPSHOTS_PATH, {
        'create': Op("Freeze a copy of the volume's bytes now",
                     body=SNAPSHOT_CREATE, returns=SNAPSHOT,
                     entity='snapshot'),
        'read': Op("List the volume's snapshots", body=LIST_QUERY,
                   returns=SNAPSHOT, entity='snapshot'),
    }),
    Endpoint(SNAPSHOT_PATH, {
        'read': Op('Show one snapshot by its timestamp', returns=SNAPSHOT,
                   entity='snapshot'),
        'delete': Op('Delete a snapshot (clones made of it stay)',
                     returns=SNAPSHOT, entity='snapshot'),
    }),
    Endpoint('/initiators', {
        'create': Op('Register an initiator', body=INITIATOR_CREATE_V22,
                     body_by_version={'v2.1': INITIATOR_CREATE_V21},
                     returns=INITIATOR, entity='initiator'),
        'read': Op('List initiators', body=LIST_QUERY, returns=INITIATOR,
                   entity='initiator'),
    }),
    Endpoint('/initiators/:initiator_id', {
        'read': Op('Show an initiator', returns=INITIATOR,
                   entity='initiator'),
        'update': Op('Rename an initiator', body=INITIATOR_UPDATE,
                     returns=INITIATOR, entity='initiator'),
        'delete': Op('Delete an initiator no ACL or group uses',
                     returns=INITIATOR, entity='initiator'),
    }),
    Endpoint('/initiator_groups', {
        'create': Op('Make a named group of initiators',
                     body=INITIATOR_GROUP_CREATE,
                     returns=INITIATOR_GROUP, entity='initiator_group'),
        'read': Op('List initiator groups', body=LIST_QUERY,
                   returns=INITIATOR_GROUP, entity='initiator_group'),
    }),
    Endpoint('/initiator_groups/:name', {
        'read': Op('Show an initiator group', returns=INITIATOR_GROUP,
                   entity='initiator_group'),
        'update': Op('Replace the members', body=INITIATOR_GROUP_UPDATE,
                     returns=INITIATOR_GROUP, entity='initiator_group'),
        'delete': Op('Delete an initiator group no ACL uses',
                     returns=INITIATOR_GROUP, entity='initiator_group'),
    }),
    Endpoint('/initiator_groups/:name/members', {
        'read': Op('List the members', body=LIST_QUERY, returns=INITIATOR,
                   entity='initiator'),
        'update': Op('Add or remove one member atomically',
                     body=LINK_OPERATION, returns=INITIATOR,
                     entity='initiator'),
    }),
    Endpoint('/metrics/io/:metric', {
        'read': Op('I/O metrics (the simulator records none)',
                   body=METRIC_QUERY),
    }),
    Endpoint('/metrics/hw/:metric', {
        'read': Op('Hardware metrics (the simulator records none)',
                   body=METRIC_QUERY),
    }),
]

METRIC_ENUMS = {
    '/metrics/io/:metric': IO_METRICS,
    '/metrics/hw/:metric': HW_METRICS,
}


def find(path):
    """The endpoint with this ``/api`` path."""
    for endpoint in ENDPOINTS:
        if endpoint.path == path:
            return endpoint
    raise KeyError(path)
