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

"""Tests the Datera EDF backend store with multistore configuration"""

import io
import uuid

from oslo_config import cfg

import glance_store as store
from glance_store._drivers.datera import store as datera_store
from glance_store import exceptions
from glance_store import location as g_location
from glance_store.tests import base
from glance_store.tests.unit.datera import test_datera_base
from glance_store.tests.unit import test_store_capabilities


class TestMultiStore(base.MultiStoreBaseTest,
                     test_datera_base.DateraFixturesMixin,
                     test_datera_base.TestDateraStoreBase,
                     test_store_capabilities.TestStoreCapabilitiesChecking):

    # NOTE(flaper87): temporary until we
    # can move to a fully-local lib.
    # (Swift store's fault)
    _CONF = cfg.ConfigOpts()

    group = 'datera1'
    backend = 'datera1'
    expected_metadata = {'store': 'datera1'}

    def setUp(self):
        """Establish a clean test environment."""
        super(TestMultiStore, self).setUp()
        self.setup_fakes()
        enabled_backends = {
            'datera1': 'datera',
            'datera2': 'datera',
        }
        self.conf = self._CONF
        self.conf(args=[])
        self.conf.register_opt(cfg.DictOpt('enabled_backends'))
        self.config(enabled_backends=enabled_backends)
        store.register_store_opts(self.conf)
        self.config(default_backend='datera1', group='glance_store')
        self.datera_options('datera1')
        self.datera_options('datera2', datera_san_ip='192.0.2.11',
                            datera_tenant_id='/root/glance')

        # Ensure stores + locations cleared
        g_location.SCHEME_TO_CLS_BACKEND_MAP = {}
        store.create_multi_stores(self.conf)
        self.addCleanup(setattr, g_location, 'SCHEME_TO_CLS_BACKEND_MAP',
                        dict())
        self.addCleanup(self.conf.reset)

        self.store = datera_store.Store(self.conf, backend=self.backend)
        self.store.configure()

    def location(self, uri, backend=None):
        return g_location.get_location_from_uri_and_backend(
            uri, backend or self.backend, conf=self.conf)

    def test_backends_are_loaded(self):
        backends = g_location.SCHEME_TO_CLS_BACKEND_MAP['datera']
        self.assertEqual({'datera1', 'datera2'}, set(backends))
        for backend, entry in backends.items():
            self.assertIsInstance(entry['store'], datera_store.Store)
            self.assertEqual(backend, entry['store'].backend_group)
            self.assertIs(datera_store.StoreLocation,
                          entry['location_class'])

    def test_add_to_different_backend(self):
        store2 = datera_store.Store(self.conf, backend='datera2')
        store2.configure()
        image_id = str(uuid.uuid4())
        uri, size, checksum, multihash, metadata = store2.add(
            image_id, io.BytesIO(b'*' * 1000), 1000, 'sha256')
        self.assertEqual('datera://192.0.2.11:7718/app_instances/'
                         'OS-IMAGE-%s' % image_id, uri)
        self.assertEqual({'store': 'datera2'}, metadata)
        self.assertEqual('/root/glance', store2.client.tenant)
        self.assertIn(image_id, store2.client.app_instances)
        self.assertNotIn(image_id, self.store.client.app_instances)
        loc = self.location(uri, 'datera2')
        self.assertEqual(1000, store2.get_size(loc))
        # The other backend does not hold it.
        self.assertRaises(exceptions.NotFound, self.store.get_size,
                          self.location(uri))

    def test_options_are_per_backend(self):
        store2 = datera_store.Store(self.conf, backend='datera2')
        self.assertEqual(test_datera_base.SAN_IP,
                         self.store.store_conf.datera_san_ip)
        self.assertEqual('192.0.2.11', store2.store_conf.datera_san_ip)
        # Unset in the group: the option's default.
        self.assertEqual('/root', self.store.store_conf.datera_tenant_id)
        self.assertEqual('/root/glance', store2.store_conf.datera_tenant_id)
