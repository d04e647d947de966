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

"""The ``GET /api`` document, built from the simulator's own endpoints.

The document has the layout of a Datera cluster's: one key per endpoint
path (``/app_instances/:id``), each mapping operation names (``create``,
``read``, ``update``, ``delete``) to the operation's description, its
request body schema (``bodyParamSchema``), its returned entity schema
(``returnParamSchema``) and the schemas of its URL parameters
(``urlParamSchema``); plus ``version`` and ``request_time`` keys.

dfs_sdk reads it at login: it needs ``/metrics/io/:metric`` and
``/metrics/hw/:metric`` with ``read.urlParamSchema.metric.enum``, and, in
strict mode, every path segment it is asked to use (``app_instances``,
``acl_policy``, ``int_ecosystem_data``...).
"""

import copy

from datera_edf_sim import schemas

_MIN_VERSION = '1.0.0.0'


def _operation(endpoint, op_name, op, version):
    doc = {
        'op': op_name,
        'path': endpoint.path,
        'descr': op.descr,
        'minVersion': _MIN_VERSION,
        'bodyParamSchema': copy.deepcopy(op.body(version)),
    }
    if op.entity:
        doc['entity'] = op.entity
    if op.returns is not None:
        doc['returnParamSchema'] = copy.deepcopy(op.returns)
    params = {}
    for param in endpoint.url_params:
        if param == 'metric':
            params[param] = {
                'enum': list(schemas.METRIC_ENUMS[endpoint.path])}
        else:
            params[param] = copy.deepcopy(schemas.URL_PARAMS[param])
    if params:
        doc['urlParamSchema'] = params
    return doc


def build(version, request_time=0):
    """The ``/api`` document for one API version (``v2.1``, ``v2.2``).

    :param request_time: milliseconds the request took, as the cluster
        reports it.
    """
    if version not in schemas.API_VERSIONS:
        raise ValueError('unknown API version %r' % version)
    document = {}
    for endpoint in schemas.ENDPOINTS:
        if version not in endpoint.versions:
            continue
        document[endpoint.path] = {
            name: _operation(endpoint, name, op, version)
            for name, op in endpoint.ops.items()}
    document['version'] = version
    document['request_time'] = request_time
    return document
