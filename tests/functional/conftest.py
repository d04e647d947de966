"""Store fixtures: the Datera store configured against the simulator through
glance_store's public API, in multi-store and legacy single-store mode.

glance_store works only on the global ``cfg.CONF`` and keeps its store maps
in module globals, so every fixture here resets both when the test ends.
The simulator fixtures (``edf_sim``, ``file_sim``) come from
tests/conftest.py.
"""

import hashlib
import os

from glance_store import location
from glance_store import multi_backend
from oslo_config import cfg
import pytest

from datera_glance_dev import stores

BACKEND = 'fast'
IMAGE_CHUNK = stores.IMAGE_BLOCK
PatternImage = stores.PatternImage
datera_options = stores.datera_options
configure_single_store = stores.configure_single_store


def configure_multi_store(conf, backends, default=BACKEND):
    """``enabled_backends = name:datera, ...``; ``fast`` is the default."""
    return stores.configure_multi_store(conf, backends, default)


@pytest.fixture(scope='session')
def privsep_in_process():
    """Run os-brick's privileged calls in this process (we are root)."""
    if os.geteuid() != 0:
        pytest.skip('attaching volumes needs root (loop devices, privsep)')
    from os_brick.privileged import default
    default.set_client_mode(False)


@pytest.fixture
def glance_conf():
    """cfg.CONF, parsed with no arguments, restored after the test."""
    conf = cfg.CONF
    saved_map = dict(location.SCHEME_TO_CLS_MAP)
    saved_backend_map = dict(location.SCHEME_TO_CLS_BACKEND_MAP)
    location.SCHEME_TO_CLS_MAP.clear()
    location.SCHEME_TO_CLS_BACKEND_MAP.clear()
    conf(args=[], default_config_files=[])
    try:
        yield conf
    finally:
        conf.reset()
        location.SCHEME_TO_CLS_MAP.clear()
        location.SCHEME_TO_CLS_MAP.update(saved_map)
        location.SCHEME_TO_CLS_BACKEND_MAP.clear()
        location.SCHEME_TO_CLS_BACKEND_MAP.update(saved_backend_map)


def reconfigure_backend(conf, sim, backend_name=BACKEND, **overrides):
    """Rebuild a multi-store backend with other options; returns its store.

    A configured store keeps the options it read, so changed options
    need the stores created again, as a restarted glance-api would.
    """
    for key, value in datera_options(sim, **overrides).items():
        conf.set_override(key, value, group=backend_name)
    location.SCHEME_TO_CLS_BACKEND_MAP.clear()
    multi_backend.create_multi_stores(conf)
    return multi_backend.get_store_from_store_identifier(backend_name)


@pytest.fixture
def multi_store(edf_sim, glance_conf, privsep_in_process):
    """One Datera backend named ``fast``; returns the simulator."""
    assert configure_multi_store(
        glance_conf, {BACKEND: datera_options(edf_sim)}) == 1
    return edf_sim


HOST1, HOST2 = 'host1', 'host2'
IQN1 = 'iqn.2004-10.org.example:glance-host1'
IQN2 = 'iqn.2004-10.org.example:glance-host2'


@pytest.fixture
def two_hosts(edf_sim, glance_conf, privsep_in_process):
    """Two glance-api hosts in one process; returns the simulator.

    Two backends on one simulator, with distinct initiator names.
    """
    assert configure_multi_store(glance_conf, {
        HOST1: datera_options(edf_sim, datera_initiator_name=IQN1),
        HOST2: datera_options(edf_sim, datera_initiator_name=IQN2),
    }, default=HOST1) == 2
    return edf_sim


class ArmedSource(PatternImage):
    """An image that runs ``action`` once ``after`` bytes have been read.

    The fault is armed while the upload is under way, after the steps
    that precede the data (create, first metadata write, attach).
    """

    def __init__(self, size, after, action, **kwargs):
        super().__init__(size, **kwargs)
        self.after = after
        self.action = action

    def read(self, n=-1):
        if self.action is not None and self.pos >= self.after:
            action, self.action = self.action, None
            action()
        return super().read(n)


@pytest.fixture
def single_store(edf_sim, glance_conf, privsep_in_process):
    """The Datera store as the legacy single store; returns the simulator."""
    assert configure_single_store(glance_conf, datera_options(edf_sim)) == 1
    return edf_sim


def assert_reads_back(image, chunks, offset=0):
    """Compare what a read yields with the image, byte for byte.

    Cheaper than hashing both sides: the expected bytes are regenerated
    and compared, which runs at memory speed.
    """
    position = offset
    for chunk in chunks:
        assert chunk == image.bytes_at(position, len(chunk)), (
            'bytes differ in %d..%d' % (position, position + len(chunk)))
        position += len(chunk)
    return position - offset


def sha256_of(chunks):
    """sha256 and length of what an iterator yields."""
    hasher = hashlib.sha256()
    total = 0
    for chunk in chunks:
        hasher.update(chunk)
        total += len(chunk)
    return hasher.hexdigest(), total


def exports(sim):
    """Every export link the simulator currently has."""
    found = []
    for root, dirs, files in os.walk(sim.export_dir):
        found.extend(os.path.join(root, f) for f in files)
        found.extend(os.path.join(root, d) for d in dirs
                     if os.path.islink(os.path.join(root, d)))
    return found


def app_instances(sim):
    """{id: app instance} of every app instance the simulator holds."""
    return {ai['id']: ai for ai in sim.state()['app_instances']}


def backing_file(sim, image_id):
    """The simulator's file behind an image's volume."""
    return sim.volume_file(image_id)


def allocated_bytes(sim, image_id):
    """Bytes the backing file of an image's volume really occupies."""
    return os.stat(backing_file(sim, image_id)).st_blocks * 512


def acl_initiators(sim, image_id):
    """Initiator paths in the ACL of an image's storage instance."""
    ai = app_instances(sim)[image_id]
    return [i['path'] if isinstance(i, dict) else i
            for i in ai['storage_instances'][0]['acl_policy']['initiators']]
