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

"""Tests the Datera EDF backend store"""

import uuid

from glance_store._drivers.datera import store as datera_store
from glance_store import backend
from glance_store import exceptions
from glance_store import location
from glance_store.tests import base
from glance_store.tests.unit.datera import test_datera_base
from glance_store.tests.unit import test_store_capabilities

SAN_IP = test_datera_base.SAN_IP


class TestDateraStore(base.StoreBaseTest,
                      test_datera_base.DateraFixturesMixin,
                      test_datera_base.TestDateraStoreBase,
                      test_store_capabilities.TestStoreCapabilitiesChecking):

    group = 'glance_store'
    backend = None
    expected_metadata = {}

    def setUp(self):
        """Establish a clean test environment."""
        super(TestDateraStore, self).setUp()
        self.setup_fakes()
        self.datera_options(self.group)
        self.store = datera_store.Store(self.conf)
        self.store.configure()
        self.register_store_schemes(self.store, 'datera')

    def location(self, uri):
        return location.get_location_from_uri(uri, conf=self.conf)

    def test_default_store_accepts_datera(self):
        self.config(default_store='datera')
        self.assertEqual('datera', self.conf.glance_store.default_store)
        default_store = [opt for opt in backend._STORE_OPTS
                         if opt.name == 'default_store'][0]
        self.assertIn('datera', default_store.type.choices)

    def test_options_are_registered(self):
        names = [opt.name for opt in datera_store.Store.OPTIONS]
        self.assertIn('datera_san_ip', names)
        for name in names:
            self.assertIn(name, self.conf.glance_store)


class TestDateraStoreLocation(base.StoreBaseTest):

    def _parse(self, uri):
        loc = datera_store.StoreLocation({}, self.conf)
        loc.parse_uri(uri)
        return loc

    def test_parse_uri(self):
        image_id = str(uuid.uuid4())
        for prefix in ('OS-IMAGE-', 'OS-', ''):
            uri = 'datera://%s:7718/app_instances/%s%s' % (SAN_IP, prefix,
                                                           image_id)
            loc = self._parse(uri)
            self.assertEqual('datera', loc.scheme)
            self.assertEqual(SAN_IP, loc.host)
            self.assertEqual(7718, loc.port)
            self.assertEqual(image_id, loc.image_id)
            self.assertEqual(prefix + image_id, loc.app_instance_name)
            self.assertEqual(uri, loc.get_uri())

    def test_parse_ipv6_uri(self):
        image_id = str(uuid.uuid4())
        uri = 'datera://[2001:db8::10]:7717/app_instances/OS-IMAGE-%s' % (
            image_id)
        loc = self._parse(uri)
        self.assertEqual('[2001:db8::10]', loc.host)
        self.assertEqual(7717, loc.port)
        self.assertEqual(uri, loc.get_uri())

    def test_uri_from_specs(self):
        image_id = str(uuid.uuid4())
        loc = datera_store.StoreLocation(
            {'host': '2001:db8::10', 'port': 7718, 'image_id': image_id},
            self.conf)
        self.assertEqual('datera://[2001:db8::10]:7718/app_instances/'
                         'OS-IMAGE-%s' % image_id, loc.get_uri())

    def test_parse_bad_uris(self):
        image_id = str(uuid.uuid4())
        for uri in [
                'datera://%s/app_instances/OS-IMAGE-%s' % (SAN_IP, image_id),
                'datera://%s:0/app_instances/OS-IMAGE-%s' % (SAN_IP,
                                                             image_id),
                'datera://%s:77a/app_instances/OS-IMAGE-%s' % (SAN_IP,
                                                               image_id),
                'datera://%s:7718/volumes/OS-IMAGE-%s' % (SAN_IP, image_id),
                'datera://%s:7718/app_instances/OS-IMAGE-x' % SAN_IP,
                'datera://%s:7718/app_instances/OS-IMAGE-%s?a=b' % (
                    SAN_IP, image_id),
                'datera://%s:7718/app_instances/OS-IMAGE-%s\n' % (
                    SAN_IP, image_id),
                'datera://%s:7718' % SAN_IP,
                'rbd://%s:7718/app_instances/OS-IMAGE-%s' % (SAN_IP,
                                                             image_id)]:
            self.assertRaises(exceptions.BadStoreUri, self._parse, uri)
