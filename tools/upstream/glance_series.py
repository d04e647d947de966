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

"""The glance series: ``GET /v2/info/stores/detail`` for every store type.

glance's ``InfoController.get_stores_detail`` looks each backend's type
up in a fixed map of property functions and calls what it finds; for a
type outside the map (``datera``, or any driver glance does not know)
it calls None, and the whole request fails with HTTP 500
(``glance stores-info --detail``). One commit:

- a type without a property function answers with no properties;
- ``datera`` backends answer with the cluster address, tenant and data
  layout (never the login or password);
- unit tests in glance's style (``test_discovery_stores.py``), which do
  not need the Datera driver installed: its store is faked;
- a release note.
"""

import hashlib

from tools.upstream import transform

PROJECT = 'glance'

DISCOVERY = 'glance/api/v2/discovery.py'
TESTS = 'glance/tests/unit/v2/test_discovery_stores.py'

_HTTP_PROPERTIES = '''\
    @staticmethod
    def _get_http_properties(store_detail):
        # NOTE(mrjoshi): Thre are no useful properties
        # to be exposed.
        return {}
'''

_NEW_PROPERTIES = '''
    @staticmethod
    def _get_datera_properties(store_detail):
        # NOTE: the cluster and the data layout, never the credentials
        # (datera_san_login, datera_san_password).
        store_conf = store_detail.store_conf
        return {
            'san_ip': store_conf.datera_san_ip,
            'san_port': store_conf.datera_san_port,
            'tenant_id': store_conf.datera_tenant_id,
            'replica_count': store_conf.datera_replica_count,
            'placement_mode': store_conf.datera_placement_mode,
            'thin_provisioning': store_conf.datera_thin_provisioning,
            'chunk_size': store_conf.datera_chunk_size,
        }

    @staticmethod
    def _get_no_properties(store_detail):
        # NOTE: a store type without properties of its own here (a
        # driver this map does not know yet) answers with none instead
        # of failing the whole request.
        return {}
'''

_MAPPER_OLD = '''\
                's3': self._get_s3_properties,
                'http': self._get_http_properties
            }
'''

_MAPPER_NEW = '''\
                's3': self._get_s3_properties,
                'http': self._get_http_properties,
                'datera': self._get_datera_properties,
            }
'''

_CALL_OLD = '''\
                store['properties'] = store_mapper.get(store_type)(
                    store_detail)
'''

_CALL_NEW = '''\
                get_properties = store_mapper.get(store_type,
                                                  self._get_no_properties)
                store['properties'] = get_properties(store_detail)
'''

_TEST_IMPORTS_OLD = '''\
import glance_store
from oslo_config import cfg
import webob.exc
'''

_TEST_IMPORTS_NEW = '''\
from unittest import mock

import glance_store
from oslo_config import cfg
from oslo_serialization import jsonutils
import webob.exc
'''

_TEST_ANCHOR = '''\
    def test_get_stores_detail_non_admin(self):
'''

_NEW_TESTS = '''\
    def _get_stores_detail_with(self, store_id, store_detail):
        # glance_store answers with store_detail for store_id.
        get_store = glance_store.get_store_from_store_identifier

        def fake_get_store(identifier):
            if identifier == store_id:
                return store_detail
            return get_store(identifier)

        req = unit_test_utils.get_fake_request(roles=['admin'])
        with mock.patch.object(glance_store,
                               'get_store_from_store_identifier',
                               side_effect=fake_get_store):
            output = self.controller.get_stores_detail(req)
        return {store['id']: store for store in output['stores']}, output

    def test_get_stores_detail_unknown_store_type(self):
        # A store type without properties of its own answers with none.
        self.config(enabled_backends={'fast': 'file', 'cheap': 'unknown'})
        stores, _output = self._get_stores_detail_with('cheap', mock.Mock())
        self.assertEqual('unknown', stores['cheap']['type'])
        self.assertEqual({}, stores['cheap']['properties'])
        self.assertIn('weight', stores['cheap'])
        self.assertEqual(['data_dir', 'chunk_size', 'thin_provisioning'],
                         list(stores['fast']['properties']))

    def test_get_stores_detail_datera_properties(self):
        self.config(enabled_backends={'fast': 'file', 'cheap': 'datera'})
        store_conf = mock.Mock(
            datera_san_ip='192.0.2.10', datera_san_port=7718,
            datera_tenant_id='/root/images', datera_replica_count=3,
            datera_placement_mode='hybrid', datera_thin_provisioning=False,
            datera_chunk_size=8388608, datera_san_login='glance-user',
            datera_san_password='s3cr3t')
        stores, output = self._get_stores_detail_with(
            'cheap', mock.Mock(store_conf=store_conf))
        self.assertEqual('datera', stores['cheap']['type'])
        self.assertEqual({'san_ip': '192.0.2.10',
                          'san_port': 7718,
                          'tenant_id': '/root/images',
                          'replica_count': 3,
                          'placement_mode': 'hybrid',
                          'thin_provisioning': False,
                          'chunk_size': 8388608},
                         stores['cheap']['properties'])
        body = jsonutils.dumps(output)
        self.assertNotIn('s3cr3t', body)
        self.assertNotIn('glance-user', body)

'''


RELEASE_NOTE_SLUG = 'stores-detail-any-store-type'

RELEASE_NOTE = """\
---
fixes:
  - |
    ``GET /v2/info/stores/detail`` (``glance stores-info --detail``) no
    longer fails with HTTP 500 when a backend's store type has no
    properties of its own in glance, as for a store driver added to
    glance_store after this release of glance: such a backend is listed
    with no properties. Datera EDF backends (``datera``) are listed with
    their ``san_ip``, ``san_port``, ``tenant_id``, ``replica_count``,
    ``placement_mode``, ``thin_provisioning`` and ``chunk_size``.
"""


def release_note_path():
    """reno's ``<slug>-<16 hex>.yaml``, the same on every run."""
    digest = hashlib.sha1(RELEASE_NOTE_SLUG.encode()).hexdigest()[:16]
    return 'releasenotes/notes/%s-%s.yaml' % (RELEASE_NOTE_SLUG, digest)


def commit_discovery(tree):
    """The fix and its tests, as {path: text}."""
    files = {}
    with open('%s/%s' % (tree, DISCOVERY)) as f:
        text = f.read()
    text = transform.Replace(_HTTP_PROPERTIES,
                             _HTTP_PROPERTIES + _NEW_PROPERTIES).apply(
        text, DISCOVERY)
    text = transform.Replace(_MAPPER_OLD, _MAPPER_NEW).apply(text, DISCOVERY)
    text = transform.Replace(_CALL_OLD, _CALL_NEW).apply(text, DISCOVERY)
    files[DISCOVERY] = text

    with open('%s/%s' % (tree, TESTS)) as f:
        text = f.read()
    text = transform.Replace(_TEST_IMPORTS_OLD, _TEST_IMPORTS_NEW).apply(
        text, TESTS)
    text = transform.Replace(_TEST_ANCHOR, _NEW_TESTS + _TEST_ANCHOR).apply(
        text, TESTS)
    files[TESTS] = text
    files[release_note_path()] = RELEASE_NOTE
    return files


COMMITS = [
    ('Answer stores detail for every store type', """\
GET /v2/info/stores/detail looks up a function for each backend's store
type in a fixed map and calls it; for a type outside the map it called
None and the request failed with HTTP 500, so that an admin listing
store details (glance stores-info --detail) got an error as soon as a
backend of such a type (datera, or any driver added to glance_store
later) was enabled.

A store type without a function now answers with no properties, and
Datera backends answer with their cluster address, tenant and data
layout (never the credentials).
""", commit_discovery),
]


def commits():
    """[(subject, body, function of the tree -> {path: text})]."""
    return list(COMMITS)
