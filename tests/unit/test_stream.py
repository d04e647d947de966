"""The data path: hashing, size checks, zero skipping, grow points and
partial reads, on real files and on recording fakes."""

import errno
import fcntl
import hashlib
import io
import os
import threading
from unittest import mock

from glance_store import exceptions
from oslo_utils import units
import pytest

from datera_glance import stream
from datera_glance_dev import polling


class RecordingDevice(io.BytesIO):
    """A device that records where each write lands."""

    def __init__(self):
        super().__init__()
        self.writes = []
        self.syncs = 0

    def write(self, buf):
        self.writes.append((self.tell(), len(buf)))
        return super().write(buf)

    def fileno(self):
        return -1


@pytest.fixture
def fsync():
    with mock.patch.object(stream.os, 'fsync') as fsync:
        yield fsync


class Verifier(object):
    def __init__(self):
        self.data = bytearray()

    def update(self, buf):
        self.data += buf


def _write(dest, data, chunk_size=4, capacity=1 << 20, **kwargs):
    return stream.write_image(dest, io.BytesIO(data), 'img', chunk_size,
                              'sha512', capacity, **kwargs)


def test_hashes_and_verifier_see_every_byte(fsync):
    data = os.urandom(1000) + bytes(100) + os.urandom(23)
    dev = RecordingDevice()
    verifier = Verifier()
    result = _write(dev, data, chunk_size=64, image_size=len(data),
                    verifier=verifier)
    assert result.bytes_written == len(data)
    assert result.checksum == hashlib.md5(data).hexdigest()
    assert result.multihash == hashlib.sha512(data).hexdigest()
    assert bytes(verifier.data) == data
    assert dev.getvalue() == data
    assert all(length <= 64 for _, length in dev.writes)


def test_multihash_uses_requested_algorithm(fsync):
    result = stream.write_image(RecordingDevice(), io.BytesIO(b'abc'),
                                'img', 4, 'sha256', 100)
    assert result.multihash == hashlib.sha256(b'abc').hexdigest()


def test_iterable_source_is_accepted(fsync):
    dev = RecordingDevice()
    chunks = [b'ab', b'', b'cdef', b'g']
    result = stream.write_image(dev, iter(chunks), 'img', 4, 'md5', 100)
    assert dev.getvalue() == b'abcdefg'
    assert result.bytes_written == 7


def test_flushes_to_stable_storage_before_returning(fsync, tmp_path):
    path = tmp_path / 'dev'
    path.write_bytes(bytes(64))
    with open(path, 'r+b') as dev:
        _write(dev, b'x' * 10, image_size=10)
        fsync.assert_called_once_with(dev.fileno())
    # Opened without truncation: the bytes after the image are intact.
    assert path.read_bytes() == b'x' * 10 + bytes(54)


def test_too_many_bytes_is_invalid_before_writing_past_size(fsync):
    dev = RecordingDevice()
    with pytest.raises(exceptions.Invalid) as exc:
        _write(dev, b'a' * 10, chunk_size=4, image_size=6)
    assert 'img' in str(exc.value)
    # The chunk that would pass the declared size is never written.
    assert dev.writes == [(0, 4)]
    fsync.assert_not_called()


def test_too_few_bytes_is_invalid(fsync):
    with pytest.raises(exceptions.Invalid) as exc:
        _write(RecordingDevice(), b'a' * 5, image_size=6)
    assert '6' in str(exc.value) and '5' in str(exc.value)


def test_exact_size_is_accepted(fsync):
    assert _write(RecordingDevice(), b'a' * 8,
                  image_size=8).bytes_written == 8


def test_zero_chunks_are_hashed_but_not_written(fsync):
    data = b'a' * 4 + bytes(8) + b'b' * 4 + bytes(3)
    dev = RecordingDevice()
    result = _write(dev, data, chunk_size=4, skip_zeros=True)
    assert dev.writes == [(0, 4), (12, 4)]
    assert result.zero_bytes == 11
    assert result.bytes_written == len(data)
    assert result.checksum == hashlib.md5(data).hexdigest()
    assert result.multihash == hashlib.sha512(data).hexdigest()


def test_skipped_zeros_read_back_as_zeros_from_a_sparse_file(fsync,
                                                             tmp_path):
    data = b'a' * 4 + bytes(8) + b'b' * 4
    path = tmp_path / 'dev'
    with open(path, 'wb') as f:
        f.truncate(32)
    with open(path, 'r+b') as dev:
        _write(dev, data, chunk_size=4, skip_zeros=True)
    assert path.read_bytes()[:len(data)] == data


def test_zeros_are_written_without_thin_provisioning(fsync):
    dev = RecordingDevice()
    result = _write(dev, bytes(12), chunk_size=4)
    assert dev.writes == [(0, 4), (4, 4), (8, 4)]
    assert result.zero_bytes == 0


def test_zero_detector():
    is_zero = stream.ZeroDetector(8)
    assert is_zero(bytes(8))
    assert is_zero(bytes(3))          # a short last chunk
    assert is_zero(b'')
    assert not is_zero(bytes(7) + b'\x01')
    assert not is_zero(b'\x01' + bytes(7))
    assert is_zero(bytes(8))


class Grower(object):
    """Grows the capacity to what the store's policy would, in bytes."""

    def __init__(self, unit):
        self.unit = unit
        self.calls = []
        self.size = 1

    def __call__(self, needed):
        self.calls.append(needed)
        self.size = stream.next_volume_size_gib(self.size,
                                                needed * units.Gi // self.unit)
        return self.size * self.unit


def test_unknown_size_grows_when_next_write_passes_the_end(fsync):
    grower = Grower(unit=10)
    dev = RecordingDevice()
    data = os.urandom(45)
    result = _write(dev, data, chunk_size=4, capacity=10, grow=grower)
    # The writes ending at 12, 24 and 44 would have passed the ends 10,
    # 20 and 40: capacity 10 -> 20 -> 40 -> 80.
    assert grower.calls == [12, 24, 44]
    assert dev.getvalue() == data
    assert result.bytes_written == 45


def test_grow_applies_to_skipped_zero_chunks_too(fsync):
    # The volume must hold the image's length even where nothing is
    # written: reads are bounded by the length, not by what was written.
    grower = Grower(unit=4)
    _write(RecordingDevice(), bytes(12), chunk_size=4, capacity=4,
           grow=grower, skip_zeros=True)
    assert grower.calls == [8, 12]


def test_grow_that_the_host_does_not_see_fails(fsync):
    with pytest.raises(exceptions.BackendException):
        _write(RecordingDevice(), b'a' * 8, capacity=4,
               grow=lambda needed: 4)


def test_known_size_never_grows(fsync):
    grow = mock.Mock()
    with pytest.raises(exceptions.BackendException):
        _write(RecordingDevice(), b'a' * 8, capacity=4, image_size=8,
               grow=grow)
    grow.assert_not_called()


@pytest.mark.parametrize('current,needed,expected', [
    (1, 1, 1),
    (1, units.Gi, 1),
    (1, units.Gi + 1, 2),
    (2, 2 * units.Gi + 1, 4),
    (4, 4 * units.Gi + 1, 8),
    (8, 8 * units.Gi + 1, 16),     # the step is capped at 8 GiB
    (16, 16 * units.Gi + 1, 24),
    (1, 5 * units.Gi, 8),          # a big write takes several steps
    (0, 1, 1),
])
def test_next_volume_size(current, needed, expected):
    assert stream.next_volume_size_gib(current, needed) == expected


def test_number_of_grows_stays_small():
    size, grows = 1, 0
    for written_gib in range(1, 101):
        needed = written_gib * units.Gi
        if needed > size * units.Gi:
            size = stream.next_volume_size_gib(size, needed)
            grows += 1
    # 1 -> 2 -> 4 -> 8, then 8 GiB steps up to 104 GiB.
    assert grows == 3 + 12
    assert size == 104


@pytest.mark.parametrize('nbytes,gib', [
    (0, 1), (1, 1), (units.Gi, 1), (units.Gi + 1, 2), (5 * units.Gi, 5)])
def test_size_gib_for(nbytes, gib):
    assert stream.size_gib_for(nbytes) == gib


class FailingDevice(RecordingDevice):
    def __init__(self, err):
        super().__init__()
        self.err = err

    def write(self, buf):
        raise OSError(self.err, os.strerror(self.err))


@pytest.mark.parametrize('err,exc_class', [
    (errno.ENOSPC, exceptions.StorageFull),
    (errno.EFBIG, exceptions.StorageFull),
    (errno.EACCES, exceptions.StorageWriteDenied),
    (errno.EROFS, exceptions.StorageWriteDenied),
    (errno.EIO, exceptions.BackendException),
])
def test_device_errors_become_store_errors(fsync, err, exc_class):
    with pytest.raises(exc_class) as exc:
        _write(FailingDevice(err), b'abc')
    assert 'img' in str(exc.value)


def test_source_errors_are_not_reported_as_device_errors(fsync):
    class BrokenSource(object):
        def read(self, size):
            raise OSError(errno.ECONNRESET, 'client went away')

    with pytest.raises(stream.SourceError) as exc:
        stream.write_image(RecordingDevice(), BrokenSource(), 'img', 4,
                           'md5', 100)
    # The source's own exception, untouched, for the store to re-raise.
    assert isinstance(exc.value.original, OSError)
    assert exc.value.original.errno == errno.ECONNRESET


def test_short_writes_of_a_raw_device_are_completed(fsync):
    class ShortWrites(RecordingDevice):
        def write(self, buf):
            return super().write(bytes(buf[:3]))

    dev = ShortWrites()
    _write(dev, b'abcdefgh', chunk_size=8)
    assert dev.getvalue() == b'abcdefgh'


DATA = bytes(range(256)) * 40   # 10240 bytes


def _read(offset, length, chunk_size=1000, expected_md5=None, data=DATA):
    return list(stream.read_image(io.BytesIO(data), 'img', offset, length,
                                  chunk_size, expected_md5))


@pytest.mark.parametrize('offset,length', [
    (0, len(DATA)), (1, 999), (777, 3333), (10239, 1), (4096, 0),
    (123, len(DATA) - 123)])
def test_read_range_in_bounded_chunks(offset, length):
    chunks = _read(offset, length)
    assert b''.join(chunks) == DATA[offset:offset + length]
    assert all(0 < len(c) <= 1000 for c in chunks)


def test_full_read_with_matching_checksum():
    md5 = hashlib.md5(DATA).hexdigest()
    assert b''.join(_read(0, len(DATA), expected_md5=md5)) == DATA


def test_checksum_mismatch_raises_before_the_last_chunk():
    chunks = []
    reader = stream.read_image(io.BytesIO(DATA), 'img', 0, len(DATA), 4096,
                               '0' * 32)
    with pytest.raises(exceptions.BackendException) as exc:
        for chunk in reader:
            chunks.append(chunk)
    # Everything but the last chunk: a consumer never gets it all.
    assert b''.join(chunks) == DATA[:8192]
    assert 'img' in str(exc.value) and 'Checksum' in str(exc.value)


def test_matching_checksum_yields_the_last_chunk_too():
    md5 = hashlib.md5(DATA).hexdigest()
    chunks = list(stream.read_image(io.BytesIO(DATA), 'img', 0, len(DATA),
                                    4096, md5))
    assert [len(c) for c in chunks] == [4096, 4096, 2048]
    assert b''.join(chunks) == DATA


def test_device_shorter_than_image_raises():
    with pytest.raises(exceptions.BackendException) as exc:
        _read(0, len(DATA) + 10)
    assert 'ended after %d' % len(DATA) in str(exc.value)


def test_read_errors_become_backend_errors():
    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError(errno.EIO, 'I/O error')

    with pytest.raises(exceptions.BackendException):
        list(stream.read_image(Broken(DATA), 'img', 0, 10, 4))


def test_closing_the_reader_early_stops_reading():
    dev = io.BytesIO(DATA)
    reader = stream.read_image(dev, 'img', 0, len(DATA), 1000)
    next(reader)
    reader.close()
    # the chunk handed out, and at most the one read ahead meanwhile
    assert dev.tell() in (1000, 2000)
    with pytest.raises(StopIteration):
        next(reader)


def test_closing_a_checked_reader_early_does_not_raise():
    dev = io.BytesIO(DATA)
    reader = stream.read_image(dev, 'img', 0, len(DATA), 1000, '0' * 32)
    next(reader)
    next(reader)
    reader.close()         # no checksum verdict on a partial consumption
    # two handed out, one held back, at most one more read ahead
    assert dev.tell() in (3000, 4000)


def test_many_chunks_hash_in_order(fsync):
    data = os.urandom(64 * 1024 + 7)
    result = _write(RecordingDevice(), data, chunk_size=512)
    assert result.multihash == hashlib.sha512(data).hexdigest()
    md5 = hashlib.md5(data).hexdigest()
    assert b''.join(stream.read_image(io.BytesIO(data), 'img', 0, len(data),
                                      333, md5)) == data


class SlowDevice(io.BytesIO):
    """A device whose writes can be held, to see what overlaps them."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.writing = threading.Event()

    def write(self, buf):
        self.writing.set()
        assert self.release.wait(30)
        return super().write(buf)

    def fileno(self):
        return -1


def test_reading_the_source_overlaps_the_device_write(fsync):
    """While the device holds the first write, later buffers are read.

    At most PIPELINE_DEPTH buffers wait behind it: memory stays bounded.
    """
    dev = SlowDevice()
    reads = []

    class Source(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            if len(reads) == 20:
                return 0
            reads.append(len(b))
            b[:4] = b'abcd'
            return 4

    result = {}
    writer = threading.Thread(target=lambda: result.update(
        r=stream.write_image(dev, Source(), 'img', 4, 'sha512', 1 << 20)))
    writer.start()
    assert dev.writing.wait(30)
    # the first write is held; the source was read ahead of it, but not
    # without bound
    polling.wait_for(lambda: len(reads) >= stream.PIPELINE_DEPTH + 1,
                     timeout=30, message='source read ahead')
    assert len(reads) <= stream.PIPELINE_DEPTH + 2
    dev.release.set()
    writer.join(30)
    assert result['r'].bytes_written == 80
    assert dev.getvalue() == b'abcd' * 20


def test_a_failed_write_stops_the_pipeline_and_names_the_image(fsync):
    class Full(io.BytesIO):
        def write(self, buf):
            raise OSError(errno.ENOSPC, 'No space left on device')

        def fileno(self):
            return -1

    source = io.BytesIO(os.urandom(4096))
    with pytest.raises(exceptions.StorageFull) as caught:
        stream.write_image(Full(), source, 'img-full', 64, 'sha512', 1 << 20)
    assert 'img-full' in str(caught.value)
    # it stopped early: the source was not read to its end
    assert source.tell() < 4096


# -- chunk digests ------------------------------------------------------------

def _digests_of(data, chunk_size):
    digests = stream.ChunkDigests(chunk_size)
    for start in range(0, len(data), chunk_size):
        digests.append(data[start:start + chunk_size])
    return digests


def test_chunk_digests_round_trip_through_their_metadata_value():
    data = os.urandom(1000)
    text = _digests_of(data, 64).encode()
    assert text.startswith('sha256-64:64:')
    decoded = stream.ChunkDigests.decode(text, len(data))
    assert len(decoded) == 16 and decoded.image_size == 1000
    assert decoded.matches(15, data[960:])
    assert not decoded.matches(15, data[960:999] + b'x')
    assert not decoded.matches(16, b'')


@pytest.mark.parametrize('size', [960, 1025, 0])
def test_chunk_digests_for_another_size_are_refused(size):
    text = _digests_of(os.urandom(1000), 64).encode()
    with pytest.raises(ValueError):
        stream.ChunkDigests.decode(text, size)


def test_zero_chunks_get_the_digest_of_their_zeros():
    digests = stream.ChunkDigests(8)
    digests.append(bytes(8), is_zero=True)
    digests.append(bytes(3), is_zero=True)
    assert digests.matches(0, bytes(8)) and digests.matches(1, bytes(3))


def test_upload_records_one_digest_per_chunk(fsync):
    data = os.urandom(1000) + bytes(128) + os.urandom(5)
    result = _write(RecordingDevice(), data, chunk_size=64,
                    skip_zeros=True)
    digests = stream.ChunkDigests.decode(result.chunk_digests.encode(),
                                         len(data))
    assert digests.encode() == _digests_of(data, 64).encode()


def test_images_of_too_many_chunks_keep_only_their_md5(fsync, monkeypatch):
    monkeypatch.setattr(stream.ChunkDigests, 'MAX_CHUNKS', 4)
    data = os.urandom(5 * 64)
    assert _write(RecordingDevice(), data, chunk_size=64,
                  image_size=len(data)).chunk_digests is None
    # of unknown size: dropped once the image passes the limit
    assert _write(RecordingDevice(), data, chunk_size=64).chunk_digests is None
    assert len(_write(RecordingDevice(), data[:256],
                      chunk_size=64).chunk_digests) == 4


class PaddedDevice(io.BytesIO):
    """A volume: the image, then zeros up to its end."""

    def __init__(self, data, pad=4096):
        super().__init__(data + bytes(pad))


@pytest.mark.parametrize('offset,length', [
    (0, 1000), (0, 960), (1, 63), (63, 2), (100, 900), (999, 1), (64, 64),
    (500, 0)])
def test_verified_read_returns_exactly_the_range(offset, length):
    data = os.urandom(1000)
    digests = stream.ChunkDigests.decode(_digests_of(data, 64).encode(),
                                         len(data))
    chunks = list(stream.read_image(PaddedDevice(data), 'img', offset,
                                    length, 16, digests=digests))
    assert b''.join(chunks) == data[offset:offset + length]
    assert all(0 < len(c) <= 64 for c in chunks)


def test_verified_read_stops_before_a_changed_chunk():
    data = os.urandom(1000)
    digests = stream.ChunkDigests.decode(_digests_of(data, 64).encode(),
                                         len(data))
    device = PaddedDevice(data)
    device.getbuffer()[600] ^= 1          # chunk 9
    delivered = []
    with pytest.raises(exceptions.BackendException) as caught:
        for chunk in stream.read_image(device, 'img-x', 0, 1000, 64,
                                       digests=digests):
            delivered.append(chunk)
    assert b''.join(delivered) == data[:576]
    assert 'Chunk 9 (bytes 576 to 640) of image img-x' in str(caught.value)


def test_closing_a_verified_reader_early_stops_reading():
    data = os.urandom(64 * 64)
    digests = stream.ChunkDigests.decode(_digests_of(data, 64).encode(),
                                         len(data))
    device = PaddedDevice(data)
    reader = stream.read_image(device, 'img', 0, len(data), 64,
                               digests=digests)
    assert next(reader) == data[:64]
    reader.close()
    assert device.tell() < len(data)


# -- one size of buffer, whatever the source ----------------------------------

def test_short_reads_of_the_source_still_give_whole_chunks(fsync):
    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            piece = self._data.read(min(len(b), 7))
            b[:len(piece)] = piece
            return len(piece)

    data = os.urandom(200)
    dev = RecordingDevice()
    result = stream.write_image(dev, Trickle(data), 'img', 64, 'sha512',
                                1 << 20)
    assert dev.writes == [(0, 64), (64, 64), (128, 64), (192, 8)]
    assert dev.getvalue() == data
    assert result.checksum == hashlib.md5(data).hexdigest()


def test_an_iterable_source_is_cut_into_whole_chunks(fsync):
    data = os.urandom(300)
    pieces = [data[:10], data[10:150], b'', data[150:214], data[214:]]
    dev = RecordingDevice()
    stream.write_image(dev, pieces, 'img', 64, 'sha512', 1 << 20)
    assert dev.writes == [(0, 64), (64, 64), (128, 64), (192, 64),
                          (256, 44)]
    assert dev.getvalue() == data


# -- around the page cache ----------------------------------------------------

class DirectSpy(object):
    """Records each os.pwrite and whether O_DIRECT was on for it."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = os.pwrite

        def pwrite(fd, buf, offset):
            direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
            self.calls.append((offset, len(buf), direct))
            return real(fd, buf, offset)

        monkeypatch.setattr(stream.os, 'pwrite', pwrite)


def _volume(tmp_path, size=1 << 20):
    path = tmp_path / 'volume'
    path.write_bytes(b'')
    os.truncate(path, size)
    return path


def _supports_direct_io(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
    except OSError:
        return False
    return True


def test_aligned_chunks_bypass_the_page_cache(tmp_path, monkeypatch):
    path = _volume(tmp_path)
    if not _supports_direct_io(path):
        pytest.skip('the file system of %s refuses O_DIRECT' % tmp_path)
    spy = DirectSpy(monkeypatch)
    chunk = 64 * units.Ki
    data = os.urandom(3 * chunk + 100)
    with open(path, 'r+b') as dev:
        result = stream.write_image(dev, io.BytesIO(data), 'img', chunk,
                                    'sha512', 1 << 20)
        # back to buffered for whatever comes next
        assert not fcntl.fcntl(dev.fileno(), fcntl.F_GETFL) & os.O_DIRECT
    assert spy.calls == [(0, chunk, True), (chunk, chunk, True),
                         (2 * chunk, chunk, True)]
    assert path.read_bytes()[:len(data)] == data
    assert result.bytes_written == len(data)


def test_a_refused_o_direct_writes_through_the_page_cache(tmp_path,
                                                          monkeypatch):
    path = _volume(tmp_path)
    spy = DirectSpy(monkeypatch)
    real = stream.fcntl.fcntl

    def fcntl(fd, cmd, arg=0):
        if cmd == stream.fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real(fd, cmd, arg)

    monkeypatch.setattr(stream.fcntl, 'fcntl', fcntl)
    data = os.urandom(3 * 64 * units.Ki)
    with open(path, 'r+b') as dev:
        stream.write_image(dev, io.BytesIO(data), 'img', 64 * units.Ki,
                           'sha512', 1 << 20)
    assert spy.calls == []
    assert path.read_bytes()[:len(data)] == data


def test_a_refused_direct_write_is_done_through_the_page_cache(
        tmp_path, monkeypatch):
    path = _volume(tmp_path)
    if not _supports_direct_io(path):
        pytest.skip('the file system of %s refuses O_DIRECT' % tmp_path)

    def pwrite(fd, buf, offset):
        raise OSError(errno.EINVAL, 'Invalid argument')

    monkeypatch.setattr(stream.os, 'pwrite', pwrite)
    data = os.urandom(2 * 64 * units.Ki)
    with open(path, 'r+b') as dev:
        stream.write_image(dev, io.BytesIO(data), 'img', 64 * units.Ki,
                           'sha512', 1 << 20)
    assert path.read_bytes()[:len(data)] == data


def test_unaligned_chunk_sizes_write_through_the_page_cache(tmp_path,
                                                            monkeypatch):
    path = _volume(tmp_path)
    spy = DirectSpy(monkeypatch)
    data = os.urandom(10000)
    with open(path, 'r+b') as dev:
        stream.write_image(dev, io.BytesIO(data), 'img', 1000, 'sha512',
                           1 << 20)
    assert spy.calls == []
    assert path.read_bytes()[:len(data)] == data


def test_reads_ask_the_kernel_for_the_next_chunks(tmp_path, monkeypatch):
    path = tmp_path / 'volume'
    data = os.urandom(10 * 64)
    path.write_bytes(data + bytes(4096))
    advised = []
    monkeypatch.setattr(stream.os, 'posix_fadvise',
                        lambda fd, offset, length, advice: advised.append(
                            (offset, length, advice)))
    with open(path, 'rb') as src:
        got = b''.join(stream.read_image(src, 'img', 64, 9 * 64 - 10, 64))
    assert got == data[64:64 + 9 * 64 - 10]
    # two chunks past each one read, never past the range
    assert advised[0] == (128, 128, os.POSIX_FADV_WILLNEED)
    assert max(o + n for o, n, _a in advised) <= 64 + 9 * 64 - 10
