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


class _BackgroundHash(object):
    """A hash fed from a worker thread, one buffer at a time, in order.

    hashlib releases the GIL on large buffers, so hashing the previous
    buffer overlaps with reading, writing or sending the next one.
    """

    def __init__(self, hasher, worker):
        self._hasher = hasher
        self._worker = worker
        self._pending = None

    def _wait(self):
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def update(self, buf):
        self._wait()
        self._pending = self._worker.submit(self._hasher.update, buf)

    def hexdigest(self):
        self._wait()
        return self._hasher.hexdigest()


def _hash_worker():
    return futures.ThreadPoolExecutor(max_workers=1,
                                      thread_name_prefix='datera-hash')


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
    is_zero = ZeroDetector(chunk_size) if skip_zeros else None
    written = 0       # bytes of image data consumed so far
    zero_bytes = 0    # of which skipped because they were zeros
    position = None   # where the next dest.write() lands; None: unknown

    def on_device(operation, *args):
        # Errors of the device, not of the source, become store errors.
        try:
            return operation(*args)
        except OSError as exc:
            raise _translate_os_error(exc, image_id) from exc

    # md5 and the multihash run side by side: the two hashes, not the
    # device, bound an upload.
    with _hash_worker() as worker:
        multihash = _BackgroundHash(
            utils.get_hasher(hashing_algo, False), worker)
        for buf in _source_chunks(source, chunk_size):
            if not buf:
                continue
            end = written + len(buf)
            capacity = _make_room(image_id, end, image_size, capacity, grow)

            multihash.update(buf)
            checksum.update(buf)
            if verifier is not None:
                verifier.update(buf)

            if is_zero is not None and is_zero(buf):
                zero_bytes += len(buf)
            else:
                if position != written:
                    on_device(dest.seek, written)
                on_device(_write_all, dest, buf)
                position = end
            written = end
            if progress is not None:
                progress(written)
        multihash_hex = multihash.hexdigest()

    if image_size and written != image_size:
        raise exceptions.Invalid(
            _('Size mismatch: image %(image)s was declared as %(expected)d '
              'bytes, got %(actual)d bytes') %
            {'image': image_id, 'expected': image_size, 'actual': written})
    # The volume is detached right after this; the data must be on the
    # cluster, not in this host's page cache.
    on_device(dest.flush)
    on_device(os.fsync, dest.fileno())

    return WriteResult(written, checksum.hexdigest(), multihash_hex,
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
    # one before it.
    with _hash_worker() as worker:
        checksum = _BackgroundHash(utils.get_hasher('md5', False), worker)
        held = None
        for buf in _read_range(src, image_id, offset, length, chunk_size):
            if held is not None:
                yield held
            checksum.update(buf)
            held = buf
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
    remaining = length
    try:
        src.seek(offset)
        while remaining > 0:
            buf = src.read(min(chunk_size, remaining))
            if not buf:
                raise exceptions.BackendException(
                    _('Volume of image %(image)s ended after %(done)d of '
                      '%(length)d bytes') %
                    {'image': image_id, 'done': length - remaining,
                     'length': length})
            remaining -= len(buf)
            yield buf
    except OSError as exc:
        raise exceptions.BackendException(
            _('I/O error reading image %(image)s: %(err)s') %
            {'image': image_id, 'err': exc}) from exc
