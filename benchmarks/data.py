"""Generated image data: the same bytes for every stage and operation.

An :class:`ImageData` describes an image of ``size`` bytes cut in blocks
of ``block`` bytes (``datera_chunk_size``): dense blocks cycle through a
pool of random blocks, and a chosen fraction of the blocks, spread evenly,
are all zeros. Nothing is held but the pool, so a 4 GiB image costs no
more memory than a 128 MiB one.

The source must not be what a benchmark measures: a read of one whole,
aligned block hands out the pool's own ``bytes`` object, without a copy.
Only reads of another size (glance's filesystem store reads 64 KiB at a
time) slice, as any file would copy into the reader's buffer.
"""

import hashlib
import io
import os

from oslo_utils import units

#: Random bytes that dense blocks cycle through (at least one block).
POOL_BYTES = 32 * units.Mi


class ImageData(object):
    """The description, and the bytes, of one generated image.

    :param size: bytes in the image.
    :param block: bytes per block; reads of this size are free.
    :param zero_fraction: the share of blocks that are all zeros (0.9: one
        block in ten is dense), spread evenly over the image.
    :param pool: reuse the random blocks of another ImageData of the same
        ``block`` (the same data, another size or zero fraction).
    """

    def __init__(self, size, block, zero_fraction=0.0, pool=None):
        if size < 0 or block <= 0:
            raise ValueError('bad image size %r or block %r' % (size, block))
        self.size = int(size)
        self.block = int(block)
        self.zero_fraction = float(zero_fraction)
        if pool is None:
            count = max(1, POOL_BYTES // self.block)
            pool = [os.urandom(self.block) for _ in range(count)]
        elif len(pool[0]) != self.block:
            raise ValueError('the pool is of another block size')
        self.pool = pool
        self._zeros = bytes(self.block)

    def like(self, size=None, zero_fraction=None):
        """The same blocks, for an image of another size or zero share."""
        return ImageData(self.size if size is None else size, self.block,
                         self.zero_fraction if zero_fraction is None
                         else zero_fraction, pool=self.pool)

    @property
    def blocks(self):
        """Number of blocks (the last one may be short)."""
        return -(-self.size // self.block)

    def is_zero(self, index):
        """Whether block ``index`` is all zeros."""
        z = self.zero_fraction
        return int((index + 1) * z) != int(index * z)

    def block_bytes(self, index):
        """The whole block ``index`` (``block`` bytes; the last one cut)."""
        data = (self._zeros if self.is_zero(index)
                else self.pool[index % len(self.pool)])
        end = self.size - index * self.block
        return data if end >= self.block else data[:end]

    def chunks(self):
        """The image as a generator of its blocks (no copies)."""
        for index in range(self.blocks):
            yield self.block_bytes(index)

    def bytes_at(self, offset, length):
        """``length`` bytes of the image from ``offset``, as one copy."""
        out = []
        end = min(self.size, offset + length)
        while offset < end:
            index, within = divmod(offset, self.block)
            piece = self.block_bytes(index)[within:within + end - offset]
            out.append(piece)
            offset += len(piece)
        return b''.join(out)

    def reader(self):
        """A new file-like reader of the image, from its start."""
        return ImageReader(self)

    def digests(self):
        """(md5, sha512) hex digests of the image, as glance records them."""
        md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        for buf in self.chunks():
            md5.update(buf)
            sha512.update(buf)
        return md5.hexdigest(), sha512.hexdigest()

    def write_to(self, path):
        """Write the image to a file (for the glance CLI)."""
        with open(path, 'wb') as f:
            for buf in self.chunks():
                f.write(buf)
            f.flush()
            os.fsync(f.fileno())
        return path

    def describe(self):
        if self.zero_fraction:
            return '%d MiB, %d%% zeros' % (self.size // units.Mi,
                                           round(100 * self.zero_fraction))
        return '%d MiB, dense' % (self.size // units.Mi)


class ImageReader(io.RawIOBase):
    """A readable, non-seekable file over an :class:`ImageData`.

    ``read(n)`` returns at most the rest of the current block, as a file
    or a pipe may return less than asked; a whole aligned block is the
    pool's own object.
    """

    def __init__(self, image):
        super().__init__()
        self.image = image
        self.pos = 0

    def readable(self):
        return True

    def read(self, n=-1):
        image = self.image
        if self.pos >= image.size:
            return b''
        if n is None or n < 0:
            n = image.block
        index, within = divmod(self.pos, image.block)
        data = image.block_bytes(index)
        if within or n < len(data):
            data = data[within:within + n]
        self.pos += len(data)
        return data

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)
