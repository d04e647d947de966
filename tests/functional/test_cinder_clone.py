"""Cinder's own Datera driver clones images this store wrote.

Operators keep Glance images on their Datera cluster so that Cinder
creates volumes from them by server-side clone, without a byte passing
through a host. Here the store uploads an image to the simulator, and the
Datera volume driver of the pinned ``cinder`` release, constructed against
the same simulator and tenant with its image cache enabled, is asked to
``clone_image`` it (in a process of its own: :mod:`cinder_child`).

Cinder's driver reaches the cluster through dfs_sdk on the fixed port
7718, so the simulator listens there, on a loopback address of its own.
"""

import io
import json
import os
import random
import socket
import subprocess
import sys
import uuid

from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units
import pytest

from datera_edf_sim import fixture as sim_fixture
from tests.conftest import can_use_block_devices
from tests.functional import conftest as fx

BACKEND = fx.BACKEND
CACHE_TYPE = 'datera-image-cache-type'
PROJECT = 'a1b2c3d4e5f6478899aabbccddeeff00'
SDK_PORT = 7718     # dfs_sdk always talks to the cluster on this port
CHILD = os.path.join(os.path.dirname(__file__), 'cinder_child.py')
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, '-c', 'import cinder'],
                   capture_output=True).returncode != 0,
    reason='cinder is not installed (test-requirements.txt)')


def _free_loopback_address():
    """A 127.x.y.z whose port 7718 no other simulator holds."""
    while True:
        host = '127.%d.%d.%d' % (random.randint(1, 254),
                                 random.randint(1, 254),
                                 random.randint(2, 254))
        with socket.socket() as probe:
            try:
                probe.bind((host, SDK_PORT))
            except OSError:
                continue
        return host


@pytest.fixture
def sim(tmp_path, glance_conf, privsep_in_process):
    """The simulator on <loopback>:7718 and the store configured on it."""
    with sim_fixture.running_simulator(
            str(tmp_path / 'edf-sim'), block_devices=can_use_block_devices(),
            bind=_free_loopback_address(), port=SDK_PORT) as simulator:
        assert fx.configure_multi_store(
            glance_conf, {BACKEND: fx.datera_options(simulator)}) == 1
        yield simulator


def _cinder_clone_image(sim, image_id, image_uri, image_size, volume):
    """Cinder's driver's clone_image, run in a child; its outcome."""
    request = {'host': sim.host, 'username': sim.username,
               'password': sim.password, 'volume_type': CACHE_TYPE,
               'image_id': image_id, 'image_uri': image_uri,
               'image_size': image_size, 'volume': volume,
               'schema_cache': os.path.join(sim.data_dir,
                                            '.cinder-sdk-schema.json')}
    child = subprocess.run(
        [sys.executable, CHILD], input=json.dumps(request), text=True,
        capture_output=True, cwd=ROOT, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert child.returncode == 0, child.stderr[-4000:]
    return json.loads(child.stdout)


def _upload(image_id, data, declare_size):
    return multi_backend.add_with_multihash(
        cfg.CONF, image_id, io.BytesIO(data),
        len(data) if declare_size else 0, BACKEND, 'sha512')[0]


def _volume(size_gib):
    return {'id': str(uuid.uuid4()), 'size': size_gib,
            'project_id': PROJECT, 'volume_type_id': CACHE_TYPE,
            'display_name': 'from-image', 'host': 'cinder@datera#Datera'}


def _head(sim, ai_id, nbytes):
    with open(sim.volume_file(ai_id), 'rb') as f:
        return f.read(nbytes)


def _creates(sim):
    return [r for r in sim.requests()
            if r['method'] == 'POST' and
            r['api_path'].rstrip('/') == '/app_instances']


@pytest.mark.parametrize('declare_size', [True, False],
                         ids=['known size', 'unknown size'])
def test_cinder_clones_an_image_the_store_wrote(sim, declare_size):
    image_id = str(uuid.uuid4())
    data = os.urandom(3 * units.Mi + 11)
    uri = _upload(image_id, data, declare_size)
    volume = _volume(1)
    sim.clear_requests()

    outcome = _cinder_clone_image(sim, image_id, uri, len(data), volume)

    assert outcome == {'result': [None, True], 'image_service_asked': []}
    # one server-side clone of the image's volume, no copy through a host
    assert [r['clone'] for r in _creates(sim)] == [{
        'clone_volume_src': '/app_instances/%s/storage_instances/storage-1/'
                            'volumes/volume-1' % image_id}]
    ais = fx.app_instances(sim)
    clone = ais[volume['id']]
    assert clone['name'] == 'OS-from-image-' + volume['id']
    assert _head(sim, volume['id'], len(data)) == data
    # the image keeps its marker; the clone is not taken for an image
    assert ais[image_id]['metadata']['type'] == 'image'
    assert clone['metadata'].get('type') != 'image'


def test_a_larger_volume_is_extended_and_outlives_the_image(sim):
    image_id = str(uuid.uuid4())
    data = os.urandom(2 * units.Mi + 5)
    uri = _upload(image_id, data, True)
    volume = _volume(3)

    outcome = _cinder_clone_image(sim, image_id, uri, len(data), volume)

    assert outcome == {'result': [None, True], 'image_service_asked': []}
    clone = fx.app_instances(sim)[volume['id']]
    assert clone['storage_instances'][0]['volumes'][0]['size'] == 3
    assert os.path.getsize(sim.volume_file(volume['id'])) == 3 * units.Gi
    # deleting the image through the store leaves the clone whole
    multi_backend.delete(uri, BACKEND)
    assert image_id not in fx.app_instances(sim)
    assert _head(sim, volume['id'], len(data)) == data
