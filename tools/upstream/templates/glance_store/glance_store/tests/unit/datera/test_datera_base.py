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

"""Fakes and tests shared by the single and multi store Datera tests.

The Datera cluster is faked at the store's REST client
(``edf.EdfClient``) and the host's iSCSI attach at os-brick's connector:
a file per volume stands for the LUN, so the store's own attach, write,
read and lifecycle code runs unchanged.
"""

import contextlib
import hashlib
import io
import os
from unittest import mock
import uuid

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_utils import units

from glance_store._drivers.datera import attach
from glance_store._drivers.datera import edf
from glance_store._drivers.datera import lifecycle
from glance_store._drivers.datera import store as datera_store
from glance_store._drivers.datera import stream
from glance_store import capabilities
from glance_store import exceptions

SAN_IP = '192.0.2.10'
DATA_IP = '192.0.2.20'
INITIATOR = 'iqn.1993-08.org.debian:01:glance-unit'
TARGET = 'iqn.2013-05.com.daterainc:tc:01:sn:%s'
CHUNK_SIZE = 64 * units.Ki


def uri_of(image_id, host=SAN_IP, port=7718):
    """The location URI the store gives an image."""
    return 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (host, port,
                                                         image_id)


class FakeEdfClient(object):
    """A Datera cluster as the store sees it through ``edf.EdfClient``.

    App instances are kept in a dict by image id: their size in GiB,
    description (the creation marker) and metadata.
    """

    def __init__(self, settings):
        self.settings = settings
        self.tenant = settings.tenant
        self.app_instances = {}
        self.created = []
        self.grown = []
        self.exports = set()
        self.full = False
        self._given_up = {}

    def operation(self, timeout=None, retries=True):
        return contextlib.nullcontext()

    def check_connection(self, timeout=None):
        pass

    def _ai(self, image_id):
        try:
            return self.app_instances[image_id]
        except KeyError:
            raise exceptions.NotFound(
                message='app instance %s not found' % image_id)

    def create_image_volume(self, image_id, size_gib, replica_count,
                            placement_mode, thin=True, marker=None):
        if self.full:
            raise exceptions.StorageFull()
        if image_id in self.app_instances:
            raise exceptions.Duplicate(message='%s exists' % image_id)
        self.created.append((image_id, size_gib, replica_count,
                             placement_mode))
        self.app_instances[image_id] = {'size': size_gib, 'descr': marker,
                                        'metadata': {}}

    def give_up(self, image_id, marker):
        self._given_up[image_id] = marker

    def given_up_marker(self, image_id):
        return self._given_up.get(image_id)

    def forget_given_up(self, image_id):
        self._given_up.pop(image_id, None)

    def reap_given_up(self):
        pass

    def reap_deleted(self):
        pass

    def grow_image_volume(self, image_id, size_gib):
        self._ai(image_id)['size'] = size_gib
        self.grown.append(size_gib)

    def image_record(self, image_id):
        ai = self._ai(image_id)
        return {'descr': ai['descr']}, dict(ai['metadata'])

    def delete_image_volume(self, image_id, force=False):
        self._ai(image_id)
        del self.app_instances[image_id]

    def delete_image(self, image_id):
        self.delete_image_volume(image_id)
        return True

    def is_deleted(self, image_id):
        return False

    def get_image_metadata(self, image_id):
        return dict(self._ai(image_id)['metadata'])

    def set_image_metadata(self, image_id, metadata):
        self._ai(image_id)['metadata'].update(
            {k: str(v) for k, v in metadata.items()})

    def volume_size_gib(self, image_id):
        return self._ai(image_id)['size']

    def ensure_initiator(self, iqn, name):
        pass

    def export_to(self, image_id, iqn, name=None):
        self._ai(image_id)
        self.exports.add((image_id, iqn))
        return {'iqn': TARGET % image_id, 'ips': [DATA_IP]}

    def wait_export_ready(self, image_id, timeout):
        pass

    def unexport_from(self, image_id, iqn):
        self.exports.discard((image_id, iqn))


class FakeConnector(object):
    """os-brick's iSCSI connector; a file per target stands for its LUN."""

    def __init__(self, device_dir, clients, gib=units.Gi):
        self.device_dir = device_dir
        self.clients = clients
        self.gib = gib
        self.device_path = None     # set: every target is this device
        self.connected = set()

    def _path(self, props):
        if self.device_path:
            return self.device_path
        return os.path.join(self.device_dir,
                            props['target_iqn'].rsplit(':', 1)[-1])

    def connect_volume(self, props):
        path = self._path(props)
        if not self.device_path:
            with open(path, 'ab'):
                pass
        self.connected.add(path)
        return {'type': 'block', 'path': path}

    def disconnect_volume(self, props, device_info, force=False):
        self.connected.discard(device_info['path'])

    def extend_volume(self, props):
        image_id = props['target_iqn'].rsplit(':', 1)[-1]
        for client in self.clients:
            if image_id in client.app_instances:
                return client.app_instances[image_id]['size'] * self.gib
        return 0


class FakeUnits(object):
    """oslo_utils.units with a GiB of 64 KiB: volumes grow in a test."""

    Ki = units.Ki
    Mi = units.Mi
    Gi = 64 * units.Ki


class DateraFixturesMixin(object):
    """setUp helpers: the fakes in place, the store's options set."""

    def setup_fakes(self):
        self.clients = []
        self.device_dir = self.useFixture(fixtures.TempDir()).path
        self.connector = FakeConnector(self.device_dir, self.clients)

        def new_client(settings):
            client = FakeEdfClient(settings)
            self.clients.append(client)
            return client

        brick = attach.brick_connector
        for target, name, kwargs in [
                (edf, 'EdfClient', {'side_effect': new_client}),
                (brick.InitiatorConnector, 'factory',
                 {'return_value': self.connector}),
                (brick, 'get_connector_properties',
                 {'return_value': {'initiator': INITIATOR}}),
                (attach.os_brick, 'setup', {}),
                (attach.priv_context, 'init', {}),
                # The store's own privileged step (a glance-api that does
                # not run as root is given the attached disk).
                (attach.privileged, 'own_device', {}),
                (attach.privileged, 'return_device', {})]:
            patcher = mock.patch.object(target, name, **kwargs)
            patcher.start()
            self.addCleanup(patcher.stop)
        # os-brick's and the store's locks live in [oslo_concurrency].
        global_conf = self.useFixture(config_fixture.Config(cfg.CONF))
        global_conf.config(lock_path=self.useFixture(fixtures.TempDir()).path,
                           group='oslo_concurrency')

    def datera_options(self, group, **overrides):
        options = {'datera_san_ip': SAN_IP,
                   'datera_san_login': 'glance',
                   'datera_san_password': 'secret',
                   'datera_chunk_size': CHUNK_SIZE}
        options.update(overrides)
        self.config(group=group, **options)


class TestDateraStoreBase(object):
    """The tests every Datera store configuration passes.

    A subclass sets ``self.store`` (configured), ``self.clients`` (the
    fake clients, in creation order) and ``self.connector``, and
    implements ``location(uri)`` and ``expected_metadata``.
    """

    def _add(self, data, size=None, image_id=None):
        image_id = image_id or str(uuid.uuid4())
        size = len(data) if size is None else size
        result = self.store.add(image_id, io.BytesIO(data), size, 'sha256')
        return image_id, result

    @property
    def client(self):
        return self.store.client

    def _device(self, image_id):
        return os.path.join(self.device_dir, image_id)

    def test_capabilities(self):
        self.assertTrue(self.store.is_capable(
            capabilities.BitMasks.RW_ACCESS,
            capabilities.BitMasks.READ_RANDOM,
            capabilities.BitMasks.DRIVER_REUSABLE))

    def test_add_known_size(self):
        data = os.urandom(3 * CHUNK_SIZE + 17)
        image_id, (uri, size, checksum, multihash, metadata) = self._add(
            data)
        self.assertEqual(uri_of(image_id), uri)
        self.assertEqual(len(data), size)
        self.assertEqual(hashlib.md5(data).hexdigest(), checksum)
        self.assertEqual(hashlib.sha256(data).hexdigest(), multihash)
        self.assertEqual(self.expected_metadata, metadata)
        self.assertEqual([(image_id, 1, 3, 'hybrid')], self.client.created)
        recorded = self.client.get_image_metadata(image_id)
        self.assertEqual(lifecycle.STATE_COMPLETE, recorded['upload_state'])
        self.assertEqual(str(len(data)), recorded['length'])
        self.assertEqual(checksum, recorded['checksum'])
        with open(self._device(image_id), 'rb') as device:
            self.assertEqual(data, device.read())
        # Released: disconnected and unexported.
        self.assertEqual(set(), self.connector.connected)
        self.assertEqual(set(), self.client.exports)

    def test_add_unknown_size(self):
        data = os.urandom(2 * CHUNK_SIZE + 5)
        image_id, (uri, size, checksum, multihash, metadata) = self._add(
            data, size=0)
        self.assertEqual(len(data), size)
        self.assertEqual(hashlib.md5(data).hexdigest(), checksum)
        # datera_default_image_size (1 GiB) holds it: no grow.
        self.assertEqual([(image_id, 1, 3, 'hybrid')], self.client.created)
        self.assertEqual([], self.client.grown)

    def test_add_unknown_size_grows_the_volume(self):
        # A GiB of 64 KiB: 200 KiB of unknown size pass the first GiB.
        self.connector.gib = FakeUnits.Gi
        data = os.urandom(200 * units.Ki)
        self.useFixture(fixtures.MockPatchObject(datera_store, 'units',
                                                 FakeUnits))
        self.useFixture(fixtures.MockPatchObject(stream, 'units', FakeUnits))
        image_id, (uri, size, checksum, _mh, _md) = self._add(data, size=0)
        self.assertEqual(len(data), size)
        self.assertEqual([2, 4], self.client.grown)
        with open(self._device(image_id), 'rb') as device:
            self.assertEqual(data, device.read())

    def test_add_size_mismatch(self):
        data = os.urandom(CHUNK_SIZE)
        image_id = str(uuid.uuid4())
        self.assertRaises(exceptions.Invalid, self._add, data,
                          size=len(data) + 1, image_id=image_id)
        self.assertRaises(exceptions.Invalid, self._add, data,
                          size=len(data) - 1, image_id=image_id)
        # The failed uploads left nothing behind.
        self.assertEqual({}, self.client.app_instances)

    def test_add_duplicate(self):
        image_id, _result = self._add(b'x' * 100)
        self.assertRaises(exceptions.Duplicate, self._add, b'y' * 100,
                          image_id=image_id)
        self.assertIn(image_id, self.client.app_instances)

    def test_add_replaces_an_abandoned_upload(self):
        image_id = str(uuid.uuid4())
        marker = lifecycle.creation_marker(now=0)
        self.client.create_image_volume(image_id, 1, 3, 'hybrid',
                                        marker=marker)
        _id, (uri, size, _c, _m, _md) = self._add(b'z' * 10,
                                                  image_id=image_id)
        self.assertEqual(10, size)

    def test_add_storage_full_on_create(self):
        self.client.full = True
        self.assertRaises(exceptions.StorageFull, self._add, b'x' * 10)

    def test_add_storage_full_on_write(self):
        if not os.path.exists('/dev/full'):
            self.skipTest('no /dev/full')
        self.connector.device_path = '/dev/full'
        self.assertRaises(exceptions.StorageFull, self._add,
                          os.urandom(CHUNK_SIZE))
        self.assertEqual({}, self.client.app_instances)

    def test_add_rejects_an_id_that_is_not_a_uuid(self):
        self.assertRaises(exceptions.Invalid, self._add, b'x',
                          image_id='not-a-uuid')
        self.assertEqual([], self.client.created)

    def test_get(self):
        data = os.urandom(2 * CHUNK_SIZE + 3)
        image_id, (uri, *_rest) = self._add(data)
        chunks, length = self.store.get(self.location(uri))
        self.assertEqual(len(data), length)
        self.assertEqual(data, b''.join(chunks))
        self.assertEqual(set(), self.connector.connected)

    def test_get_with_offset_and_length(self):
        data = os.urandom(3 * CHUNK_SIZE)
        image_id, (uri, *_rest) = self._add(data)
        offset, length = CHUNK_SIZE - 10, CHUNK_SIZE + 20
        chunks, size = self.store.get(self.location(uri), offset=offset,
                                      chunk_size=length)
        self.assertEqual(length, size)
        self.assertEqual(data[offset:offset + length], b''.join(chunks))

    def test_get_offset_past_the_end(self):
        image_id, (uri, *_rest) = self._add(b'x' * 10)
        self.assertRaises(exceptions.Invalid, self.store.get,
                          self.location(uri), offset=11)

    def test_get_detects_corrupted_data(self):
        data = os.urandom(2 * CHUNK_SIZE)
        image_id, (uri, *_rest) = self._add(data)
        with open(self._device(image_id), 'r+b') as device:
            device.seek(CHUNK_SIZE)
            device.write(b'\0' * 10)
        loc = self.location(uri)
        # The first chunk is read, and checked, before get() returns.
        chunks, _size = self.store.get(loc)
        self.assertEqual(data[:CHUNK_SIZE], next(chunks))
        self.assertRaises(exceptions.BackendException, next, chunks)
        chunks.close()
        # A read of the corrupted chunk alone fails at once.
        self.assertRaises(exceptions.BackendException, self.store.get, loc,
                          offset=CHUNK_SIZE, chunk_size=10)
        self.assertEqual(set(), self.connector.connected)

    def test_get_size(self):
        data = os.urandom(CHUNK_SIZE + 1)
        image_id, (uri, *_rest) = self._add(data)
        self.assertEqual(len(data), self.store.get_size(self.location(uri)))

    def test_delete(self):
        image_id, (uri, *_rest) = self._add(b'x' * 10)
        loc = self.location(uri)
        self.store.delete(loc)
        self.assertEqual({}, self.client.app_instances)
        self.assertRaises(exceptions.NotFound, self.store.get, loc)
        self.assertRaises(exceptions.NotFound, self.store.get_size, loc)
        self.assertRaises(exceptions.NotFound, self.store.delete, loc)

    def test_not_found(self):
        loc = self.location(uri_of(str(uuid.uuid4())))
        self.assertRaises(exceptions.NotFound, self.store.get, loc)
        self.assertRaises(exceptions.NotFound, self.store.get_size, loc)
        self.assertRaises(exceptions.NotFound, self.store.delete, loc)

    def test_upload_in_progress_is_not_readable(self):
        image_id = str(uuid.uuid4())
        self.client.create_image_volume(image_id, 1, 3, 'hybrid',
                                        marker=lifecycle.creation_marker())
        self.client.set_image_metadata(image_id, lifecycle.writer_metadata(
            INITIATOR, 'token'))
        self.assertRaises(exceptions.NotFound, self.store.get_size,
                          self.location(uri_of(image_id)))

    def test_missing_options_disable_writes(self):
        self.config(group=self.group, datera_san_password=None)
        store = datera_store.Store(self.conf, backend=self.backend)
        self.assertRaises(exceptions.BadStoreConfiguration,
                          store.configure_add)

    def test_invalid_option_value_disables_writes(self):
        self.config(group=self.group, datera_operation_max_timeout=0.5)
        store = datera_store.Store(self.conf, backend=self.backend)
        self.assertRaises(exceptions.BadStoreConfiguration,
                          store.configure_add)

    def test_missing_libraries_disable_writes(self):
        store = datera_store.Store(self.conf, backend=self.backend)
        with mock.patch.object(datera_store, 'edf', None):
            e = self.assertRaises(exceptions.BadStoreConfiguration,
                                  store.configure_add)
        self.assertIn('glance_store[datera]', str(e))
