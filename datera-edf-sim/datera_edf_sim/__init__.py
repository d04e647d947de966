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

"""A simulated Datera EDF cluster for tests, demos and benchmarks.

The REST API is laid out as moto lays out a service:

- ``models``: the control plane's state and rules, one module per
  resource (tenants, app instances, storage, snapshots...);
- ``responses``: the request handlers and the answer formats;
- ``urls``: which handler serves each endpoint and operation;
- ``exceptions``: the errors, with their HTTP status and Datera name;
- ``app``: the Flask application putting these together;
- ``schemas`` and ``apidoc`` describe the API.

Around it: ``dataplane`` (volume files, loop devices, export links) and
``iscsi_target``; ``faults`` (fault injection, request log) and ``admin``
(the ``/__sim__`` API driving it); ``server`` and ``cli`` run it all,
``fixture`` runs it in a subprocess for tests; ``defaults`` holds every
default setting.
"""
