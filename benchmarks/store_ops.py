"""Stores driven through glance_store's public API, as glance-api does.

``add_with_multihash``, ``get`` (whole or partial), ``get_size`` and
``delete`` of :mod:`glance_store.multi_backend`, in this process, on the
backends :mod:`benchmarks.backends` configured: the Datera store against
the simulator and glance's own filesystem store. Every operation runs in a
:class:`benchmarks.measure.Probe` (time, peak memory above idle, the REST
calls the simulator logged) and its result is checked: the bytes written
and read, the checksums the store computed against the image's own.

The sections (``*_section``) each fill the run's figures and tables; the
run (:mod:`benchmarks.run`) decides the sizes and the order.
"""

import math
import threading
import tracemalloc
import uuid

from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units

from benchmarks import data
from benchmarks import measure
from benchmarks import stages
from datera_glance import stream

HASH_ALGO = 'sha512'
MAIN = 'datera'             # thin provisioning, datera_chunk_size chunks
THICK = 'datera_thick'      # the same without thin provisioning
FILE = 'file'               # glance_store's filesystem store
ZERO_FRACTION = 0.9
VOLUME_PATH_END = '/volumes/volume-1'


def sweep_backend(chunk):
    """The backend name of one chunk size of the sweep."""
    return 'sweep_%dk' % (chunk // units.Ki)


class BenchError(RuntimeError):
    """A store gave back other data or sizes than it was given."""


class Op(object):
    """What one store operation returned, and its probe."""

    def __init__(self, probe, **fields):
        self.probe = probe
        self.__dict__.update(fields)


class StoreOps(object):
    """The store operations, measured, against one simulator."""

    def __init__(self, sim):
        self.sim = sim

    def add(self, backend, image, declare_size=True, digests=None,
            trace=False):
        """Upload ``image``; returns an Op with ``uri`` and checksums.

        :param digests: the image's (md5, sha512) to check the store's
            against, when known.
        :param trace: trace Python's allocations too (slower).
        """
        image_id = str(uuid.uuid4())
        reader = image.reader()
        with measure.Probe(self.sim, trace=trace) as probe:
            result = multi_backend.add_with_multihash(
                cfg.CONF, image_id, reader,
                image.size if declare_size else 0, backend, HASH_ALGO)
        uri, written, checksum, multihash = result[:4]
        if written != image.size:
            raise BenchError('%s stored %d bytes of %d'
                             % (backend, written, image.size))
        if digests is not None and (checksum, multihash) != tuple(digests):
            raise BenchError('%s computed other checksums than the '
                             "image's" % backend)
        return Op(probe, image_id=image_id, uri=uri, checksum=checksum,
                  multihash=multihash)

    def get(self, backend, uri, size, offset=0, length=None, image=None,
            trace=False):
        """Read an image, whole or ``length`` bytes from ``offset``.

        A whole read is checked by the store itself (md5); a partial one
        here against the first bytes of ``image``.
        """
        expected = size - offset if length is None else length
        head = None
        with measure.Probe(self.sim, trace=trace) as probe:
            chunks, announced = multi_backend.get(
                uri, backend, offset=offset, chunk_size=length)
            total = 0
            for piece in chunks:
                if head is None:
                    head = bytes(piece[:4096])
                total += len(piece)
        if total != expected or announced != expected:
            raise BenchError('%s read %d bytes (announced %d) of %d' % (
                backend, total, announced, expected))
        if image is not None and head != image.bytes_at(offset, len(head)):
            raise BenchError('%s read other bytes at offset %d'
                             % (backend, offset))
        return Op(probe, nbytes=total)

    def get_size(self, backend, uri, size):
        with measure.Probe(self.sim, sync=False) as probe:
            found = multi_backend.get_size_from_uri_and_backend(uri, backend)
        if found != size:
            raise BenchError('%s says %d bytes, not %d'
                             % (backend, found, size))
        return Op(probe)

    def delete(self, backend, uri):
        with measure.Probe(self.sim, sync=False) as probe:
            multi_backend.delete(uri, backend)
        return Op(probe)

    def concurrent_adds(self, backend, images):
        """Upload the images at once, one thread each.

        :returns: (probe of the whole, [uri or None], [error text])
        """
        count = len(images)
        barrier = threading.Barrier(count + 1)
        uris = [None] * count
        errors = []

        def upload(index):
            barrier.wait()
            try:
                result = multi_backend.add_with_multihash(
                    cfg.CONF, str(uuid.uuid4()), images[index].reader(),
                    images[index].size, backend, HASH_ALGO)
                if result[1] != images[index].size:
                    raise BenchError('stored %d bytes of %d'
                                     % (result[1], images[index].size))
                uris[index] = result[0]
            except Exception as e:
                errors.append('%s: %s' % (type(e).__name__, e))

        threads = [threading.Thread(target=upload, args=(i,),
                                    name='bench-add-%d' % i)
                   for i in range(count)]
        for thread in threads:
            thread.start()
        with measure.Probe(self.sim) as probe:
            barrier.wait()
            for thread in threads:
                thread.join()
        return probe, uris, errors


def grows(calls):
    """Volume grows among REST calls: PUTs of the image's volume."""
    return sum(1 for call in calls or ()
               if call['method'] == 'PUT' and
               call['path'].endswith(VOLUME_PATH_END))


def expected_grows(size, chunk, start_gib=1):
    """Grows an upload of ``size`` bytes of unknown size should make.

    The store's own rule (``stream.next_volume_size_gib``) applied as the
    store applies it: when the next chunk would pass the end of the
    volume.
    """
    capacity, count, written = start_gib, 0, 0
    while written < size:
        end = min(written + chunk, size)
        if end > capacity * units.Gi:
            capacity = stream.next_volume_size_gib(capacity, end)
            count += 1
            written = end
        else:
            # Skip to the last chunk that still fits.
            fits = (capacity * units.Gi - written) // chunk
            written = min(size, written + max(1, fits) * chunk)
    return count


def grows_law(size, max_step_gib=stream.MAX_GROW_STEP_GIB):
    """The stated law: log2 steps up to 8 GiB, then one per 8 GiB."""
    gib = max(1, -(-size // units.Gi))
    doubling = math.ceil(math.log2(min(gib, max_step_gib)))
    return doubling + -(-max(0, gib - max_step_gib) // max_step_gib)


# sections -----------------------------------------------------------------

def _record(figure, op):
    figure.add_probe(op.probe)
    return op


def warm_up(ctx, names):
    """One small add, get and delete on each backend, not counted.

    A store's first upload registers this host's initiator on the
    cluster (one more REST call, once per store) and its first attach
    loads what attaching needs; neither belongs to the figures of an
    upload or a download. Their REST calls are kept in the JSON file.
    """
    for name in names:
        image = ctx.image.like(size=ctx.chunk)
        op = ctx.ops.add(name, image)
        ctx.ops.get(name, op.uri, image.size)
        ctx.ops.delete(name, op.uri)
        ctx.figures.get('warmup_%s' % name, 'warm-up', 'first add on %s'
                        % name, image.size).add_probe(op.probe)


def file_section(ctx):
    """glance's filesystem store: add and full get of the main image."""
    image, figures, ops = ctx.image, ctx.figures, ctx.ops
    add = figures.get('file_add', 'file store', 'file store add',
                      image.size, 'slowest_stage',
                      'glance_store filesystem, 64 KiB chunks, no fsync')
    op = _record(add, ops.add(FILE, image, digests=ctx.digests))
    get = figures.get('file_get', 'file store', 'file store get, whole',
                      image.size, 'slower_md5_read')
    _record(get, ops.get(FILE, op.uri, image.size))
    ops.delete(FILE, op.uri)


def datera_section(ctx):
    """The Datera store: adds of each kind, whole and partial gets."""
    image, figures, ops, size = ctx.image, ctx.figures, ctx.ops, ctx.size
    add = figures.get('add_known', 'datera', 'add, size known', size,
                      'slowest_stage', 'dense image')
    op = _record(add, ops.add(MAIN, image, digests=ctx.digests))
    full = figures.get('get_full', 'datera', 'get, whole image', size,
                       'slower_md5_read',
                       'each chunk checked against its digest')
    _record(full, ops.get(MAIN, op.uri, size))

    offset, length = partial_range(size, ctx.chunk)
    partial = figures.get(
        'get_partial', 'datera', 'get, 1/8 at an odd offset', length,
        'get_full', 'offset %d' % offset)
    partial.extra.update(offset=offset, length=length)
    _record(partial, ops.get(MAIN, op.uri, size, offset, length, image))
    _record(figures.get('get_size', 'rest', 'get_size', 0),
            ops.get_size(MAIN, op.uri, size))
    _record(figures.get('delete', 'rest', 'delete', 0),
            ops.delete(MAIN, op.uri))

    unknown = figures.get('add_unknown', 'datera', 'add, size unknown',
                          size, 'add_known')
    op = _record(unknown, ops.add(MAIN, image, declare_size=False,
                                  digests=ctx.digests))
    unknown.note = '%d grows from 1 GiB' % grows(op.probe.calls)
    ops.delete(MAIN, op.uri)

    zeros = image.like(zero_fraction=ZERO_FRACTION)
    thin = figures.get('add_thin_zeros', 'datera',
                       'add, 90% zeros, thin', size, 'add_known',
                       'zero chunks hashed, not written')
    op = _record(thin, ops.add(MAIN, zeros))
    ops.delete(MAIN, op.uri)
    thick = figures.get('add_thick_zeros', 'datera',
                        'add, 90% zeros, not thin', size, 'add_known',
                        'every chunk written')
    op = _record(thick, ops.add(THICK, zeros))
    ops.delete(THICK, op.uri)


def partial_range(size, chunk):
    """(offset, length) of the partial read: 1/8 of the image, unaligned.

    The offset is odd and in no chunk's or sector's alignment, a third
    into the image.
    """
    length = max(1, size // 8)
    offset = (size // 3) // 4096 * 4096 + 4097
    offset = min(offset, size - length)
    return offset, length


def rest_section(ctx):
    """REST calls of add, get, get_size and delete of a small image.

    The main image's come from :func:`datera_section`; the two are
    compared (they should not depend on the size).
    """
    figures, ops = ctx.figures, ctx.ops
    small = ctx.image.like(size=ctx.rest_small_size)
    size = small.size
    op = _record(figures.get('rest_add', 'rest', 'add', size),
                 ops.add(MAIN, small))
    _record(figures.get('rest_get_size', 'rest', 'get_size', 0),
            ops.get_size(MAIN, op.uri, size))
    _record(figures.get('rest_get', 'rest', 'get', size),
            ops.get(MAIN, op.uri, size))
    _record(figures.get('rest_delete', 'rest', 'delete', 0),
            ops.delete(MAIN, op.uri))


def concurrency_section(ctx, count=4):
    """``count`` adds of different images at once, against one alone."""
    images = [data.ImageData(ctx.size, ctx.chunk) for _ in range(count)]
    figure = ctx.figures.get(
        'add_concurrent', 'datera', '%d adds at once (aggregate)' % count,
        count * ctx.size, 'add_known', '%d different images' % count)
    probe, uris, errors = ctx.ops.concurrent_adds(MAIN, images)
    figure.add_probe(probe)
    figure.extra['errors'] = errors
    figure.extra['count'] = count
    if errors:
        figure.note = '%d errors: %s' % (len(errors), errors[0])
    for uri in uris:
        if uri is not None:
            ctx.ops.delete(MAIN, uri)


def memory_section(ctx):
    """Peak memory of add and whole get for each of the memory sizes.

    Mostly-zero images with thin provisioning keep even 4 GiB fast: the
    zero chunks are hashed and checked but not written, and read back
    from the volume's holes. One chunk in ten is dense.
    """
    try:
        for size in ctx.memory_sizes:
            _memory_of(ctx, size)
    finally:
        tracemalloc.stop()


def _memory_of(ctx, size):
    image = ctx.image.like(size=size, zero_fraction=ZERO_FRACTION)
    add = ctx.figures.get(
        'mem_add_%d' % size, 'memory', 'add %s' % _size_text(size),
        size, None, image.describe())
    op = _record(add, ctx.ops.add(MAIN, image, trace=True))
    get = ctx.figures.get(
        'mem_get_%d' % size, 'memory', 'get %s' % _size_text(size),
        size, None, image.describe())
    _record(get, ctx.ops.get(MAIN, op.uri, size, trace=True))
    ctx.ops.delete(MAIN, op.uri)
    ctx.memory_rows.append({'size': size, 'add': add.key, 'get': get.key})


def grows_section(ctx):
    """Volume grows of unknown-size uploads, counted and expected.

    Uploads (full mode) of mostly-zero images just past 1, 2 and 4 GiB;
    beyond that the store's sequence function alone, against the law.
    """
    rows = ctx.grow_rows
    for gib in ctx.grow_upload_gib:
        size = gib * units.Gi + ctx.chunk
        image = ctx.image.like(size=size, zero_fraction=ZERO_FRACTION)
        figure = ctx.figures.get(
            'grow_%d' % gib, 'grows', 'add %s, size unknown'
            % _size_text(size), size, None, image.describe())
        op = _record(figure, ctx.ops.add(MAIN, image, declare_size=False))
        ctx.ops.delete(MAIN, op.uri)
        rows.append({'size': size, 'uploaded': True,
                     'measured': grows(op.probe.calls),
                     'expected': expected_grows(size, ctx.chunk),
                     'law': grows_law(size)})
    for gib in range(1, 65):
        for size in (gib * units.Gi, gib * units.Gi + ctx.chunk):
            rows.append({'size': size, 'uploaded': False, 'measured': None,
                         'expected': expected_grows(size, ctx.chunk),
                         'law': grows_law(size)})


def sweep_section(ctx):
    """Add and whole get, and md5 alone, for each chunk size.

    Repeated as the main operations are, the chunk sizes taking turns.
    """
    images = {chunk: data.ImageData(ctx.sweep_size, chunk)
              for chunk in ctx.sweep_chunks}
    for repetition in range(ctx.repeat):
        for chunk in ctx.sweep_chunks:
            _sweep_one(ctx, chunk, images[chunk], first=not repetition)


def _sweep_one(ctx, chunk, image, first):
    backend = sweep_backend(chunk)
    if chunk >= units.Mi:
        label = '%d MiB chunks' % (chunk // units.Mi)
    else:
        label = '%d KiB chunks' % (chunk // units.Ki)
    md5 = ctx.figures.get('sweep_md5_%d' % chunk, 'sweep',
                          'md5, ' + label, image.size)
    with measure.Probe() as probe:
        stages.hash_stage(image, 'md5')
    md5.add_probe(probe)
    add = ctx.figures.get('sweep_add_%d' % chunk, 'sweep', 'add, ' + label,
                          image.size, md5.key)
    op = _record(add, ctx.ops.add(backend, image))
    get = ctx.figures.get('sweep_get_%d' % chunk, 'sweep', 'get, ' + label,
                          image.size, md5.key)
    _record(get, ctx.ops.get(backend, op.uri, image.size))
    ctx.ops.delete(backend, op.uri)
    if first:
        ctx.sweep_rows.append({'chunk': chunk, 'md5': md5.key,
                               'add': add.key, 'get': get.key})


def _size_text(size):
    if size >= units.Gi and size % units.Gi == 0:
        return '%d GiB' % (size // units.Gi)
    if size > units.Gi:
        return '%.2f GiB' % (size / units.Gi)
    return '%d MiB' % (size // units.Mi)


def stored_app_instances(sim):
    """App instances left on the simulator."""
    return sim.state().get('app_instances') or []
