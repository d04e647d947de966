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

"""A paste filter standing in for keystone in a test glance-api.

glance's own ``unauthenticated-context`` filter gives requests an admin
context without a project, and glance cannot record a task without an
owner, so the interoperable import flow fails with it. This filter gives
every request an admin context in one fixed project instead, which is what
an operator's admin token would carry.
"""

from glance.api.middleware import context as glance_context
import glance.context

#: The project that owns everything created through the test glance-api.
PROJECT_ID = '5ca1ab1e0000400080000000000000e2'
USER_ID = 'e2e-admin'


class NoAuthContextMiddleware(glance_context.BaseContextMiddleware):
    """Give each request an admin context in :data:`PROJECT_ID`."""

    def process_request(self, req):
        req.context = glance.context.RequestContext(
            user_id=USER_ID, project_id=PROJECT_ID,
            roles=['admin', 'member', 'reader'], is_admin=True,
            request_id=req.headers.get('X-Openstack-Request-ID'))


def filter_factory(global_conf, **local_conf):
    """The paste entry point (``paste.filter_factory``)."""
    def _filter(app):
        return NoAuthContextMiddleware(app)
    return _filter
