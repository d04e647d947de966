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

"""The data path: image bytes to and from an attached volume.

Nothing here knows about Datera or os-brick. The writer takes an open,
seekable device (or file) and the image data, hashes every byte, feeds the
signature verifier, optionally skips all-zero buffers, and asks a callback
to grow the device when the next write would pass its end. The reader
yields a byte range of a device in bounded chunks and, for a full read,
holds back the last chunk until the data matches the stored md5. The
source's own errors leave as :class:`SourceError`, carrying them
unchanged.
"""

import collections
from concurrent import futures
import errno
import os

from glance_store.common import utils
from glance_store import exceptions
from oslo_log import log as logging
from oslo_utils import units

from datera_glance.i18n import _

LOG = logging.getLogger(__name__)

# Largest step by which the volume of an image of unknown size grows at
# once; below it the step doubles (the rbd store does the same), so the
# number of grows stays small without over-allocating much.
MAX_GROW_STEP_GIB = 8

WriteResult = collections.namedtuple(
    'WriteResult', ['bytes_written', 'checksum', 'multihash', 'zero_bytes'])


def size_gib_for(nbytes):
    """Whole GiB needed to hold ``nbytes`` bytes; at least 1."""
    return max(1, -(-int(nbytes) // units.Gi))


def next_volume_size_gib(current_gib, needed_bytes,
                         max_step_gib=MAX_GROW_STEP_GIB):
    """Size to grow a volume to so that it holds ``needed_bytes``.

    Each step doubles the volume, up to ``max_step_gib`` per step, and
    steps are taken until the volume is large enough: an image of N GiB
    uploaded without a size needs about log2(min(N, 8)) + N / 8 grows.
    """
    size = max(1, int(current_gib))
    while size * units.Gi < needed_bytes:
        size += min(size, max_step_gib)
    return size


class ZeroDetector(object):
    """Tells whether a buffer holds only zero bytes.

    Comparing with a zero-filled bytes object of the same length runs at
    memory speed (several GB/s) and stops at the first non-zero byte;
    ``not any(buf)`` manages about 190 MB/s, slower than the hashes.
    """

    def __init__(self, size=0):
        self._zeros = bytes(size)

    def __call__(self, buf):
        n = len(buf)
        if n != len(self._zeros):
            # Buffers come in one size except the last; an iterator
            # source may vary, so keep the last size seen.
            self._zeros = bytes(n)
        return buf == self._zeros


# Buffers in flight between reading the source and their last stage
# (md5, multihash, write): enough to keep every stage busy, few enough
# that an upload holds at most (PIPELINE_DEPTH + 1) x chunk_size bytes.
PIPELINE_DEPTH = 3


class _Stage(object):
    """A worker thread that runs calls in the order they are submitted.

    hashlib and os.write release the GIL on large buffers, so the md5,
    the multihash and the device write of consecutive buffers run on all
    cores at once, each stage seeing every buffer in order.
    """

    def __init__(self, name):
        self._executor = futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix='datera-' + name)

    def submit(self, func, *args):
        return self._executor.submit(func, *args)

    def close(self, cancel=False):
        """Wait for what was submitted (or drop what has not started)."""
        self._executor.shutdown(wait=True, cancel_futures=cancel)


class _Pipeline(object):
    """Stages over a bounded window of buffers in flight.

    :meth:`push` hands one buffer's calls to their stages and, once more
    than ``depth`` buffers are in flight, waits for the oldest; errors of
    a stage surface there, translated by ``on_error``. Leaving the
    ``with`` block waits for every stage; leaving it by an exception
    drops what has not started and waits for what has, so nothing
    touches the device once the caller moves on.
    """

    def __init__(self, names, depth=PIPELINE_DEPTH, on_error=None):
        self.stages = {name: _Stage(name) for name in names}
        self._depth = depth
        self._on_error = on_error
        self._window = collections.deque()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = exc_type is not None
        for stage in self.stages.values():
            stage.close(cancel=failed)
        if not failed:
            self.drain()

    def push(self, calls):
        """Submit ``[(stage name, func, *args), ...]`` for one buffer."""
        self._window.append([self.stages[name].submit(func, *args)
                             for name, func, *args in calls])
        while len(self._window) > self._depth:
            self._finish(self._window.popleft())

    def drain(self):
        """Wait for every buffer in flight."""
        while self._window:
            self._finish(self._window.popleft())

    def _finish(self, pending):
        for future in pending:
            try:
                future.result()
            except OSError as exc:
                if self._on_error is None:
                    raise
                raise self._on_error(exc) from exc


class SourceError(Exception):
    """The image source raised ``original`` while being read.

    Carries the source's own exception out of the write loop untouched,
    so that the store re-raises that very object (glance maps its own
    ImageSizeLimitExceeded and StorageQuotaFull to HTTP 413).
    """

    def __init__(self, original):
        super().__init__(str(original))
        self.original = original


def _source_chunks(source, chunk_size):
    chunks = utils.chunkreadable(source, chunk_size)
    while True:
        try:
            buf = next(chunks)
        except StopIteration:
            return
        except Exception as e:
            raise SourceError(e) from e
        yield buf


def _translate_os_error(exc, image_id):
    if exc.errno in (errno.ENOSPC, errno.EFBIG):
        return exceptions.StorageFull(
            message=_('No space left writing image %(image)s: %(err)s') %
            {'image': image_id, 'err': exc})
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return exceptions.StorageWriteDenied(
            message=_('Writing image %(image)s was denied: %(err)s') %
            {'image': image_id, 'err': exc})
    return exceptions.BackendException(
        _('I/O error writing image %(image)s: %(err)s') %
        {'image': image_id, 'err': exc})


def _make_room(image_id, end, image_size, capacity, grow):
    """Check that ``end`` bytes fit; grow the device if allowed.

    :returns: the device's capacity, at least ``end``
    """
    if image_size and end > image_size:
        raise exceptions.Invalid(
            _('Size exceeds: image %(image)s was declared as %(expected)d '
              'bytes, got at least %(actual)d bytes') %
            {'image': image_id, 'expected': image_size, 'actual': end})
    if end <= capacity:
        return capacity
    if image_size or grow is None:
        raise exceptions.BackendException(
            _('Volume of image %(image)s holds %(capacity)d bytes, cannot '
              'write up to byte %(end)d') %
            {'image': image_id, 'capacity': capacity, 'end': end})
    capacity = grow(end)
    if capacity < end:
        raise exceptions.BackendException(
            _('Volume of image %(image)s was grown but this host sees only '
              '%(capacity)d bytes, %(end)d needed') %
            {'image': image_id, 'capacity': capacity, 'end': end})
    return capacity


def _write_all(dest, buf):
    # A raw (unbuffered) file may accept fewer bytes than offered.
    view = memoryview(buf)
    while view:
        view = view[dest.write(view):]


def write_image(dest, source, image_id, chunk_size, hashing_algo,
                capacity, image_size=0, verifier=None, skip_zeros=False,
                grow=None, progress=None):
    """Copy an image into an open device, hashing every byte.

    :param dest: a seekable binary file opened for writing without
                 truncation (``r+b``), positioned anywhere
    :param source: the image data: a file-like object or an iterable of
                   byte strings
    :param image_id: the image's id, for messages
    :param chunk_size: bytes read from a file-like source at once
    :param hashing_algo: hashlib name of the multihash algorithm
    :param capacity: bytes the device holds now
    :param image_size: the expected size in bytes, or 0 when unknown
    :param verifier: an object whose ``update()`` gets every buffer
    :param skip_zeros: do not write all-zero buffers (the device reads
                       as zeros where nothing was written)
    :param grow: ``grow(needed_bytes) -> new capacity`` called when the
                 image size is unknown and the next buffer would pass the
                 end of the device
    :param progress: ``progress(bytes_so_far)`` called after each buffer
    :returns: a WriteResult
    :raises: glance_store.exceptions.Invalid when the data is longer or
             shorter than a known ``image_size``; StorageFull,
             StorageWriteDenied or BackendException for write errors;
             SourceError when reading the source fails
    """
    checksum = utils.get_hasher('md5', False)
    multihash = utils.get_hasher(hashing_algo, False)
    is_zero = ZeroDetector(chunk_size) if skip_zeros else None
    written = 0       # bytes of image data consumed so far
    zero_bytes = 0    # of which skipped because they were zeros
    # where the writer's next dest.write() lands; None: unknown. Only the
    # write stage touches it (and dest) until the pipeline is drained.
    position = [None]

    def write_at(offset, buf):
        if position[0] != offset:
            dest.seek(offset)
        _write_all(dest, buf)
        position[0] = offset + len(buf)

    def device_error(exc):
        # Errors of the device, not of the source, become store errors.
        return _translate_os_error(exc, image_id)

    # Reading the source (this thread), md5, the multihash and the write
    # each run in their own thread, a few buffers apart: the slowest of
    # them, not their sum, bounds an upload. The verifier is fed here, in
    # order, as it always was.
    with _Pipeline(('md5', 'multihash', 'write'),
                   on_error=device_error) as pipeline:
        for buf in _source_chunks(source, chunk_size):
            if not buf:
                continue
            end = written + len(buf)
            capacity = _make_room(image_id, end, image_size, capacity, grow)
            calls = [('md5', checksum.update, buf),
                     ('multihash', multihash.update, buf)]
            if verifier is not None:
                verifier.update(buf)
            if is_zero is not None and is_zero(buf):
                zero_bytes += len(buf)
            else:
                calls.append(('write', write_at, written, buf))
            pipeline.push(calls)
            written = end
            if progress is not None:
                progress(written)

    if image_size and written != image_size:
        raise exceptions.Invalid(
            _('Size mismatch: image %(image)s was declared as %(expected)d '
              'bytes, got %(actual)d bytes') %
            {'image': image_id, 'expected': image_size, 'actual': written})
    # The volume is detached right after this; the data must be on the
    # cluster, not in this host's page cache.
    try:
        dest.flush()
        os.fsync(dest.fileno())
    except OSError as exc:
        raise device_error(exc) from exc

    return WriteResult(written, checksum.hexdigest(), multihash.hexdigest(),
                       zero_bytes)


def read_image(src, image_id, offset, length, chunk_size,
               expected_md5=None):
    """Yield ``length`` bytes of an open device from ``offset``.

    Reads at most ``chunk_size`` bytes at once. When ``expected_md5`` is
    given (a full read), the last chunk is held back until the md5 of
    every byte read matches it: a mismatch raises before the last byte
    leaves, so a consumer never gets all of a corrupt image.

    :raises: glance_store.exceptions.BackendException when the device
             ends early, a read fails, or the checksum does not match
    """
    if expected_md5 is None:
        yield from _read_range(src, image_id, offset, length, chunk_size)
        return
    # The md5 of each chunk is computed while the consumer handles the
    # one before it, and the next chunk is read meanwhile.
    checksum = utils.get_hasher('md5', False)
    with _Pipeline(('md5',)) as pipeline:
        held = None
        for buf in _read_range(src, image_id, offset, length, chunk_size):
            if held is not None:
                yield held
            pipeline.push([('md5', checksum.update, buf)])
            held = buf
        pipeline.drain()
    actual = checksum.hexdigest()
    if actual != expected_md5:
        msg = (_('Checksum mismatch reading image %(image)s: stored '
                 '%(expected)s, read %(actual)s') %
               {'image': image_id, 'expected': expected_md5,
                'actual': actual})
        LOG.error(msg)
        raise exceptions.BackendException(msg)
    if held is not None:
        yield held


def _read_range(src, image_id, offset, length, chunk_size):
    """Yield the range in chunks, reading the next one ahead.

    A reader thread reads chunk n + 1 while the consumer handles chunk n
    (file reads release the GIL); it alone touches ``src`` until the
    generator ends, however it ends.
    """
    def read_chunk(remaining):
        buf = src.read(min(chunk_size, remaining))
        if not buf:
            raise exceptions.BackendException(
                _('Volume of image %(image)s ended after %(done)d of '
                  '%(length)d bytes') %
                {'image': image_id, 'done': length - remaining,
                 'length': length})
        return buf

    reader = _Stage('read')
    try:
        remaining = length
        if remaining <= 0:
            return
        ahead = reader.submit(_seek_then_read, src, offset, read_chunk,
                              remaining)
        while True:
            buf = ahead.result()
            remaining -= len(buf)
            if remaining > 0:
                ahead = reader.submit(read_chunk, remaining)
            yield buf
            if remaining <= 0:
                return
    except OSError as exc:
        raise exceptions.BackendException(
            _('I/O error reading image %(image)s: %(err)s') %
            {'image': image_id, 'err': exc}) from exc
    finally:
        reader.close(cancel=True)


def _seek_then_read(src, offset, read_chunk, remaining):
    src.seek(offset)
    return read_chunk(remaining)
