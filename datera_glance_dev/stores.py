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

"""The Datera store configured against a simulator, in this process.

Used by the functional tests and the benchmarks: both drive the store
through glance_store's public API exactly as glance-api does, so they share
how that API is set up here and the synthetic images they feed it.
"""

import hashlib
import io
import os

from glance_store import backend
from glance_store import driver
from glance_store import multi_backend
from oslo_config import cfg

IMAGE_BLOCK = 8 * 1024 * 1024


def datera_options(sim, **overrides):
    """Options that point a Datera store at a running simulator."""
    opts = sim.store_options()
    # Fail fast: the tests inject the faults they expect.
    opts.update({
        'datera_retry_attempts': 2,
        'datera_retry_interval': 0.05,
        'datera_operation_max_timeout': 30,
    })
    opts.update(overrides)
    return opts


def configure_multi_store(conf, backends, default, kinds=None):
    """``enabled_backends = name:datera, ...`` with per-backend options.

    :param backends: {backend name: {option: value}}
    :param kinds: {backend name: store type} for backends that are not
        Datera stores (``'file'``)
    :returns: the number of stores glance_store created.
    """
    kinds = kinds or {}
    try:
        conf.register_opt(cfg.DictOpt('enabled_backends'))
    except cfg.DuplicateOptError:
        pass    # glance registered its own (glance.common imported)
    conf.set_override('enabled_backends',
                      {name: kinds.get(name, 'datera') for name in backends})
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
    """Configure the original driver's legacy single-store layout.

    ``stores = datera``, ``default_store = datera``, the options in
    ``[glance_store]``.

    :returns: the number of stores glance_store created.
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


class PatternImage(io.RawIOBase):
    """A readable image of ``size`` bytes, generated, not held in memory.

    Blocks of ``block`` bytes are random (one random block, stamped with
    its position so no two blocks are alike) except those whose index is
    in ``zero_blocks``, which are all zeros. Unless ``track`` is false,
    ``sha256`` of everything read so far is kept to compare with what the
    store gives back; large images skip it and compare with the multihash
    the store computed over the bytes it received, to save a pass.
    """

    def __init__(self, size, block=IMAGE_BLOCK, zero_blocks=(),
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
