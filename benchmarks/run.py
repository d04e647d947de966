"""``make bench``: the Datera store's data path, against baselines.

Everything is measured in one run on one machine, and every result is
shown as a ratio to a baseline measured in the same run, because absolute
figures on a shared 2-core VM vary from run to run:

* ``hash``: md5 plus the multihash (sha512) over the image in chunks of
  ``datera_chunk_size``, in this thread, with no I/O: what glance_store
  requires of any store for every byte.
* ``write+fsync``: the image written in the same chunks to a file in the
  simulator's data folder, then fsync'd: the device, with no hashing.
* ``read``: that file read back in glance_store's read chunks.

Then the store, through glance_store's public API (``add_with_multihash``,
``get``, ``delete``), against the simulator (loop devices when root, as in CI):
an upload of known size, one of unknown size (the volume grows while
attached), a thin-provisioned upload of an image that is mostly zeros, and
a full read. ``add / serial`` compares an upload with doing the hash and
the write one after the other; above 1.0 the store overlaps them.
The REST calls each operation made come from the simulator's request log.

Run ``python -m benchmarks.run --help`` for the sizes.
"""

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid

from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units
import prettytable

from datera_glance.simulator import fixture
from datera_glance.testing import stores

BACKEND = 'bench'
HASH_ALGO = 'sha512'


class Result(object):
    """One measured operation."""

    def __init__(self, name, nbytes, seconds, calls=None, baseline=None,
                 note=''):
        self.name = name
        self.nbytes = nbytes
        self.seconds = seconds
        self.calls = calls
        self.baseline = baseline
        self.note = note

    @property
    def rate(self):
        """MiB/s."""
        return self.nbytes / units.Mi / self.seconds

    def ratio(self):
        if self.baseline is None:
            return ''
        return '%.2f' % (self.rate / self.baseline.rate)


def _timed(func, *args):
    start = time.perf_counter()
    value = func(*args)
    return time.perf_counter() - start, value


def baseline_hash(size, chunk):
    image = stores.PatternImage(size, track=False)
    md5, multihash = hashlib.md5(), hashlib.new(HASH_ALGO)
    while True:
        buf = image.read(chunk)
        if not buf:
            break
        md5.update(buf)
        multihash.update(buf)


def baseline_write(path, size, chunk):
    image = stores.PatternImage(size, track=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            buf = image.read(chunk)
            if not buf:
                break
            os.write(fd, buf)
        os.fsync(fd)
    finally:
        os.close(fd)


def baseline_read(path, chunk):
    with open(path, 'rb', buffering=0) as f:
        while f.read(chunk):
            pass


def _rest_calls(sim, since):
    return sim.requests()[since:]


def store_add(sim, size, declare_size, zero_blocks=()):
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(size, zero_blocks=zero_blocks, track=False)
    before = len(sim.requests())
    seconds, result = _timed(
        multi_backend.add_with_multihash, cfg.CONF, image_id, image,
        size if declare_size else 0, BACKEND, HASH_ALGO)
    uri, written = result[0], result[1]
    if written != size:
        raise RuntimeError('stored %d bytes of %d' % (written, size))
    return image_id, uri, seconds, _rest_calls(sim, before)


def _grows(calls):
    return sum(1 for r in calls if r['method'] == 'PUT' and
               r['path'].endswith('/volumes/volume-1'))


def store_read(sim, uri):
    before = len(sim.requests())

    def read_all():
        chunks, size = multi_backend.get(uri, BACKEND)
        total = 0
        for piece in chunks:
            total += len(piece)
        if total != size:
            raise RuntimeError('read %d bytes of %d' % (total, size))
        return total

    seconds, total = _timed(read_all)
    return total, seconds, len(_rest_calls(sim, before))


def store_delete(uri):
    multi_backend.delete(uri, BACKEND)


def configure(sim, chunk, thin):
    conf = cfg.CONF
    conf(args=[], default_config_files=[])
    from os_brick.privileged import default
    default.set_client_mode(False)
    options = stores.datera_options(
        sim, datera_chunk_size=chunk, datera_thin_provisioning=thin,
        datera_default_image_size=1, datera_retry_attempts=5,
        datera_operation_max_timeout=120)
    stores.configure_multi_store(conf, {BACKEND: options}, BACKEND)


def run(args):
    size = args.size_mib * units.Mi
    chunk = args.chunk_kib * units.Ki
    results = []
    with tempfile.TemporaryDirectory(prefix='datera-bench-') as work:
        block = os.geteuid() == 0
        with fixture.running_simulator(os.path.join(work, 'sim'),
                                       block_devices=block,
                                       resize_seconds=0) as sim:
            configure(sim, chunk, thin=True)

            seconds, _ = _timed(baseline_hash, size, chunk)
            hashed = Result('baseline: md5+%s' % HASH_ALGO, size, seconds)
            raw = os.path.join(sim.data_dir, 'bench-raw')
            seconds, _ = _timed(baseline_write, raw, size, chunk)
            wrote = Result('baseline: write+fsync', size, seconds)
            seconds, _ = _timed(baseline_read, raw, 64 * units.Ki)
            read = Result('baseline: read', size, seconds)
            os.unlink(raw)
            serial = Result('baseline: hash, then write', size,
                            hashed.seconds + wrote.seconds)
            results += [hashed, wrote, read, serial]

            image_id, uri, seconds, calls = store_add(sim, size, True)
            results.append(Result('store add, size known', size, seconds,
                                  len(calls), serial))
            total, seconds, calls = store_read(sim, uri)
            results.append(Result('store get, whole image', total, seconds,
                                  calls, read))
            store_delete(uri)

            image_id, uri, seconds, calls = store_add(sim, size, False)
            results.append(Result(
                'store add, size unknown', size, seconds, len(calls), serial,
                '%d grows from 1 GiB' % _grows(calls)))
            store_delete(uri)

            blocks = size // stores.IMAGE_BLOCK
            zero_blocks = range(blocks // 10, blocks)
            image_id, uri, seconds, calls = store_add(sim, size, True,
                                                      zero_blocks)
            results.append(Result(
                'store add, 90% zeros, thin', size, seconds, len(calls),
                serial,
                'zero chunks hashed, not written'))
            store_delete(uri)

            left = sim.state().get('app_instances') or []
            if left:
                raise RuntimeError('app instances left behind: %s' % left)

    table = prettytable.PrettyTable(
        ['operation', 'MiB', 's', 'MiB/s', 'x baseline', 'REST calls',
         'note'])
    table.align = 'r'
    table.align['operation'] = 'l'
    table.align['note'] = 'l'
    for r in results:
        table.add_row([r.name, '%.0f' % (r.nbytes / units.Mi),
                       '%.2f' % r.seconds, '%.0f' % r.rate, r.ratio(),
                       '' if r.calls is None else r.calls, r.note])
    print('Datera store data path, %d MiB image, %d KiB chunks, %s' %
          (args.size_mib, args.chunk_kib,
           'loop devices' if os.geteuid() == 0 else 'sparse files'))
    print(table)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024,
                        help='image size in MiB (default 1024)')
    parser.add_argument('--chunk-kib', type=int, default=8192,
                        help='datera_chunk_size in KiB (default 8192)')
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
