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

"""The simulated cluster's data plane: volume files and per-host exports.

Each volume is a sparse file ``<data_dir>/volumes/<volume-uuid>.img``; each
volume snapshot a frozen sparse copy ``<data_dir>/snapshots/<id>.img``.
Clones and snapshots copy only the allocated extents of their source, so a
copy of a large, mostly empty volume stays small and quick. An
exported storage instance appears to every host (initiator IQN) in its ACL
as a link named like the one Linux's udev makes for an iSCSI LUN::

    <export_dir>/<initiator-iqn>/ip-<ip>:3260-iscsi-<target-iqn>-lun-0

The link points at the backing file or, with block devices, at a loop
device attached to it. A host "attaches" a volume by opening that link,
which is what the driver does here instead of an iSCSI login.

With an iSCSI target (:mod:`datera_edf_sim.iscsi_target`), every
export is also mirrored into a real tgtd: the storage instance's target
IQN, LUN 1 backed by the volume's file, an ACL of the same initiators.

The data plane keeps only in-memory bookkeeping of what is exported: the
control plane (the model) owns the truth and calls :meth:`sync_exports`
whenever an app instance's state or ACL changes, and once per storage
instance on startup. On startup leftovers of an earlier run are removed,
so exports only ever reflect what the model says.
"""

import collections
import errno
import json
import logging
import os
import subprocess
import threading
import uuid

from datera_edf_sim import naming as names

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3
ISCSI_PORT = names.ISCSI_PORT
_VOLUME_SUFFIX = '.img'
# Copies are made under this prefix next to their final name and renamed
# into place when complete: a failed copy never leaves a volume behind.
_PARTIAL_PREFIX = '.partial-'
# Bytes one copy_file_range call moves at most (it may move fewer).
_COPY_CHUNK = 64 * 1024 * 1024

_Export = collections.namedtuple(
    '_Export', ['target_iqn', 'ips', 'volume_uuid', 'initiators', 'links'])


class DataPlaneError(Exception):
    """A data-plane operation (file or loop device) failed."""


def export_link_name(ip, target_iqn):
    """The by-path name of LUN 0 of ``target_iqn`` seen through portal ``ip``.

    This is the name udev gives the device of an iSCSI session, so a driver
    can compute it the same way on a real cluster and here; the driver's
    own definition (``datera_glance.names``), IPv6 portals bracketed.
    """
    return names.export_link_name(ip, target_iqn, port=ISCSI_PORT)


def _run(args):
    """Run a command given as an argument list; return its stdout."""
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False, text=True)
    except OSError as e:
        raise DataPlaneError('cannot run %s: %s' % (args[0], e))
    if proc.returncode != 0:
        raise DataPlaneError('%s failed (exit %d): %s' % (
            ' '.join(args), proc.returncode, proc.stderr.strip()))
    return proc.stdout


class DataPlane(object):
    """Volume backing files, loop devices and per-host export links.

    :param data_dir: the simulator's data directory; volume files live in
        its ``volumes`` subdirectory.
    :param export_dir: where per-initiator folders of export links are made.
    :param block_devices: export loop devices instead of the files
        themselves (needs root). One loop device serves every host that has
        the volume exported; it is detached when no host has it any more.
    :param export_owner: ``(uid, gid)`` to hand every exported device (loop
        device or file) to while it is exported, the way udev rules or a
        root helper give a service user its disk: a glance-api that does
        not run as root can then open its exports. Needs root unless it is
        this process's own user. What was handed over is given back when
        the last host's export goes.
    :param iscsi_target: a started
        :class:`~datera_edf_sim.iscsi_target.TgtTarget` to mirror
        every export into (targets follow exports, grows and deletes); the
        data plane owns it from now on and stops it in :meth:`close`.
        None: links only.

    All methods are thread-safe.
    """

    def __init__(self, data_dir, export_dir, block_devices=False,
                 export_owner=None, iscsi_target=None):
        if block_devices and os.geteuid() != 0:
            raise DataPlaneError('block devices (loop devices) need root')
        if export_owner is not None and os.geteuid() != 0 and (
                tuple(export_owner) != (os.getuid(), os.getgid())):
            raise DataPlaneError('handing exports to another user needs '
                                 'root')
        self.data_dir = os.path.abspath(data_dir)
        self.export_dir = os.path.abspath(export_dir)
        self.volume_dir = os.path.join(self.data_dir, 'volumes')
        self.snapshot_dir = os.path.join(self.data_dir, 'snapshots')
        self.block_devices = block_devices
        # One lock for everything: operations are short (a truncate, a few
        # symlinks, at most one losetup, a copy of a volume's allocated
        # extents) and a single lock keeps loop device reference counting
        # and link sets consistent with each other, and a volume from being
        # deleted while it is copied.
        self._lock = threading.RLock()
        self._exports = {}  # si_uuid -> _Export
        self._loops = {}  # volume_uuid -> /dev/loopN
        self.export_owner = (tuple(export_owner) if export_owner is not None
                             else None)
        self._handed = {}  # exported path -> (uid, gid) it had before
        self.iscsi_target = iscsi_target
        self._closed = False
        os.makedirs(self.volume_dir, exist_ok=True)
        os.makedirs(self.snapshot_dir, exist_ok=True)
        os.makedirs(self.export_dir, exist_ok=True)
        if self.export_owner is not None:
            # The export owner follows the links to the devices: it may
            # pass through these folders (not list them), and list and
            # read its own folder of links.
            for path, mode in ((self.data_dir, 0o711),
                               (self.volume_dir, 0o711),
                               (self.export_dir, 0o755)):
                os.chmod(path, mode)
        self._remove_leftovers()

    # Volumes

    def volume_path(self, volume_uuid):
        """The backing file of a volume."""
        return os.path.join(self.volume_dir, volume_uuid + _VOLUME_SUFFIX)

    def create_volume(self, volume_uuid, size_gib):
        """Create the sparse backing file of a volume of ``size_gib`` GiB.

        Creating a volume that exists only makes sure it has at least that
        size, so a retried create is harmless. A create that fails leaves
        no file behind.
        """
        size = _gib_bytes(size_gib)
        with self._lock:
            self._check_open()
            path = self.volume_path(volume_uuid)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600)
            except FileExistsError:
                if os.path.getsize(path) < size:
                    os.truncate(path, size)
                return
            try:
                os.ftruncate(fd, size)
            except BaseException:
                _remove_file(path)
                raise
            finally:
                os.close(fd)

    def clone_volume(self, volume_uuid, source_volume_uuid):
        """Create a volume holding a copy of another volume's bytes.

        The copy is independent of its source (no shared blocks to write
        through) and as sparse as the source.
        """
        with self._lock:
            self._check_open()
            _sparse_copy(self.volume_path(source_volume_uuid),
                         self.volume_path(volume_uuid))

    def snapshot_path(self, snapshot_id):
        """The frozen copy of a volume snapshot."""
        return os.path.join(self.snapshot_dir, snapshot_id + _VOLUME_SUFFIX)

    def create_snapshot(self, snapshot_id, volume_uuid):
        """Freeze a copy of a volume's current bytes as a snapshot."""
        with self._lock:
            self._check_open()
            _sparse_copy(self.volume_path(volume_uuid),
                         self.snapshot_path(snapshot_id))

    def clone_snapshot(self, volume_uuid, snapshot_id):
        """Create a volume holding a snapshot's bytes."""
        with self._lock:
            self._check_open()
            _sparse_copy(self.snapshot_path(snapshot_id),
                         self.volume_path(volume_uuid))

    def delete_snapshot(self, snapshot_id):
        """Delete a snapshot's frozen copy (nothing if it is gone)."""
        with self._lock:
            self._check_open()
            try:
                os.unlink(self.snapshot_path(snapshot_id))
            except FileNotFoundError:
                pass

    def grow_volume(self, volume_uuid, size_gib):
        """Extend a volume to ``size_gib`` GiB; never shrinks it.

        An attached loop device is told to re-read its capacity, as a
        storage array's LUN grows; a host still has to rescan (here:
        ``blockdev --getsize64`` shows the new size at once).
        """
        size = _gib_bytes(size_gib)
        with self._lock:
            self._check_open()
            path = self.volume_path(volume_uuid)
            if os.path.getsize(path) < size:
                os.truncate(path, size)
            loop = self._loops.get(volume_uuid)
            if loop:
                _run(['losetup', '--set-capacity', loop])
            if self.iscsi_target is not None:
                self.iscsi_target.refresh(path)

    def delete_volume(self, volume_uuid):
        """Unexport a volume everywhere and delete its backing file."""
        with self._lock:
            self._check_open()
            for si_uuid, export in list(self._exports.items()):
                if export.volume_uuid == volume_uuid:
                    self._unexport(si_uuid)
            self._release_if_unused(volume_uuid)
            try:
                os.unlink(self.volume_path(volume_uuid))
            except FileNotFoundError:
                pass

    def volume_size(self, volume_uuid):
        """Size of the backing file in bytes."""
        return os.path.getsize(self.volume_path(volume_uuid))

    # Exports

    def sync_exports(self, si_uuid, target_iqn, ips, volume_uuid,
                     initiator_iqns):
        """Export a storage instance to exactly ``initiator_iqns``.

        Links for hosts no longer in the set are removed, links for new
        hosts are created, existing ones are replaced atomically (a host
        opening its link sees either the old or the new target, never
        nothing). An empty set unexports the storage instance.
        """
        initiators = frozenset(initiator_iqns or ())
        ips = tuple(ips or ())
        with self._lock:
            self._check_open()
            old = self._exports.get(si_uuid)
            if not initiators or not ips:
                self._unexport(si_uuid)
                if old:
                    self._release_if_unused(old.volume_uuid)
                return
            # Check every name before changing anything.
            host_dirs = [self._host_dir(iqn) for iqn in sorted(initiators)]
            target = self._attach(volume_uuid)
            if self.iscsi_target is not None:
                try:
                    # tgt reads the file itself, loop device or not.
                    self.iscsi_target.sync(
                        si_uuid, target_iqn, self.volume_path(volume_uuid),
                        initiators)
                except BaseException:
                    # Undo a first export's attach; the old export stays.
                    self._release_if_unused(volume_uuid)
                    raise
            links = set()
            for host_dir in host_dirs:
                os.makedirs(host_dir, exist_ok=True)
                for ip in ips:
                    link = os.path.join(host_dir,
                                        export_link_name(ip, target_iqn))
                    _replace_symlink(target, link)
                    links.add(link)
            if old:
                for link in old.links - links:
                    _remove_link(link)
            self._exports[si_uuid] = _Export(target_iqn, ips, volume_uuid,
                                             initiators, frozenset(links))
            if old and old.volume_uuid != volume_uuid:
                self._release_if_unused(old.volume_uuid)
            LOG.debug('exported %s (%s) to %s', si_uuid, target,
                      ', '.join(sorted(initiators)))

    def exported_initiators(self, si_uuid):
        """The IQNs a storage instance is currently exported to."""
        with self._lock:
            export = self._exports.get(si_uuid)
            return set(export.initiators) if export else set()

    def loop_device(self, volume_uuid):
        """The loop device attached to a volume, or None."""
        with self._lock:
            return self._loops.get(volume_uuid)

    def close(self):
        """Stop the iSCSI target, remove every export link, detach loops.

        Called when the simulator stops: a link left pointing at a detached
        ``/dev/loopN`` would later lead a host to someone else's device.
        Changes after this raise DataPlaneError.
        """
        with self._lock:
            self._closed = True
            if self.iscsi_target is not None:
                # First, so that hosts lose the volumes on the wire before
                # their files go back; stopping tgtd deletes its targets,
                # which leaves nothing for the unexports below to do there.
                self.iscsi_target.close()
            for si_uuid in list(self._exports):
                self._unexport(si_uuid)
            for volume_uuid in list(self._loops):
                self._detach(volume_uuid)
            for path in list(self._handed):
                self._give_back(path)

    # Internals

    def _check_open(self):
        if self._closed:
            raise DataPlaneError('the data plane is stopped')

    def _host_dir(self, iqn):
        if (not iqn or '/' in iqn or '\0' in iqn or iqn.startswith('.')
                or len(iqn) > 223):
            # 223: the longest iSCSI name (RFC 3720).
            raise DataPlaneError('invalid initiator name %r' % iqn)
        return os.path.join(self.export_dir, iqn)

    def _unexport(self, si_uuid):
        export = self._exports.pop(si_uuid, None)
        if export:
            for link in export.links:
                _remove_link(link)
            LOG.debug('unexported %s', si_uuid)
        if self.iscsi_target is not None:
            self.iscsi_target.remove(si_uuid)

    def _attach(self, volume_uuid):
        """The path hosts should see for a volume.

        With block devices, the first export attaches a loop device.
        """
        path = self.volume_path(volume_uuid)
        if not os.path.exists(path):
            raise DataPlaneError('volume %s has no backing file' % volume_uuid)
        if not self.block_devices:
            self._hand_over(path)
            return path
        loop = self._loops.get(volume_uuid)
        if not loop:
            # Direct I/O to the backing file: the volume's data is cached
            # once (by whoever reads the loop device), not a second time
            # under the file, as a remote array's disks are not in this
            # host's page cache; a write to the device then costs one
            # copy, not two.
            loop = _run(['losetup', '--find', '--show', '--direct-io=on',
                         path]).strip()
            self._loops[volume_uuid] = loop
            LOG.info('attached %s to %s', path, loop)
        self._hand_over(loop)
        return loop

    def _hand_over(self, path):
        """Give an exported device to the export owner, once."""
        if self.export_owner is None or path in self._handed:
            return
        st = os.stat(path)
        uid, gid = self.export_owner
        os.chown(path, uid, gid)
        self._handed[path] = (st.st_uid, st.st_gid)
        LOG.debug('handed %s to %d:%d', path, uid, gid)

    def _give_back(self, path):
        """Return a handed-over device to the owner it had."""
        owner = self._handed.pop(path, None)
        if owner is None:
            return
        try:
            os.chown(path, *owner)
        except FileNotFoundError:
            pass
        except OSError as e:
            LOG.warning('could not give %s back: %s', path, e)

    def _release_if_unused(self, volume_uuid):
        """Once no host has a volume exported: detach and give it back."""
        if any(e.volume_uuid == volume_uuid for e in self._exports.values()):
            return
        self._give_back(self.volume_path(volume_uuid))
        if volume_uuid in self._loops:
            self._detach(volume_uuid)

    def _detach(self, volume_uuid):
        loop = self._loops.pop(volume_uuid)
        # A loop device node outlives its attachment: its next user must
        # not find it owned by our export owner.
        self._give_back(loop)
        try:
            # A host may still hold the device open; the kernel then detaches
            # it automatically on last close.
            _run(['losetup', '--detach', loop])
            LOG.info('detached %s', loop)
        except DataPlaneError as e:
            LOG.warning('could not detach %s: %s', loop, e)

    def _remove_leftovers(self):
        """Forget the exports of an earlier run.

        A crash may have left its links and loop devices attached to our
        files, and half-made copies; the model re-exports what should be
        exported.
        """
        for folder in (self.volume_dir, self.snapshot_dir):
            for name in os.listdir(folder):
                if name.startswith(_PARTIAL_PREFIX):
                    os.unlink(os.path.join(folder, name))
        for host in os.listdir(self.export_dir):
            host_dir = os.path.join(self.export_dir, host)
            if not os.path.isdir(host_dir) or os.path.islink(host_dir):
                continue
            for name in os.listdir(host_dir):
                if name.startswith('ip-') or name.startswith('.'):
                    _remove_link(os.path.join(host_dir, name))
        if os.geteuid() != 0:
            return
        for loop in _loops_backed_by(self.volume_dir):
            try:
                _run(['losetup', '--detach', loop])
                LOG.info('detached leftover %s', loop)
            except DataPlaneError as e:
                LOG.warning('could not detach leftover %s: %s', loop, e)


def _gib_bytes(size_gib):
    """A size in GiB as bytes; only whole GiB (2.0 counts as 2)."""
    if isinstance(size_gib, bool) or not float(size_gib).is_integer():
        raise DataPlaneError('volume sizes are whole GiB, not %r'
                             % (size_gib,))
    return int(size_gib) * GiB


def _sparse_copy(source, destination):
    """Copy a file extent by extent, leaving its holes unallocated.

    The copy is made under a temporary name and renamed into place, so a
    failure (a full disk, a missing source) leaves nothing at
    ``destination``. An existing ``destination`` is refused: a volume or
    snapshot is never overwritten.
    """
    if os.path.exists(destination):
        raise DataPlaneError('%s already exists' % destination)
    partial = os.path.join(os.path.dirname(destination), '%s%s' % (
        _PARTIAL_PREFIX, os.path.basename(destination)))
    try:
        src = os.open(source, os.O_RDONLY)
    except FileNotFoundError:
        raise DataPlaneError('%s does not exist' % source)
    try:
        dst = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            size = os.fstat(src).st_size
            for start, end in _data_extents(src, size):
                _copy_range(src, dst, start, end)
            os.ftruncate(dst, size)
        finally:
            os.close(dst)
        os.replace(partial, destination)
    except BaseException:
        _remove_file(partial)
        raise
    finally:
        os.close(src)


def _data_extents(fd, size):
    """``(start, end)`` of every allocated region of an open file."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                return  # only a hole from offset to the end
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        offset = end


def _copy_range(src, dst, start, end):
    """Copy bytes [start, end) to the same offsets of ``dst``."""
    offset = start
    while offset < end:
        count = min(end - offset, _COPY_CHUNK)
        try:
            # In the kernel, without passing the bytes through here.
            copied = os.copy_file_range(src, dst, count, offset, offset)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                               errno.EOPNOTSUPP):
                raise
            copied = os.pwrite(dst, os.pread(src, count, offset), offset)
        if copied == 0:
            raise DataPlaneError('source ended while being copied')
        offset += copied


def _remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _replace_symlink(target, link):
    # Make the link under a temporary name, then rename it over the old
    # one: rename is atomic, so the link never disappears in between.
    tmp = os.path.join(os.path.dirname(link),
                       '.%s.%s' % (uuid.uuid4().hex, os.path.basename(link)))
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        os.unlink(tmp)
        raise


def _remove_link(link):
    try:
        os.unlink(link)
    except FileNotFoundError:
        pass
    # Drop the host's folder once it exports nothing, so each host's view
    # is exactly its folder's content.
    try:
        os.rmdir(os.path.dirname(link))
    except OSError:
        pass


def _loops_backed_by(directory):
    """Loop devices whose backing file is in ``directory``."""
    try:
        out = _run(['losetup', '--list', '--json', '--output',
                    'NAME,BACK-FILE'])
    except DataPlaneError as e:
        LOG.warning('cannot list loop devices: %s', e)
        return []
    if not out.strip():
        return []
    prefix = directory.rstrip('/') + '/'
    loops = []
    for dev in json.loads(out).get('loopdevices', []):
        back = dev.get('back-file') or ''
        if back.startswith(prefix):
            loops.append(dev['name'])
    return loops
