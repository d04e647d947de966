"""Store fixtures: the Datera store configured against the simulator through
glance_store's public API, in multi-store and legacy single-store mode.

glance_store works only on the global ``cfg.CONF`` and keeps its store maps
in module globals, so every fixture here resets both when the test ends.
The simulator fixtures (``edf_sim``, ``file_sim``) come from
tests/conftest.py.
"""

import hashlib
import io
import os

from glance_store import backend
from glance_store import driver
from glance_store import location
from glance_store import multi_backend
from oslo_config import cfg
import pytest

BACKEND = 'fast'
IMAGE_CHUNK = 8 * 1024 * 1024


def datera_options(sim, **overrides):
    """Options that point a Datera store at a running simulator."""
    opts = {
        'datera_san_ip': sim.host,
        'datera_san_port': sim.port,
        'datera_san_login': sim.username,
        'datera_san_password': sim.password,
        'datera_ca_certificates_file': sim.ca_file,
        'datera_transport': 'local',
        'datera_local_export_dir': sim.export_dir,
        'datera_retry_attempts': 2,
        'datera_retry_interval': 0.05,
        'datera_operation_max_timeout': 30,
    }
    opts.update(overrides)
    return opts


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


def configure_multi_store(conf, backends, default=BACKEND):
    """``enabled_backends = name:datera, ...`` with per-backend options.

    :param backends: {backend name: {option: value}}
    """
    conf.register_opt(cfg.DictOpt('enabled_backends'))
    conf.set_override('enabled_backends',
                      {name: 'datera' for name in backends})
    multi_backend.register_store_opts(conf)
    conf.set_override('default_backend', default, group='glance_store')
    for name, opts in backends.items():
        # store_description and weight; glance_store registers them when
        # it loads the store, after a config file would have been read.
        conf.register_opts(driver.Store.MULTI_BACKEND_OPTIONS, group=name)
        for key, value in opts.items():
            conf.set_override(key, value, group=name)
    return multi_backend.create_multi_stores(conf)


def configure_single_store(conf, opts):
    """Configure the original driver's legacy single-store setup.

    ``stores = datera``, ``default_store = datera``, the options in
    ``[glance_store]``.
    """
    import datera_glance.store  # noqa: F401 (allows default_store=datera)
    backend.register_opts(conf)
    conf.set_override('stores', ['datera'], group='glance_store')
    conf.set_override('default_store', 'datera', group='glance_store')
    for key, value in opts.items():
        conf.set_override(key, value, group='glance_store')
    count = backend.create_stores(conf)
    backend.verify_default_store()
    return count


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


@pytest.fixture
def single_store(edf_sim, glance_conf, privsep_in_process):
    """The Datera store as the legacy single store; returns the simulator."""
    assert configure_single_store(glance_conf, datera_options(edf_sim)) == 1
    return edf_sim


class PatternImage(io.RawIOBase):
    """A readable image of ``size`` bytes, generated, not held in memory.

    Blocks of ``block`` bytes are random (one random block, stamped with
    its position so no two blocks are alike) except those whose index is
    in ``zero_blocks``, which are all zeros. Unless ``track`` is false,
    ``sha256`` of everything read so far is kept to compare with what the
    store gives back; large images skip it and compare with the multihash
    the store computed over the bytes it received, to save a pass.
    """

    def __init__(self, size, block=IMAGE_CHUNK, zero_blocks=(),
                 track=True):
        self.size = size
        self.block = block
        self.zero_blocks = set(zero_blocks)
        self.pos = 0
        self._random = os.urandom(block)
        self._zeros = bytes(block)
        self.hasher = hashlib.sha256() if track else None

    def readable(self):
        return True

    def _block(self, index):
        if index in self.zero_blocks:
            return self._zeros
        stamp = index.to_bytes(8, 'little')
        return stamp + self._random[8:]

    def _piece(self, offset, n):
        # At most ``n`` bytes from ``offset``, within one block.
        index, within = divmod(offset, self.block)
        n = min(n, self.block - within, self.size - offset)
        return self._block(index)[within:within + n]

    def bytes_at(self, offset, length):
        """The image's bytes at ``offset``, regenerated."""
        out = []
        end = min(offset + length, self.size)
        while offset < end:
            piece = self._piece(offset, end - offset)
            out.append(piece)
            offset += len(piece)
        return b''.join(out)

    def read(self, n=-1):
        if self.pos >= self.size:
            return b''
        if n is None or n < 0:
            n = self.block
        data = self._piece(self.pos, n)
        self.pos += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    @property
    def sha256(self):
        return self.hasher.hexdigest()


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


def acl_initiators(sim, image_id):
    """Initiator paths in the ACL of an image's storage instance."""
    ai = app_instances(sim)[image_id]
    return [i['path'] if isinstance(i, dict) else i
            for i in ai['storage_instances'][0]['acl_policy']['initiators']]
