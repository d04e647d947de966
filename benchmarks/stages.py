"""Every stage of an upload or download, alone, over the image data.

What glance_store asks of any store for every byte (md5 for the
``checksum``, the multihash for ``os_hash_value``), the chunk digests this
store records (SHA-256 of each chunk), and what the device gives when
nothing else runs: the image written in ``datera_chunk_size`` chunks to
the same kind of target the simulator exports, the way the store writes
(O_DIRECT where the target allows it, :class:`stream.DeviceWriter`), then
fsync'd; the same written through the page cache, for reference; and
read back in the same chunks.

As root the target is a loop device over a sparse file in the
simulator's data folder, attached with ``losetup --find --show
--direct-io=on`` as the simulator attaches a volume; the read goes
through a second attachment of the same file, as a store's download
attaches the volume anew.
Otherwise it is the file itself. The loop device and the file are
removed afterwards, also on failure.
"""

import contextlib
import hashlib
import os
import shutil
import subprocess
import uuid

from benchmarks import measure
from datera_glance import stream


def use_loop_devices():
    """Loop devices when root can make them (as the simulator does)."""
    return os.geteuid() == 0 and shutil.which('losetup') is not None


def _losetup(*args):
    result = subprocess.run(['losetup', *args], capture_output=True,
                            text=True, stdin=subprocess.DEVNULL)
    if result.returncode:
        raise RuntimeError('losetup %s failed (%d): %s' % (
            ' '.join(args), result.returncode, result.stderr.strip()))
    return result.stdout.strip()


class RawTarget(object):
    """A sparse file in ``directory``, seen as a loop device when possible.

    :param size: the file's size in bytes.
    :param loop: attach loop devices (None: when root has ``losetup``).
    """

    def __init__(self, directory, size, loop=None):
        self.path = os.path.join(directory,
                                 'bench-raw-%s.img' % uuid.uuid4().hex)
        self.size = size
        self.loop = use_loop_devices() if loop is None else loop

    @property
    def kind(self):
        return 'loop device' if self.loop else 'file'

    def __enter__(self):
        with open(self.path, 'wb') as f:
            f.truncate(self.size)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @contextlib.contextmanager
    def attached(self):
        """The path to open: a new loop device, detached afterwards."""
        if not self.loop:
            yield self.path
            return
        # as the simulator attaches a volume
        device = _losetup('--find', '--show', '--direct-io=on', self.path)
        try:
            yield device
        finally:
            _losetup('--detach', device)


def hash_stage(image, algorithm):
    """Hash the image in its blocks; returns the hex digest."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    for buf in image.chunks():
        hasher.update(buf)
    return hasher.hexdigest()


def chunk_digest_stage(image):
    """The store's chunk digests of the image's blocks; their count."""
    digests = stream.ChunkDigests(image.block)
    for buf in image.chunks():
        digests.append(buf)
    return len(digests)


def write_stage(path, image, direct=True):
    """Write the image in its blocks to ``path``, then fsync.

    :param direct: as the store writes (O_DIRECT where ``path`` allows
        it); False: through the page cache.
    :returns: whether the writes bypassed the page cache.
    """
    with open(os.open(path, os.O_RDWR), 'r+b') as dest:
        writer = stream.DeviceWriter(dest, image.block, direct=direct)
        bypassed = writer.direct
        try:
            offset = 0
            for buf in image.chunks():
                writer.write_at(offset, buf)
                offset += len(buf)
        finally:
            writer.close()
        dest.flush()
        os.fsync(dest.fileno())
    return bypassed


def read_stage(path, length, chunk):
    """Read ``length`` bytes of ``path`` in ``chunk`` reads; returns bytes.

    The file is opened unbuffered, as a store opens an attached volume.
    """
    done = 0
    with open(path, 'rb', buffering=0) as f:
        while done < length:
            buf = f.read(min(chunk, length - done))
            if not buf:
                break
            done += len(buf)
    return done


def stages_section(ctx):
    """md5, sha512, raw write+fsync and raw read of the main image."""
    image, figures = ctx.image, ctx.figures
    digests = {}
    for algorithm, label in (('md5', 'md5 alone'),
                             ('sha512', 'sha512 (multihash) alone')):
        figure = figures.get(algorithm, 'stages', label, image.size)
        with measure.Probe() as probe:
            digests[algorithm] = hash_stage(image, algorithm)
        figure.add_probe(probe)
    ctx.digests = (digests['md5'], digests['sha512'])
    figure = figures.get('chunk_digests', 'stages',
                         'sha256 per chunk (chunk digests) alone', image.size)
    with measure.Probe() as probe:
        chunk_digest_stage(image)
    figure.add_probe(probe)

    with RawTarget(ctx.sim.data_dir, image.size) as target:
        buffered = figures.get('write_buffered', 'stages',
                               'raw write+fsync, page cache', image.size,
                               None, target.kind + ', for reference')
        with target.attached() as path:
            with measure.Probe() as probe:
                write_stage(path, image, direct=False)
            buffered.add_probe(probe)
    with RawTarget(ctx.sim.data_dir, image.size) as target:
        ctx.target_kind = target.kind
        with target.attached() as path:
            with measure.Probe() as probe:
                direct = write_stage(path, image)
        write = figures.get('write', 'stages', 'raw write+fsync',
                            image.size, None, '%s, %s, as the store' % (
                                target.kind,
                                'O_DIRECT' if direct else 'page cache'))
        write.add_probe(probe)
        read = figures.get('read', 'stages', 'raw read', image.size, None,
                           target.kind + ', attached anew')
        with target.attached() as path:
            with measure.Probe() as probe:
                done = read_stage(path, image.size, image.block)
            read.add_probe(probe)
        if done != image.size:
            raise RuntimeError('read %d bytes of %d back'
                               % (done, image.size))
