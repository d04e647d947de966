"""A fake Linux iSCSI/SCSI kernel for os-brick's real ISCSIConnector.

os-brick's ``ISCSIConnector`` drives open-iscsi (``iscsiadm``), the SCSI
mid-layer (writes to ``/sys/class/scsi_host/hostN/scan``,
``/sys/block/sdX/device/delete``, ``/sys/bus/scsi/drivers/sd/H:C:T:L/rescan``),
udev (``/dev/disk/by-path``, ``/dev/disk/by-id``, ``/lib/udev/scsi_id``) and
multipath.  None of that exists on this machine: the kernel has no iSCSI
initiator, no SCSI disk driver and no device-mapper.  This module stands in
for all of it so that os-brick's code runs *unmodified* against a real
userspace iSCSI target (tgtd) that judges every login.

What is real
    * os-brick itself (connector, linuxscsi, privileged calls, locks).
    * Every iSCSI conversation: ``iscsiadm --login``, ``-m discovery`` and
      each SCSI scan/rescan log in to the target over TCP with libiscsi
      (``libiscsi.so.7`` through ctypes, in the stand-in processes only),
      using the initiator name of ``/etc/iscsi/initiatorname.iscsi``.  The
      target checks the initiator IQN against its ACL, the target IQN, the
      portal and the LUN; refusals come back as iscsiadm's exit codes.
    * LUN existence, size (READ CAPACITY 16), vendor/model (INQUIRY), WWN
      (VPD page 0x83) and serial (VPD page 0x80) as the target reports them.
    * ``/dev/sdX`` is a real block device: the node of a loop device bound
      (LOOP_CONFIGURE) to the LUN's backing file, limited to the capacity the
      target reports; ``blockdev``, ``dd`` and ``lsscsi`` are the real tools.

What is fake
    * The "kernel" state: sessions, SCSI hosts and devices live in a JSON
      file under the state folder; sysfs is tmpfs (``/sys/class``,
      ``/sys/block``, ``/sys/bus``, ``/sys/devices``, ``/sys/dev``) laid out
      like the real one, ``/dev`` is a tmpfs with the usual nodes.
    * No iSCSI connection is held between commands: a "session" is a login
      that succeeded; scans and rescans log in again (same initiator name
      and CHAP credentials), so tgtadm shows no lasting I_T nexus.  A
      session's TPGT is the node record's (from SendTargets) or else 1,
      tgt's default portal group.
    * Every stand-in call and every control-file write is logged to
      ``<state>/calls.log`` (``FakeKernel.calls()``; shown under a failed
      test by conftest.py).
    * Data does not travel over iSCSI: the loop device reads and writes the
      LUN's backing file directly (found with ``tgtadm`` on the control port
      of the tgtd listening on the session's portal).
    * The sysfs control files are acted on when written by ``tee`` (os-brick
      always writes them with ``tee -a``): a stand-in ``tee`` first on PATH
      performs the scan/delete/rescan synchronously, as the kernel does
      inside write(2), and hands every other file to the real tee.
    * ``iscsiadm``, ``/lib/udev/scsi_id``, ``multipath`` and ``multipathd``
      are stand-ins (generated into ``<state>/bin``; ``scsi_id`` is put in
      place with an overlay on ``/usr/lib/udev``, the initiator name with an
      overlay on ``/etc``).  ``multipathd`` is "not running" unless the
      FakeKernel is made with ``multipathd=True``.  Not running: os-brick
      warns, logs in on every portal, finds every path and, no dm ever
      appearing, returns one ``/dev/sdX``.  Running: ``multipath -a WWID``
      and ``multipathd add path`` (and later paths of a known WWID, as
      multipathd's uevents would) make a fake ``dm-N`` listed in the paths'
      ``holders``, with ``dm/name``, ``dm/uuid`` (``mpath-WWID``),
      ``/dev/mapper/WWID`` and ``/dev/disk/by-id/dm-uuid-mpath-WWID``; its
      node is one more loop device on the LUN's backing file (there is no
      device-mapper: no path failover, I/O goes straight to the file).
      ``multipath -f``, ``multipathd del map``, ``resize map``,
      ``show paths`` and ``multipath -C`` act on it.

LUN mapping
    tgt's LUN 0 is its controller and its first disk is LUN 1, while the
    Datera driver (and cinder) attach LUN 0.  The fake kernel maps the
    host-side LUN ``L`` to the target's LUN ``L + 1`` in every scan, rescan
    and ``by-path`` link (``...-lun-0`` is tgt's LUN 1).  A host LUN whose
    target LUN does not exist (REPORT LUNS) or is not a disk creates no
    device.

iscsiadm exit codes (open-iscsi's): 21 no records / sessions, 15 session
already present, 24 authentication/authorization failure (login status
0x0201/0x0202), 19 other initiator errors (tgt answers an initiator missing
from its ACL, and an unknown target, with 0x0203 "target not found", which
open-iscsi reports as 19), 8 connection failure, 7 invalid parameters,
6 database errors.

All of this needs root and a private mount namespace; see
``enter_private_mount_namespace`` and ``tests/iscsi/conftest.py``.
"""

import contextlib
import ctypes
import errno
import fcntl
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from datera_edf_sim import iscsi_target
from datera_glance_dev import polling

HERE = os.path.dirname(os.path.abspath(__file__))
# The checkout: the stand-ins import the test harness (datera_glance_dev)
# from it, which is never installed.
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

SYSFS_TREES = ('/sys/class', '/sys/block', '/sys/bus', '/sys/devices',
               '/sys/dev')
SCSI_ID = '/lib/udev/scsi_id'
INITIATOR_FILE = '/etc/iscsi/initiatorname.iscsi'
FIRST_HOST = 2
LUN_OFFSET = 1  # host LUN L is tgt's LUN L + 1 (tgt's LUN 0: controller)
RECORD_VERSION = '2.1.8'
REAL_TEE = '/usr/bin/tee'

# open-iscsi's exit codes (include/iscsi_err.h) and their messages.
ISCSI_ERR_LOGIN = 5
ISCSI_ERR_IDBM = 6
ISCSI_ERR_INVAL = 7
ISCSI_ERR_TRANS_TIMEOUT = 8
ISCSI_ERR_SESS_EXISTS = 15
ISCSI_ERR_FATAL_LOGIN = 19
ISCSI_ERR_NO_OBJS_FOUND = 21
ISCSI_ERR_LOGIN_AUTH_FAILED = 24
ISCSI_ERR_TRANS = 4
ISCSI_ERR_MESSAGES = {
    ISCSI_ERR_LOGIN: 'iSCSI login failed',
    ISCSI_ERR_IDBM: 'database failure',
    ISCSI_ERR_INVAL: 'invalid parameter',
    ISCSI_ERR_TRANS_TIMEOUT: 'connection timed out',
    ISCSI_ERR_SESS_EXISTS: 'session exists',
    ISCSI_ERR_FATAL_LOGIN: 'encountered non-retryable iSCSI login failure',
    ISCSI_ERR_NO_OBJS_FOUND: 'no records found',
    ISCSI_ERR_LOGIN_AUTH_FAILED:
        'iSCSI login failed due to authorization failure',
    ISCSI_ERR_TRANS: 'iSCSI transport error',
}

# Linux constants.
CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
LOOP_CLR_FD = 0x4C01
LOOP_SET_STATUS64 = 0x4C04
LOOP_GET_STATUS64 = 0x4C05
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LOOP_MAJOR = 7
LO_NAME_SIZE = 64
# struct loop_info64: 5 u64, 4 u32, 2 x 64 bytes of names, 32 key, 2 u64.
LOOP_INFO64 = struct.Struct('=QQQQQIIII64s64s32sQQ')
# struct loop_config: u32 fd, u32 block_size, loop_info64, 8 u64.
LOOP_CONFIG = struct.Struct('=II%ds64x' % LOOP_INFO64.size)


# ---------------------------------------------------------------- mounts

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def mount(source, target, fstype, flags=0, data=None):
    """mount(2), without a shell or the mount tool."""
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong,
                                                   ctypes.c_char_p]
    _check(libc.mount(source and source.encode(), target.encode(),
                      fstype and fstype.encode(), flags,
                      data and data.encode()),
           'mount %s on %s' % (fstype or source, target))


def umount(target, lazy=False):
    libc = _libc()
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    _check(libc.umount2(target.encode(), MNT_DETACH if lazy else 0),
           'umount %s' % target)


def enter_private_mount_namespace():
    """Move this process into a new mount namespace, private from "/".

    Nothing mounted afterwards is seen by other processes, and the
    namespace (with every mount in it) goes away with the process.  Needs
    root and a process without other threads (unshare(CLONE_NEWNS) fails
    with EINVAL otherwise); raises OSError when it cannot be done.
    """
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), 'unshare(CLONE_NEWNS)')
    mount(None, '/', None, MS_REC | MS_PRIVATE)


def _mount_points():
    points = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            points.append(line.split()[4].replace('\\040', ' '))
    return points


# ----------------------------------------------------------- libiscsi

class IscsiError(Exception):
    """An iSCSI failure, with the iscsiadm exit code it maps to."""

    def __init__(self, exit_code, message, sense=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.sense = sense


def login_error(message):
    """Map a libiscsi error text to open-iscsi's exit code."""
    match = re.search(r'Status: (.*)\((\d+)\)', message)
    if match:
        status = int(match.group(2))
        if status in (0x0201, 0x0202):
            return IscsiError(ISCSI_ERR_LOGIN_AUTH_FAILED, message)
        if status >> 8 == 0x02:
            return IscsiError(ISCSI_ERR_FATAL_LOGIN, message)
        return IscsiError(ISCSI_ERR_LOGIN, message)
    if 'SENSE KEY' in message:
        return IscsiError(ISCSI_ERR_LOGIN, message, sense=message)
    return IscsiError(ISCSI_ERR_TRANS_TIMEOUT, message)


class _Designator(ctypes.Structure):
    pass


_Designator._fields_ = [
    ('next', ctypes.POINTER(_Designator)),
    ('protocol_identifier', ctypes.c_int), ('code_set', ctypes.c_int),
    ('piv', ctypes.c_int), ('association', ctypes.c_int),
    ('designator_type', ctypes.c_int), ('designator_length', ctypes.c_int),
    ('designator', ctypes.c_void_p)]


class _DeviceIdentification(ctypes.Structure):
    _fields_ = [('qualifier', ctypes.c_int), ('device_type', ctypes.c_int),
                ('pagecode', ctypes.c_int),
                ('designators', ctypes.POINTER(_Designator))]


class _UnitSerial(ctypes.Structure):
    _fields_ = [('qualifier', ctypes.c_int), ('device_type', ctypes.c_int),
                ('pagecode', ctypes.c_int), ('usn', ctypes.c_char_p)]


class _StandardInquiry(ctypes.Structure):
    # libiscsi >= 1.10 (with additional_length); only the first two are
    # relied upon, the strings are checked before use.
    _fields_ = ([('qualifier', ctypes.c_int), ('device_type', ctypes.c_int)]
                + [('i%d' % i, ctypes.c_int) for i in range(20)]
                + [('vendor', ctypes.c_char * 9),
                   ('product', ctypes.c_char * 17),
                   ('revision', ctypes.c_char * 5)])


class _ReadCapacity16(ctypes.Structure):
    _fields_ = [('returned_lba', ctypes.c_uint64),
                ('block_length', ctypes.c_uint32)]


class _ReportLuns(ctypes.Structure):
    _fields_ = [('num', ctypes.c_uint32), ('luns', ctypes.c_uint16 * 256)]


class _Portal(ctypes.Structure):
    pass


_Portal._fields_ = [('next', ctypes.POINTER(_Portal)),
                    ('portal', ctypes.c_char_p)]


class _Discovery(ctypes.Structure):
    pass


_Discovery._fields_ = [('next', ctypes.POINTER(_Discovery)),
                       ('target_name', ctypes.c_char_p),
                       ('portals', ctypes.POINTER(_Portal))]


def _libiscsi():
    lib = ctypes.CDLL('libiscsi.so.7')
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs = {
        'iscsi_create_context': (vp, [cp]),
        'iscsi_destroy_context': (i, [vp]),
        'iscsi_get_error': (cp, [vp]),
        'iscsi_set_targetname': (i, [vp, cp]),
        'iscsi_set_session_type': (i, [vp, i]),
        'iscsi_set_header_digest': (i, [vp, i]),
        'iscsi_set_initiator_username_pwd': (i, [vp, cp, cp]),
        'iscsi_connect_sync': (i, [vp, cp]),
        'iscsi_login_sync': (i, [vp]),
        'iscsi_full_connect_sync': (i, [vp, cp, i]),
        'iscsi_logout_sync': (i, [vp]),
        'iscsi_inquiry_sync': (vp, [vp, i, i, i, i]),
        'iscsi_readcapacity16_sync': (vp, [vp, i]),
        'iscsi_reportluns_sync': (vp, [vp, i, i]),
        'iscsi_discovery_sync': (vp, [vp]),
        'iscsi_free_discovery_data': (None, [vp, vp]),
        'scsi_datain_unmarshall': (vp, [vp]),
        'scsi_free_scsi_task': (None, [vp]),
    }
    for name, (restype, argtypes) in sigs.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    return lib


class IscsiLogin(object):
    """One real iSCSI session to a target, made with libiscsi.

    Use as a context manager; raises IscsiError when the login fails.
    ``lun`` is the LUN libiscsi tests once logged in (tgt's controller, LUN
    0, always exists).
    """

    def __init__(self, initiator, portal, target=None, lun=0,
                 username=None, password=None):
        self.lib = _libiscsi()
        self.initiator = initiator
        self.portal = portal
        self.target = target
        self.lun = lun
        self.username = username
        self.password = password
        self.ctx = None

    def _error(self):
        return (self.lib.iscsi_get_error(self.ctx) or b'').decode(
            'utf-8', 'replace').strip()

    def __enter__(self):
        self.ctx = self.lib.iscsi_create_context(self.initiator.encode())
        if not self.ctx:
            raise IscsiError(ISCSI_ERR_LOGIN, 'iscsi_create_context failed')
        if self.username:
            self.lib.iscsi_set_initiator_username_pwd(
                self.ctx, self.username.encode(),
                (self.password or '').encode())
        try:
            if self.target is None:
                self.lib.iscsi_set_session_type(self.ctx, 1)  # discovery
                if self.lib.iscsi_connect_sync(self.ctx,
                                               self.portal.encode()):
                    raise IscsiError(ISCSI_ERR_TRANS, self._error())
                if self.lib.iscsi_login_sync(self.ctx):
                    raise login_error(self._error())
            else:
                self.lib.iscsi_set_targetname(self.ctx, self.target.encode())
                self.lib.iscsi_set_session_type(self.ctx, 2)  # normal
                self.lib.iscsi_set_header_digest(self.ctx, 0)
                if self.lib.iscsi_full_connect_sync(
                        self.ctx, self.portal.encode(), self.lun):
                    raise login_error(self._error())
        except Exception:
            self.lib.iscsi_destroy_context(self.ctx)
            self.ctx = None
            raise
        return self

    def __exit__(self, *exc):
        if self.ctx:
            self.lib.iscsi_logout_sync(self.ctx)
            self.lib.iscsi_destroy_context(self.ctx)
            self.ctx = None

    def _unmarshalled(self, command, ctype):
        """Run ``command`` (returns a task), past unit attentions."""
        for attempt in range(8):
            task = command()
            if not task:
                raise IscsiError(ISCSI_ERR_LOGIN, self._error())
            status = ctypes.cast(task, ctypes.POINTER(ctypes.c_int))[0]
            if status == 0:
                break
            self.lib.scsi_free_scsi_task(task)
            error = self._error()
            if 'UNIT_ATTENTION' not in error or attempt == 7:
                raise IscsiError(ISCSI_ERR_LOGIN, error, sense=error)
        data = self.lib.scsi_datain_unmarshall(task)
        if not data:
            self.lib.scsi_free_scsi_task(task)
            raise IscsiError(ISCSI_ERR_LOGIN, 'cannot unmarshall')
        return task, ctypes.cast(data, ctypes.POINTER(ctype)).contents

    def discovery(self):
        """SendTargets: [(target_iqn, ['ip:port,tpgt', ...]), ...]."""
        data = self.lib.iscsi_discovery_sync(self.ctx)
        result = []
        entry = ctypes.cast(data, ctypes.POINTER(_Discovery))
        while entry:
            portals = []
            portal = entry.contents.portals
            while portal:
                portals.append(portal.contents.portal.decode())
                portal = portal.contents.next
            result.append((entry.contents.target_name.decode(), portals))
            entry = entry.contents.next
        if data:
            self.lib.iscsi_free_discovery_data(self.ctx, data)
        return result

    def report_luns(self):
        task, luns = self._unmarshalled(
            lambda: self.lib.iscsi_reportluns_sync(self.ctx, 0, 4096),
            _ReportLuns)
        result = [luns.luns[n] & 0x3fff for n in range(min(luns.num, 256))]
        self.lib.scsi_free_scsi_task(task)
        return result

    def inquiry(self, lun):
        task, inq = self._unmarshalled(
            lambda: self.lib.iscsi_inquiry_sync(self.ctx, lun, 0, 0, 255),
            _StandardInquiry)

        def text(value, default):
            value = value.decode('latin-1')
            return value if value.isprintable() and value else default
        result = {'qualifier': inq.qualifier,
                  'device_type': inq.device_type,
                  'vendor': text(inq.vendor, 'IET     '),
                  'model': text(inq.product, 'VIRTUAL-DISK    '),
                  'rev': text(inq.revision, '0001')}
        self.lib.scsi_free_scsi_task(task)
        return result

    def designators(self, lun):
        """VPD page 0x83: [(code_set, association, type, bytes), ...]."""
        task, page = self._unmarshalled(
            lambda: self.lib.iscsi_inquiry_sync(self.ctx, lun, 1, 0x83, 255),
            _DeviceIdentification)
        result = []
        desig = page.designators
        while desig:
            d = desig.contents
            result.append((d.protocol_identifier, d.code_set, d.piv,
                           d.association, d.designator_type,
                           ctypes.string_at(d.designator,
                                            d.designator_length)))
            desig = d.next
        self.lib.scsi_free_scsi_task(task)
        return result

    def serial(self, lun):
        task, page = self._unmarshalled(
            lambda: self.lib.iscsi_inquiry_sync(self.ctx, lun, 1, 0x80, 255),
            _UnitSerial)
        result = (page.usn or b'').decode('latin-1')
        self.lib.scsi_free_scsi_task(task)
        return result

    def capacity(self, lun):
        """(size in bytes, logical block size)."""
        task, cap = self._unmarshalled(
            lambda: self.lib.iscsi_readcapacity16_sync(self.ctx, lun),
            _ReadCapacity16)
        result = ((cap.returned_lba + 1) * cap.block_length,
                  cap.block_length)
        self.lib.scsi_free_scsi_task(task)
        return result


# --------------------------------------------------------------- loops

def _loop_minor(number):
    try:
        with open('/sys/module/loop/parameters/max_part') as f:
            max_part = int(f.read().strip() or 0)
    except (OSError, ValueError):
        max_part = 0
    return number << (max_part.bit_length() if max_part else 0)


def loop_attach(node, backing_file, sizelimit):
    """Bind a free loop device to backing_file; its node is ``node``.

    Returns the loop device number.  Retries when another process takes
    the free device first (loop devices are shared by the whole machine).
    """
    ctl = os.open('/dev/loop-control', os.O_RDWR)
    backing = os.open(backing_file, os.O_RDWR)
    try:
        for __ in range(50):
            number = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(node)
            os.mknod(node, 0o660 | 0o060000,
                     os.makedev(LOOP_MAJOR, _loop_minor(number)))
            name = os.path.realpath(backing_file).encode()[:LO_NAME_SIZE - 1]
            info = LOOP_INFO64.pack(0, 0, 0, 0, sizelimit, 0, 0, 0, 0,
                                    name, b'', b'', 0, 0)
            config = bytearray(LOOP_CONFIG.pack(backing, 0, info))
            fd = os.open(node, os.O_RDWR)
            try:
                fcntl.ioctl(fd, LOOP_CONFIGURE, config)
                return number
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            finally:
                os.close(fd)
            os.unlink(node)
        raise OSError(errno.EBUSY, 'no free loop device')
    finally:
        os.close(backing)
        os.close(ctl)


def _loop_status(fd):
    buf = bytearray(LOOP_INFO64.size)
    fcntl.ioctl(fd, LOOP_GET_STATUS64, buf)
    return LOOP_INFO64.unpack(bytes(buf))


@contextlib.contextmanager
def _loop_fd(number):
    """An fd on loop device ``number`` through a temporary node."""
    tmp = tempfile.mkdtemp(prefix='fake-kernel-loop-', dir='/dev')
    node = os.path.join(tmp, 'loop%d' % number)
    try:
        os.mknod(node, 0o600 | 0o060000,
                 os.makedev(LOOP_MAJOR, _loop_minor(number)))
        fd = os.open(node, os.O_RDWR)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def loop_backing(number):
    """(inode, file name) of loop device ``number``, None if unbound."""
    try:
        with _loop_fd(number) as fd:
            info = _loop_status(fd)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise
    return info[1], info[9].rstrip(b'\0').decode('utf-8', 'replace')


def loop_detach(number, inode):
    """Unbind loop device ``number`` if it is still bound to ``inode``."""
    try:
        with _loop_fd(number) as fd:
            if _loop_status(fd)[1] != inode:
                return False
            fcntl.ioctl(fd, LOOP_CLR_FD)
            return True
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return False
        raise


def loop_set_sizelimit(number, sizelimit):
    """Resize loop device ``number`` to ``sizelimit`` bytes."""
    with _loop_fd(number) as fd:
        info = list(_loop_status(fd))
        info[4] = sizelimit
        fcntl.ioctl(fd, LOOP_SET_STATUS64,
                    bytearray(LOOP_INFO64.pack(*info)))


# ----------------------------------------------------------------- tgt

def split_portal(portal):
    """'ip:port[,tpgt]' or '[v6]:port' -> (ip, port, tpgt or None)."""
    tpgt = None
    if ',' in portal:
        portal, tpgt = portal.rsplit(',', 1)
        tpgt = int(tpgt)
    if portal.startswith('['):
        ip, __, rest = portal[1:].partition(']')
        port = rest.lstrip(':') or '3260'
    elif portal.count(':') == 1:
        ip, port = portal.split(':')
    else:
        ip, port = portal, '3260'
    return ip, int(port), tpgt


def _proc_net_address(ip):
    """An address as /proc/net/tcp{,6} prints it (32-bit words, host order)."""
    if ':' in ip:
        packed = socket.inet_pton(socket.AF_INET6, ip)
        return ''.join(packed[i:i + 4][::-1].hex().upper()
                       for i in range(0, 16, 4)), '/proc/net/tcp6'
    return socket.inet_aton(ip)[::-1].hex().upper(), '/proc/net/tcp'


def _listening_inodes(ip, port):
    address, table = _proc_net_address(ip)
    want = '%s:%04X' % (address, port)
    inodes = set()
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == '0A':
                inodes.add('socket:[%s]' % fields[9])
    return inodes


def tgt_control_port(ip, port):
    """The control port (-C) of the tgtd listening on ip:port, or None."""
    inodes = _listening_inodes(ip, port)
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/comm' % pid) as f:
                if f.read().strip() != 'tgtd':
                    continue
            fds = os.listdir('/proc/%s/fd' % pid)
            if not any(os.readlink('/proc/%s/fd/%s' % (pid, fd)) in inodes
                       for fd in fds):
                continue
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                args = f.read().decode().split('\0')
        except OSError:
            continue
        for n, arg in enumerate(args):
            if arg in ('-C', '--control-port') and n + 1 < len(args):
                return int(args[n + 1])
            if arg.startswith('--control-port='):
                return int(arg.split('=', 1)[1])
        return 0
    return None


def tgtadm(control_port, *args):
    cmd = ['tgtadm', '-C', str(control_port), '--lld', 'iscsi'] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          timeout=30).stdout


def tgt_targets(control_port):
    """The targets of the tgtd on ``control_port``.

    Parsed as the simulator parses them
    (:func:`datera_edf_sim.iscsi_target.parse_show_targets`).
    """
    return iscsi_target.parse_show_targets(
        tgtadm(control_port, '--op', 'show', '--mode', 'target'))


def _portal_in_use(ip, port):
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        return False
    except OSError:
        return True
    finally:
        sock.close()


class TgtTarget(object):
    """A tgtd of its own: one target, LUN 1 a sparse file, an IQN ACL.

    Portals are 127.A.B.1:3260 (and .2, ...) with random A and B, the
    control port a random free one, so that it never meets another tgtd.
    """

    def __init__(self, workdir, initiators, portals=2, size=64 << 20,
                 iqn=None, tid=None):
        self.workdir = workdir
        self.initiators = list(initiators)
        self.num_portals = portals
        self.size = size
        suffix = '%08x' % random.getrandbits(32)
        self.iqn = iqn or 'iqn.2013-05.com.daterainc:tc:01:sn:%s' % suffix
        self.tid = tid or random.randint(1, 999)
        self.lun_file = os.path.join(workdir, 'lun1-%s.img' % suffix)
        self.log_file = os.path.join(workdir, 'tgtd-%s.log' % suffix)
        self.proc = None
        self.control_port = None
        self.portals = []

    def _candidate(self):
        while True:
            a, b = random.randint(1, 254), random.randint(1, 254)
            ips = ['127.%d.%d.%d' % (a, b, n + 1)
                   for n in range(self.num_portals)]
            if not any(_portal_in_use(ip, 3260) for ip in ips):
                return ips, random.randint(10000, 32000)

    def start(self, timeout=30):
        with open(self.lun_file, 'wb') as f:
            f.truncate(self.size)
        for attempt in range(5):
            ips, control_port = self._candidate()
            if os.path.exists('/var/run/tgtd/socket.%d' % control_port):
                continue
            portal_arg = ','.join('portal=%s:3260' % ip for ip in ips)
            log = open(self.log_file, 'ab')
            self.proc = subprocess.Popen(
                ['tgtd', '-f', '-C', str(control_port), '--iscsi',
                 portal_arg], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            self.control_port = control_port
            try:
                polling.wait_for(self._ready(ips), timeout=timeout,
                                 message='tgtd listening on %s' % ips)
                break
            except (RuntimeError, AssertionError):      # died, or too slow
                self._stop_tgtd()
        else:
            raise RuntimeError('could not start tgtd, see %s' % self.log_file)
        self.portals = ['%s:3260' % ip for ip in ips]
        self.tgtadm('--op', 'new', '--mode', 'target', '--tid',
                    str(self.tid), '--targetname', self.iqn)
        self.add_lun(1, self.lun_file)
        for name in self.initiators:
            self.bind(name)
        return self

    def _ready(self, ips):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError('tgtd exited with %s' % self.proc.poll())
            if not all(_listening_inodes(ip, 3260) for ip in ips):
                return False
            return subprocess.run(
                ['tgtadm', '-C', str(self.control_port), '--op', 'show',
                 '--mode', 'sys'], capture_output=True).returncode == 0
        return ready

    def tgtadm(self, *args):
        return tgtadm(self.control_port, *args)

    def add_lun(self, lun, path):
        self.tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid',
                    str(self.tid), '--lun', str(lun), '--backing-store', path)

    def delete_lun(self, lun):
        self.tgtadm('--op', 'delete', '--mode', 'logicalunit', '--tid',
                    str(self.tid), '--lun', str(lun))

    def bind(self, initiator):
        self.tgtadm('--op', 'bind', '--mode', 'target', '--tid',
                    str(self.tid), '--initiator-name', initiator)

    def unbind(self, initiator):
        self.tgtadm('--op', 'unbind', '--mode', 'target', '--tid',
                    str(self.tid), '--initiator-name', initiator)

    def grow(self, new_size):
        """Grow LUN 1's file and make tgt see it (delete and re-add)."""
        with open(self.lun_file, 'r+b') as f:
            f.truncate(new_size)
        self.size = new_size
        self.delete_lun(1)
        self.add_lun(1, self.lun_file)

    def show(self):
        return tgt_targets(self.control_port)

    def _stop_tgtd(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # tgtd ignores SIGTERM; it leaves when told, once targetless.
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                for tid in [t['tid'] for t in self.show().values()]:
                    self.tgtadm('--op', 'delete', '--mode', 'target',
                                '--tid', str(tid), '--force')
                subprocess.run(['tgtadm', '-C', str(self.control_port),
                                '--op', 'delete', '--mode', 'system'],
                               capture_output=True, timeout=30)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        for suffix in ('', '.lock'):
            path = '/var/run/tgtd/socket.%d%s' % (self.control_port, suffix)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def stop(self):
        self._stop_tgtd()
        for path in (self.lun_file, self.log_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


# ----------------------------------------------------- the kernel state

def _write(path, content, mode=0o644):
    if isinstance(content, str):
        content = content.encode()
    with open(path, 'wb') as f:
        f.write(content)
    os.chmod(path, mode)


def _symlink(target, link):
    """A relative symlink, as sysfs and udev make them."""
    os.makedirs(os.path.dirname(link), exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(link)
    os.symlink(os.path.relpath(target, os.path.dirname(link)), link)


def _unlink(*paths):
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _rmtree(path):
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _disk_name(index):
    """sda, ..., sdz, sdaa, ... as the sd driver names them."""
    name = ''
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord('a') + rem) + name
    return 'sd' + name


def wwid_of(designators):
    """The kernel's sysfs ``wwid`` (scsi_vpd_lun_id) from VPD 0x83."""
    best = None
    for __, code_set, __, assoc, dtype, data in designators:
        if assoc != 0:
            continue
        if dtype == 3 and len(data) in (8, 16):
            rank = (3, len(data))
            value = 'naa.' + data.hex()
        elif dtype == 2 and len(data) in (8, 12, 16):
            rank = (2, len(data))
            value = 'eui.' + data.hex()
        elif dtype == 1:
            rank = (1, len(data))
            value = 't10.' + data.rstrip(b'\0').decode('latin-1')
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, value)
    return best[1] if best else ''


def udev_id(wwid):
    """scsi_id --page 0x83 --whitelisted output for a sysfs wwid."""
    prefix = {'t10.': '1', 'eui.': '2', 'naa.': '3'}.get(wwid[:4], '8')
    return prefix + re.sub(r'\s+', '_', wwid[4:].strip())


def vpd_page(page, designators=None, serial=None):
    if page == 0x83:
        body = b''.join(
            bytes([(proto << 4) | code_set,
                   (piv << 7) | (assoc << 4) | dtype, 0, len(data)]) + data
            for proto, code_set, piv, assoc, dtype, data in designators)
    else:
        body = serial.encode('latin-1')
    return bytes([0, page, len(body) >> 8, len(body) & 0xff]) + body


class Kernel(object):
    """The fake kernel's state and operations, shared by all processes.

    Every operation takes an exclusive lock on ``<state>/lock`` (the big
    kernel lock), so concurrent os-brick threads and stand-ins are safe.
    Sessions and devices are kept in ``<state>/kernel.json``; node records
    in ``<state>/nodes/<iqn>/<ip>,<port>,<tpgt>/<iface>`` and discovery
    records in ``<state>/send_targets/<ip>,<port>/st_config``, in
    open-iscsi's format.
    """

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.state_file = os.path.join(state_dir, 'kernel.json')
        self.nodes_dir = os.path.join(state_dir, 'nodes')
        self.send_targets_dir = os.path.join(state_dir, 'send_targets')
        self._lock_fd = None
        self._depth = 0
        self.state = None

    # -- locking and persistence

    @contextlib.contextmanager
    def locked(self):
        if self._depth == 0:
            self._lock_fd = os.open(os.path.join(self.state_dir, 'lock'),
                                    os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            with open(self.state_file) as f:
                self.state = json.load(f)
        self._depth += 1
        try:
            yield self.state
        finally:
            self._depth -= 1
            if self._depth == 0:
                try:
                    tmp = self.state_file + '.tmp'
                    with open(tmp, 'w') as f:
                        json.dump(self.state, f, indent=1, sort_keys=True)
                    os.rename(tmp, self.state_file)
                finally:
                    os.close(self._lock_fd)
                    self._lock_fd = None

    @staticmethod
    def initial_state(options):
        return {'next_sid': 1, 'next_host': FIRST_HOST, 'sessions': {},
                'devices': {}, 'maps': {}, 'mpath_wwids': [],
                'mpath_paths': [], 'tgt_ports': {}, 'options': options}

    def log(self, *words):
        with open(os.path.join(self.state_dir, 'calls.log'), 'a') as f:
            f.write('%.3f %s\n' % (time.time(), ' '.join(words)))

    # -- initiator name

    @staticmethod
    def initiator_name():
        try:
            with open(INITIATOR_FILE) as f:
                for line in f:
                    if line.startswith('InitiatorName='):
                        return line.split('=', 1)[1].strip()
        except OSError:
            pass
        return None

    # -- node records (open-iscsi's idbm)

    def node_path(self, iqn, ip, port, tpgt, iface='default'):
        return os.path.join(self.nodes_dir, iqn,
                            '%s,%d,%d' % (ip, port, tpgt), iface)

    def find_nodes(self, iqn=None, portal=None, iface=None):
        """[(iqn, ip, port, tpgt, iface, path)] matching the filters."""
        want = split_portal(portal) if portal else None
        found = []
        for path in sorted(glob.glob(os.path.join(self.nodes_dir, '*', '*',
                                                  '*'))):
            rest = os.path.relpath(path, self.nodes_dir)
            r_iqn, r_portal, r_iface = rest.split(os.sep)
            ip, port, tpgt = r_portal.rsplit(',', 2)
            port, tpgt = int(port), int(tpgt)
            if iqn and r_iqn != iqn:
                continue
            if want and (want[0] != ip or want[1] != port or
                         (want[2] is not None and want[2] != tpgt)):
                continue
            if iface and r_iface != iface:
                continue
            found.append((r_iqn, ip, port, tpgt, r_iface, path))
        return found

    @staticmethod
    def read_record(path):
        record = {}
        with open(path) as f:
            for line in f:
                if line.startswith('#') or ' = ' not in line:
                    continue
                key, value = line.rstrip('\n').split(' = ', 1)
                record[key] = '' if value == '<empty>' else value
        return record

    @staticmethod
    def write_record(path, record):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lines = ['# BEGIN RECORD %s' % RECORD_VERSION]
        lines += ['%s = %s' % (key, value if value != '' else '<empty>')
                  for key, value in record.items()]
        lines.append('# END RECORD')
        _write(path, '\n'.join(lines) + '\n', 0o600)

    @staticmethod
    def default_record(iqn, ip, port, tpgt, iface='default',
                       discovery=None):
        transport = 'iser' if iface == 'iser' else 'tcp'
        record = {
            'node.name': iqn,
            'node.tpgt': str(tpgt),
            'node.startup': 'manual',
            'node.leading_login': 'No',
            'iface.iscsi_ifacename': iface,
            'iface.net_ifacename': '',
            'iface.ipaddress': '',
            'iface.hwaddress': '',
            'iface.transport_name': transport,
            'iface.initiatorname': '',
            'node.discovery_address': discovery[0] if discovery else '',
            'node.discovery_port': str(discovery[1] if discovery else 0),
            'node.discovery_type': ('send_targets' if discovery
                                    else 'static'),
            'node.session.initial_cmdsn': '0',
            'node.session.initial_login_retry_max': '8',
            'node.session.xmit_thread_priority': '-20',
            'node.session.cmds_max': '128',
            'node.session.queue_depth': '32',
            'node.session.nr_sessions': '1',
            'node.session.auth.authmethod': 'None',
            'node.session.auth.username': '',
            'node.session.auth.password': '',
            'node.session.auth.username_in': '',
            'node.session.auth.password_in': '',
            'node.session.timeo.replacement_timeout': '120',
            'node.session.err_timeo.abort_timeout': '15',
            'node.session.err_timeo.lu_reset_timeout': '30',
            'node.session.iscsi.InitialR2T': 'No',
            'node.session.iscsi.ImmediateData': 'Yes',
            'node.session.iscsi.FirstBurstLength': '262144',
            'node.session.iscsi.MaxBurstLength': '16776192',
            'node.session.scan': 'auto',
            'node.conn[0].address': ip,
            'node.conn[0].port': str(port),
            'node.conn[0].startup': 'manual',
            'node.conn[0].tcp.window_size': '524288',
            'node.conn[0].timeo.login_timeout': '15',
            'node.conn[0].timeo.logout_timeout': '15',
            'node.conn[0].timeo.noop_out_interval': '5',
            'node.conn[0].timeo.noop_out_timeout': '5',
            'node.conn[0].iscsi.MaxRecvDataSegmentLength': '262144',
            'node.conn[0].iscsi.HeaderDigest': 'None',
            'node.conn[0].iscsi.DataDigest': 'None',
        }
        return record

    # -- sessions

    def find_sessions(self, iqn=None, ip=None, port=None, iface=None):
        with self.locked() as st:
            return [s for s in st['sessions'].values()
                    if (iqn is None or s['iqn'] == iqn) and
                    (ip is None or s['ip'] == ip) and
                    (port is None or s['port'] == port) and
                    (iface is None or s['iface'] == iface)]

    @staticmethod
    def host_dir(host):
        return '/sys/devices/platform/host%d' % host

    def session_dir(self, sess):
        return os.path.join(self.host_dir(sess['host']),
                            'session%d' % sess['sid'])

    def add_session(self, iqn, ip, port, tpgt, iface, initiator, record):
        """A logged-in session: a new SCSI host and its sysfs entries."""
        with self.locked() as st:
            sid, host = st['next_sid'], st['next_host']
            st['next_sid'] += 1
            st['next_host'] += 1
            sess = {'sid': sid, 'host': host, 'iqn': iqn, 'ip': ip,
                    'port': port, 'tpgt': tpgt, 'iface': iface,
                    'transport': record.get('iface.transport_name', 'tcp'),
                    'initiator': initiator,
                    'username': record.get('node.session.auth.username'),
                    'password': record.get('node.session.auth.password')}
            st['sessions'][str(sid)] = sess
            hdir = self.host_dir(host)
            sh = os.path.join(hdir, 'scsi_host', 'host%d' % host)
            ih = os.path.join(hdir, 'iscsi_host', 'host%d' % host)
            sdir = self.session_dir(sess)
            isess = os.path.join(sdir, 'iscsi_session', 'session%d' % sid)
            conn = os.path.join(sdir, 'connection%d:0' % sid,
                                'iscsi_connection', 'connection%d:0' % sid)
            for path in (sh, ih, isess, conn):
                os.makedirs(path)
            _write(os.path.join(sh, 'scan'), '', 0o200)
            _write(os.path.join(sh, 'proc_name'), 'iscsi_tcp\n')
            _write(os.path.join(sh, 'state'), 'running\n')
            _symlink(hdir, os.path.join(sh, 'device'))
            _write(os.path.join(ih, 'initiatorname'), initiator + '\n')
            _write(os.path.join(ih, 'ipaddress'), '127.0.0.1\n')
            _symlink(hdir, os.path.join(ih, 'device'))
            for name, value in (('targetname', iqn), ('tpgt', tpgt),
                                ('state', 'LOGGED_IN'),
                                ('initiatorname', initiator),
                                ('ifacename', iface),
                                ('recovery_tmo', 120)):
                _write(os.path.join(isess, name), '%s\n' % value)
            _symlink(sdir, os.path.join(isess, 'device'))
            for name, value in (('address', ip), ('port', port),
                                ('persistent_address', ip),
                                ('persistent_port', port), ('state', 'up')):
                _write(os.path.join(conn, name), '%s\n' % value)
            _symlink(os.path.dirname(os.path.dirname(conn)),
                     os.path.join(conn, 'device'))
            _symlink(sh, '/sys/class/scsi_host/host%d' % host)
            _symlink(ih, '/sys/class/iscsi_host/host%d' % host)
            _symlink(isess, '/sys/class/iscsi_session/session%d' % sid)
            _symlink(conn, '/sys/class/iscsi_connection/connection%d:0'
                     % sid)
            _symlink(hdir, '/sys/bus/scsi/devices/host%d' % host)
            return sess

    def remove_session(self, sid):
        """Logout: the session's devices, its host and sysfs go away."""
        with self.locked() as st:
            sess = st['sessions'].get(str(sid))
            if sess is None:
                return None
            for name, dev in list(st['devices'].items()):
                if dev['sid'] == sess['sid']:
                    self.remove_device(name)
            host, sid = sess['host'], sess['sid']
            _unlink('/sys/class/scsi_host/host%d' % host,
                    '/sys/class/iscsi_host/host%d' % host,
                    '/sys/class/iscsi_session/session%d' % sid,
                    '/sys/class/iscsi_connection/connection%d:0' % sid,
                    '/sys/bus/scsi/devices/host%d' % host)
            _rmtree(self.host_dir(host))
            del st['sessions'][str(sid)]
            return sess

    # -- SCSI devices

    def _control_port(self, ip, port):
        with self.locked() as st:
            known = st['tgt_ports'].get('%s:%d' % (ip, port))
        if known is not None:
            return known
        return tgt_control_port(ip, port)

    def backing_store(self, sess, target_lun):
        control_port = self._control_port(sess['ip'], sess['port'])
        if control_port is None:
            raise OSError(errno.ENODEV, 'no tgtd listens on %s:%d'
                          % (sess['ip'], sess['port']))
        target = tgt_targets(control_port).get(sess['iqn'])
        lun = target and target['luns'].get(target_lun)
        path = lun and lun['backing']
        if not path:
            raise OSError(errno.ENODEV, 'no backing store for %s LUN %d'
                          % (sess['iqn'], target_lun))
        return path

    def _login(self, sess, lun=0):
        return IscsiLogin(sess['initiator'],
                          _portal_address(sess['ip'], sess['port']),
                          sess['iqn'], lun, sess.get('username'),
                          sess.get('password'))

    def scan(self, host, channel, target, lun):
        """A write of 'C T L' to scsi_host/hostN/scan."""
        with self.locked() as st:
            sessions = [s for s in st['sessions'].values()
                        if s['host'] == host]
            if not sessions:
                raise OSError(errno.ENODEV, 'no host%d' % host)
            sess = sessions[0]
            if channel not in ('-', 0) or target not in ('-', 0):
                return []
            found = []
            with self._login(sess) as session:
                luns = session.report_luns()
                if lun == '-':
                    wanted = [t - LUN_OFFSET for t in sorted(luns)
                              if t >= LUN_OFFSET]
                else:
                    wanted = [lun] if lun + LUN_OFFSET in luns else []
                for host_lun in wanted:
                    hctl = '%d:0:0:%d' % (host, host_lun)
                    if any(d['hctl'] == hctl
                           for d in st['devices'].values()):
                        continue
                    dev = self._add_device(st, sess, session, host_lun)
                    if dev:
                        found.append(dev)
            return found

    def _add_device(self, st, sess, session, host_lun):
        target_lun = host_lun + LUN_OFFSET
        inq = session.inquiry(target_lun)
        if inq['qualifier'] != 0 or inq['device_type'] != 0:
            return None
        size, lbs = session.capacity(target_lun)
        designators = session.designators(target_lun)
        serial = session.serial(target_lun)
        backing = self.backing_store(sess, target_lun)
        used = set(st['devices'])
        name = next(_disk_name(n) for n in range(18278)
                    if _disk_name(n) not in used)
        node = '/dev/' + name
        number = loop_attach(node, backing, size)
        minor = _loop_minor(number)
        host, sid = sess['host'], sess['sid']
        hctl = '%d:0:0:%d' % (host, host_lun)
        wwid = wwid_of(designators)
        dev = {'name': name, 'hctl': hctl, 'sid': sid, 'host': host,
               'lun': host_lun, 'target_lun': target_lun, 'loop': number,
               'minor': minor, 'inode': os.stat(backing).st_ino,
               'backing': backing, 'size': size, 'wwid': wwid,
               'udev_id': udev_id(wwid), 'links': []}
        st['devices'][name] = dev
        tdir = os.path.join(self.session_dir(sess), 'target%d:0:0' % host)
        ddir = os.path.join(tdir, hctl)
        bdir = os.path.join(ddir, 'block', name)
        for path in (os.path.join(bdir, 'holders'),
                     os.path.join(bdir, 'slaves'),
                     os.path.join(bdir, 'queue'),
                     os.path.join(ddir, 'scsi_device', hctl),
                     os.path.join(ddir, 'scsi_disk', hctl)):
            os.makedirs(path, exist_ok=True)
        _symlink(tdir, '/sys/bus/scsi/devices/target%d:0:0' % host)
        files = {'type': '0', 'vendor': inq['vendor'],
                 'model': inq['model'], 'rev': inq['rev'],
                 'scsi_level': '6', 'state': 'running',
                 'device_blocked': '0', 'queue_depth': '32',
                 'timeout': '30', 'modalias': 'scsi:t-0x00',
                 'wwid': wwid}
        for key, value in files.items():
            _write(os.path.join(ddir, key), value + '\n')
        _write(os.path.join(ddir, 'vpd_pg83'),
               vpd_page(0x83, designators=designators), 0o444)
        _write(os.path.join(ddir, 'vpd_pg80'),
               vpd_page(0x80, serial=serial), 0o444)
        _write(os.path.join(ddir, 'delete'), '', 0o200)
        _write(os.path.join(ddir, 'rescan'), '', 0o200)
        _symlink(ddir, os.path.join(ddir, 'scsi_device', hctl, 'device'))
        _symlink(ddir, os.path.join(ddir, 'scsi_disk', hctl, 'device'))
        for key, value in (('dev', '%d:%d' % (LOOP_MAJOR, minor)),
                           ('size', str(size // 512)), ('ro', '0'),
                           ('removable', '0'), ('range', '16'),
                           ('queue/logical_block_size', str(lbs)),
                           ('queue/physical_block_size', str(lbs)),
                           ('queue/rotational', '0')):
            _write(os.path.join(bdir, key), value + '\n')
        _symlink(ddir, os.path.join(bdir, 'device'))
        _symlink(bdir, '/sys/block/' + name)
        _symlink(bdir, '/sys/class/block/' + name)
        _symlink(bdir, '/sys/dev/block/%d:%d' % (LOOP_MAJOR, minor))
        _symlink(os.path.join(ddir, 'scsi_device', hctl),
                 '/sys/class/scsi_device/' + hctl)
        _symlink(os.path.join(ddir, 'scsi_disk', hctl),
                 '/sys/class/scsi_disk/' + hctl)
        _symlink(ddir, '/sys/bus/scsi/devices/' + hctl)
        _symlink(ddir, '/sys/bus/scsi/drivers/sd/' + hctl)
        # udev
        links = ['/dev/disk/by-path/ip-%s-iscsi-%s-lun-%d'
                 % (_portal_address(sess['ip'], sess['port']), sess['iqn'],
                    host_lun)]
        if wwid:
            links.append('/dev/disk/by-id/scsi-' + dev['udev_id'])
            if wwid.startswith('naa.'):
                links.append('/dev/disk/by-id/wwn-0x' + wwid[4:])
        for link in links:
            _symlink(node, link)
        dev['links'] = links
        if st['options'].get('multipathd') and \
                dev['udev_id'] in st['mpath_wwids']:
            # multipathd's uevent handling: a new path of a known wwid
            self.add_multipath(name)
        return dev

    def device_by_dir(self, path):
        """The device whose sysfs directory is ``path`` (a real path)."""
        with self.locked() as st:
            for dev in st['devices'].values():
                sess = st['sessions'][str(dev['sid'])]
                ddir = os.path.join(self.session_dir(sess),
                                    'target%d:0:0' % dev['host'], dev['hctl'])
                if ddir == path:
                    return dev
        return None

    def remove_device(self, name):
        """A write to .../H:C:T:L/delete (or a logout)."""
        with self.locked() as st:
            dev = st['devices'].get(name)
            if dev is None:
                return None
            for map_name, mp in list(st['maps'].items()):
                if name in mp['paths']:
                    mp['paths'].remove(name)
                    _unlink('/sys/block/%s/slaves/%s' % (map_name, name))
            loop_detach(dev['loop'], dev['inode'])
            sess = st['sessions'][str(dev['sid'])]
            tdir = os.path.join(self.session_dir(sess),
                                'target%d:0:0' % dev['host'])
            hctl = dev['hctl']
            for link in dev['links']:
                if os.path.islink(link) and os.path.basename(
                        os.readlink(link)) == name:
                    os.unlink(link)
            _unlink('/dev/' + name, '/sys/block/' + name,
                    '/sys/class/block/' + name,
                    '/sys/dev/block/%d:%d' % (LOOP_MAJOR, dev['minor']),
                    '/sys/class/scsi_device/' + hctl,
                    '/sys/class/scsi_disk/' + hctl,
                    '/sys/bus/scsi/devices/' + hctl,
                    '/sys/bus/scsi/drivers/sd/' + hctl)
            _rmtree(os.path.join(tdir, hctl))
            del st['devices'][name]
            if not any(d['sid'] == dev['sid']
                       for d in st['devices'].values()):
                _rmtree(tdir)
                _unlink('/sys/bus/scsi/devices/target%d:0:0' % dev['host'])
            if name in st['mpath_paths']:
                st['mpath_paths'].remove(name)
            return dev

    def rescan(self, name):
        """A write to .../H:C:T:L/rescan: read the capacity again."""
        with self.locked() as st:
            dev = st['devices'][name]
            sess = st['sessions'][str(dev['sid'])]
            with self._login(sess) as session:
                size, __ = session.capacity(dev['target_lun'])
            if size != dev['size']:
                loop_set_sizelimit(dev['loop'], size)
                dev['size'] = size
                sess_dir = self.session_dir(sess)
                size_file = os.path.join(
                    sess_dir, 'target%d:0:0' % dev['host'], dev['hctl'],
                    'block', name, 'size')
                _write(size_file, '%d\n' % (size // 512))
            return dev

    def resize_multipath(self, map_name):
        """multipathd resize map: the map takes its paths' size."""
        with self.locked() as st:
            mp = st['maps'].get(map_name)
            sizes = {st['devices'][p]['size'] for p in mp['paths']} \
                if mp else set()
            if len(sizes) != 1:
                return False
            size = sizes.pop()
            loop_set_sizelimit(mp['loop'], size)
            mp['size'] = size
            _write('/sys/block/%s/size' % map_name, '%d\n' % (size // 512))
            return True

    # -- fake device-mapper multipath

    def add_multipath(self, name):
        """multipathd add path: group known-wwid paths into a fake dm."""
        with self.locked() as st:
            dev = st['devices'].get(name)
            if dev is None:
                return False
            if name not in st['mpath_paths']:
                st['mpath_paths'].append(name)
            wwid = dev['udev_id']
            if wwid not in st['mpath_wwids']:
                return True
            for map_name, mp in st['maps'].items():
                if mp['wwid'] == wwid:
                    break
            else:
                number = 0
                while 'dm-%d' % number in st['maps']:
                    number += 1
                map_name = 'dm-%d' % number
                # The map's node is a loop device of its own on the LUN's
                # backing file (no device-mapper here).
                loop = loop_attach('/dev/' + map_name, dev['backing'],
                                   dev['size'])
                mp = st['maps'][map_name] = {
                    'wwid': wwid, 'paths': [], 'loop': loop,
                    'minor': _loop_minor(loop), 'inode': dev['inode'],
                    'size': dev['size']}
                mdir = '/sys/devices/virtual/block/' + map_name
                os.makedirs(os.path.join(mdir, 'dm'))
                os.makedirs(os.path.join(mdir, 'slaves'))
                os.makedirs(os.path.join(mdir, 'holders'))
                _write(os.path.join(mdir, 'dm', 'name'), wwid + '\n')
                _write(os.path.join(mdir, 'dm', 'uuid'),
                       'mpath-%s\n' % wwid)
                _write(os.path.join(mdir, 'dev'),
                       '%d:%d\n' % (LOOP_MAJOR, mp['minor']))
                _write(os.path.join(mdir, 'size'),
                       '%d\n' % (dev['size'] // 512))
                _symlink(mdir, '/sys/block/' + map_name)
                _symlink(mdir, '/sys/class/block/' + map_name)
                _symlink(mdir, '/sys/dev/block/%d:%d'
                         % (LOOP_MAJOR, mp['minor']))
                os.makedirs('/dev/mapper', exist_ok=True)
                _symlink('/dev/' + map_name, '/dev/mapper/' + wwid)
                _symlink('/dev/' + map_name,
                         '/dev/disk/by-id/dm-uuid-mpath-' + wwid)
                _symlink('/dev/' + map_name, '/dev/disk/by-id/dm-name-'
                         + wwid)
            for path in st['mpath_paths']:
                pdev = st['devices'].get(path)
                if pdev and pdev['udev_id'] == wwid and \
                        path not in mp['paths']:
                    mp['paths'].append(path)
                    _symlink('/sys/block/' + path,
                             '/sys/block/%s/slaves/%s' % (map_name, path))
                    holders = '/sys/block/%s/holders/%s' % (path, map_name)
                    _symlink('/sys/block/' + map_name, holders)
            return True

    def remove_multipath(self, map_name):
        with self.locked() as st:
            mp = st['maps'].pop(map_name, None)
            if mp is None:
                return False
            for path in mp['paths']:
                _unlink('/sys/block/%s/holders/%s' % (path, map_name))
            loop_detach(mp['loop'], mp['inode'])
            _unlink('/sys/dev/block/%d:%d' % (LOOP_MAJOR, mp['minor']))
            _unlink('/dev/' + map_name, '/dev/mapper/' + mp['wwid'],
                    '/dev/disk/by-id/dm-uuid-mpath-' + mp['wwid'],
                    '/dev/disk/by-id/dm-name-' + mp['wwid'],
                    '/sys/block/' + map_name, '/sys/class/block/' + map_name)
            _rmtree('/sys/devices/virtual/block/' + map_name)
            return True


# ------------------------------------------------------------ iscsiadm

class Usage(Exception):
    pass


def _parse_iscsiadm(argv):
    opts = {'names': [], 'values': []}
    short = {'-m': 'mode', '-T': 'target', '-p': 'portal', '-I': 'iface',
             '-o': 'op', '-t': 'type', '-P': 'print', '-r': 'sid',
             '-n': 'name', '-v': 'value'}
    long_ = {'--mode': 'mode', '--targetname': 'target',
             '--portal': 'portal', '--interface': 'iface', '--op': 'op',
             '--type': 'type', '--print': 'print', '--sid': 'sid',
             '--name': 'name', '--value': 'value'}
    flags = {'-l': 'login', '--login': 'login', '-u': 'logout',
             '--logout': 'logout', '--discover': 'discover',
             '-D': 'discover', '-R': 'rescan', '--rescan': 'rescan'}
    args = list(argv)
    while args:
        arg = args.pop(0)
        key = value = None
        if '=' in arg and arg.startswith('--'):
            arg, value = arg.split('=', 1)
        if arg in flags:
            opts[flags[arg]] = True
            continue
        key = short.get(arg) or long_.get(arg)
        if key is None:
            raise Usage('iscsiadm: unrecognized option %r' % arg)
        if value is None:
            if not args:
                raise Usage('iscsiadm: option %s needs a value' % arg)
            value = args.pop(0)
        if key == 'name':
            opts['names'].append(value)
        elif key == 'value':
            opts['values'].append(value)
        else:
            opts[key] = value
    return opts


class Result(object):
    def __init__(self):
        self.out = []
        self.err = []
        self.code = 0

    def fail(self, code, *lines):
        self.err.extend(lines)
        self.code = code
        return self


def _portal_address(ip, port):
    """ip:port as open-iscsi prints it: IPv6 addresses in brackets."""
    return ('[%s]:%d' if ':' in ip else '%s:%d') % (ip, port)


def _portal_text(ip, port):
    return '%s,%d' % (ip, port)


def _show_records(kernel, nodes):
    out = []
    for __, __, __, __, __, path in nodes:
        with open(path) as f:
            out.extend(f.read().splitlines())
    return out


def iscsiadm(kernel, argv):
    res = Result()
    try:
        opts = _parse_iscsiadm(argv)
    except Usage as exc:
        return res.fail(ISCSI_ERR_INVAL, str(exc))
    mode = opts.get('mode')
    if mode == 'node':
        return _node_mode(kernel, opts, res)
    if mode == 'session':
        return _session_mode(kernel, opts, res)
    if mode in ('discovery', 'discoverydb'):
        return _discovery_mode(kernel, opts, res)
    if mode == 'iface':
        return _iface_mode(opts, res)
    return res.fail(ISCSI_ERR_INVAL,
                    'iscsiadm: Invalid mode %r' % mode)


def _node_mode(kernel, opts, res):
    iqn, portal = opts.get('target'), opts.get('portal')
    iface = opts.get('iface') or 'default'
    op = opts.get('op')
    with kernel.locked():
        if op == 'new':
            if not (iqn and portal):
                return res.fail(ISCSI_ERR_INVAL, 'iscsiadm: --op new needs '
                                '--targetname and --portal')
            ip, port, tpgt = split_portal(portal)
            tpgt = -1 if tpgt is None else tpgt
            record = kernel.default_record(iqn, ip, port, tpgt, iface)
            kernel.write_record(kernel.node_path(iqn, ip, port, tpgt, iface),
                                record)
            res.out.append('New iSCSI node [%s:[hw=,ip=,net_if=,iscsi_if=%s]'
                           ' %s,%d,%d %s] added'
                           % (record['iface.transport_name'], iface, ip,
                              port, tpgt, iqn))
            return res
        nodes = kernel.find_nodes(iqn, portal, opts.get('iface'))
        if not nodes:
            return res.fail(ISCSI_ERR_NO_OBJS_FOUND,
                            'iscsiadm: No records found')
        if opts.get('login'):
            return _login(kernel, nodes, res)
        if opts.get('logout'):
            return _logout(kernel, kernel.find_sessions(iqn=iqn) if not
                           portal else _sessions_of(kernel, nodes), res)
        if op == 'update':
            return _update(kernel, nodes, opts, res)
        if op == 'delete':
            for n_iqn, ip, port, __, n_iface, path in nodes:
                if kernel.find_sessions(n_iqn, ip, port, n_iface):
                    return res.fail(
                        ISCSI_ERR_SESS_EXISTS,
                        'iscsiadm: This command will remove the record '
                        '[iface: %s, target: %s, portal: %s], but a session'
                        ' is using it. Logout session then rerun command '
                        'to remove record.'
                        % (n_iface, n_iqn, _portal_text(ip, port)))
                os.unlink(path)
                for parent in (os.path.dirname(path),
                               os.path.dirname(os.path.dirname(path))):
                    with contextlib.suppress(OSError):
                        os.rmdir(parent)
            return res
        if op in (None, 'show'):
            if op is None and not (iqn or portal):
                for n_iqn, ip, port, tpgt, __, __ in nodes:
                    res.out.append('%s,%d %s' % (
                        _portal_address(ip, port), tpgt, n_iqn))
                return res
            res.out.extend(_show_records(kernel, nodes))
            return res
    return res.fail(ISCSI_ERR_INVAL, 'iscsiadm: Invalid operation %r' % op)


def _sessions_of(kernel, nodes):
    sessions = []
    for n_iqn, ip, port, __, n_iface, __ in nodes:
        sessions.extend(kernel.find_sessions(n_iqn, ip, port, n_iface))
    return sessions


def _update(kernel, nodes, opts, res):
    if len(opts['names']) != 1 or len(opts['values']) != 1:
        return res.fail(ISCSI_ERR_INVAL, 'iscsiadm: --op update needs one '
                        '--name and one --value')
    name, value = opts['names'][0], opts['values'][0]
    for __, __, __, __, __, path in nodes:
        record = kernel.read_record(path)
        if name not in record:
            return res.fail(ISCSI_ERR_INVAL,
                            'iscsiadm: Cannot modify %s. Invalid param '
                            'name.' % name)
        record[name] = value
        kernel.write_record(path, record)
    return res


def _login(kernel, nodes, res):
    failed = False
    for iqn, ip, port, tpgt, iface, path in nodes:
        where = '[iface: %s, target: %s, portal: %s]' % (
            iface, iqn, _portal_text(ip, port))
        if kernel.find_sessions(iqn, ip, port, iface):
            return res.fail(ISCSI_ERR_SESS_EXISTS,
                            'iscsiadm: default: 1 session requested, but 1 '
                            'already present.')
        record = kernel.read_record(path)
        initiator = record.get('iface.initiatorname') or \
            kernel.initiator_name()
        res.out.append('Logging in to %s' % where)
        try:
            if not initiator:
                raise IscsiError(ISCSI_ERR_LOGIN, 'No initiator name set')
            auth = record.get('node.session.auth.authmethod') == 'CHAP'
            username = record.get('node.session.auth.username') if auth \
                else None
            password = record.get('node.session.auth.password') if auth \
                else None
            with IscsiLogin(initiator, _portal_address(ip, port), iqn, 0,
                            username, password):
                pass
        except IscsiError as exc:
            kernel.log('login-failed', iqn, ip, str(port), initiator or '',
                       str(exc.exit_code), exc.message)
            res.err.append('iscsiadm: Could not login to %s.' % where)
            res.err.append('iscsiadm: initiator reported error (%d - %s)'
                           % (exc.exit_code,
                              ISCSI_ERR_MESSAGES[exc.exit_code]))
            res.code = exc.exit_code
            failed = True
            continue
        real_tpgt = tpgt if tpgt >= 0 else 1
        sess = kernel.add_session(iqn, ip, port, real_tpgt, iface, initiator,
                                  record)
        res.out.append('Login to %s successful.' % where)
        if record.get('node.session.scan', 'auto') == 'auto':
            with contextlib.suppress(IscsiError, OSError):
                kernel.scan(sess['host'], '-', '-', '-')
    if failed:
        res.err.append('iscsiadm: Could not log into all portals')
    return res


def _logout(kernel, sessions, res):
    if not sessions:
        return res.fail(ISCSI_ERR_NO_OBJS_FOUND,
                        'iscsiadm: No matching sessions found')
    for sess in sessions:
        where = '[sid: %d, target: %s, portal: %s]' % (
            sess['sid'], sess['iqn'], _portal_text(sess['ip'], sess['port']))
        res.out.append('Logging out of session %s' % where)
        kernel.remove_session(sess['sid'])
        res.out.append('Logout of %s successful.' % where)
    return res


def _session_mode(kernel, opts, res):
    with kernel.locked() as st:
        sessions = sorted(st['sessions'].values(), key=lambda s: s['sid'])
        if opts.get('sid'):
            sessions = [s for s in sessions if str(s['sid']) == opts['sid']]
            if not sessions:
                return res.fail(ISCSI_ERR_NO_OBJS_FOUND,
                                'iscsiadm: Could not get session info for '
                                'sid %s' % opts['sid'])
        if opts.get('logout'):
            return _logout(kernel, sessions, res)
        if opts.get('rescan'):
            for sess in sessions:
                kernel.scan(sess['host'], '-', '-', '-')
            return res
        if not sessions:
            return res.fail(ISCSI_ERR_NO_OBJS_FOUND,
                            'iscsiadm: No active sessions.')
        for sess in sessions:
            res.out.append('%s: [%d] %s,%d %s (non-flash)'
                           % (sess['transport'], sess['sid'],
                              _portal_address(sess['ip'], sess['port']),
                              sess['tpgt'], sess['iqn']))
            if opts.get('print') in ('1', '2', '3'):
                res.out.append('\tSID: %d' % sess['sid'])
                res.out.append('\tiSCSI Session State: LOGGED_IN')
                if opts['print'] == '3':
                    for dev in st['devices'].values():
                        if dev['sid'] == sess['sid']:
                            res.out.append(
                                '\t\tscsi%d Channel 00 Id 0 Lun: %d'
                                % (dev['host'], dev['lun']))
                            res.out.append(
                                '\t\t\tAttached scsi disk %s\t\t'
                                'State: running' % dev['name'])
    return res


def _discovery_mode(kernel, opts, res):
    portal = opts.get('portal')
    iface = opts.get('iface') or 'default'
    with kernel.locked():
        if opts.get('op') == 'show' or (opts['mode'] == 'discoverydb' and
                                        not portal and not opts.get('op')):
            return _discoverydb_show(kernel, res)
        if not portal:
            return res.fail(ISCSI_ERR_INVAL,
                            'iscsiadm: discovery needs --portal')
        ip, port, __ = split_portal(portal)
        st_dir = os.path.join(kernel.send_targets_dir, '%s,%d' % (ip, port))
        st_config = os.path.join(st_dir, 'st_config')
        op = opts.get('op')
        if op == 'new':
            os.makedirs(st_dir, exist_ok=True)
            kernel.write_record(st_config, {
                'discovery.startup': 'manual',
                'discovery.type': 'sendtargets',
                'discovery.sendtargets.address': ip,
                'discovery.sendtargets.port': str(port),
                'discovery.sendtargets.auth.authmethod': 'None',
                'discovery.sendtargets.auth.username': '',
                'discovery.sendtargets.auth.password': ''})
            res.out.append('New discovery record for [%s,%d] added.'
                           % (ip, port))
            return res
        if op == 'update':
            if not os.path.exists(st_config):
                return res.fail(ISCSI_ERR_IDBM,
                                'iscsiadm: Discovery record [%s,%d] not '
                                'found.' % (ip, port))
            record = kernel.read_record(st_config)
            for name, value in zip(opts['names'], opts['values']):
                record[name] = value
            kernel.write_record(st_config, record)
            return res
        if op == 'delete':
            _rmtree(st_dir)
            return res
        if opts['mode'] == 'discoverydb' and not opts.get('discover'):
            return res.fail(ISCSI_ERR_INVAL, 'iscsiadm: no operation given')
        return _discover(kernel, ip, port, iface, st_config, res)


def _discover(kernel, ip, port, iface, st_config, res):
    record = (kernel.read_record(st_config) if os.path.exists(st_config)
              else {})
    initiator = kernel.initiator_name()
    auth = record.get('discovery.sendtargets.auth.authmethod') == 'CHAP'
    try:
        with IscsiLogin(initiator or '', _portal_address(ip, port), None, 0,
                        record.get('discovery.sendtargets.auth.username')
                        if auth else None,
                        record.get('discovery.sendtargets.auth.password')
                        if auth else None) as session:
            found = session.discovery()
    except IscsiError as exc:
        if exc.exit_code in (ISCSI_ERR_TRANS, ISCSI_ERR_TRANS_TIMEOUT):
            return res.fail(ISCSI_ERR_TRANS,
                            'iscsiadm: cannot make connection to %s: '
                            'Connection refused' % ip,
                            'iscsiadm: connection login retries (reopen_max)'
                            ' 5 exceeded',
                            'iscsiadm: Could not perform SendTargets '
                            'discovery: encountered connection failure')
        return res.fail(exc.exit_code,
                        'iscsiadm: Login failed to authenticate with '
                        'target', 'iscsiadm: discovery login to %s rejected:'
                        ' initiator error, non-retryable, giving up' % ip,
                        'iscsiadm: Could not perform SendTargets discovery: '
                        '%s' % ISCSI_ERR_MESSAGES[exc.exit_code])
    if not record:
        os.makedirs(os.path.dirname(st_config), exist_ok=True)
        kernel.write_record(st_config, {
            'discovery.startup': 'manual',
            'discovery.type': 'sendtargets',
            'discovery.sendtargets.address': ip,
            'discovery.sendtargets.port': str(port),
            'discovery.sendtargets.auth.authmethod': 'None'})
    if not found:
        return res.fail(ISCSI_ERR_NO_OBJS_FOUND, 'iscsiadm: No portals found')
    for target, portals in found:
        for portal in portals:
            p_ip, p_port, tpgt = split_portal(portal)
            tpgt = 1 if tpgt is None else tpgt
            path = kernel.node_path(target, p_ip, p_port, tpgt, iface)
            if not os.path.exists(path):
                kernel.write_record(path, kernel.default_record(
                    target, p_ip, p_port, tpgt, iface, (ip, port)))
            res.out.append('%s,%d %s' % (
                _portal_address(p_ip, p_port), tpgt, target))
    return res


def _discoverydb_show(kernel, res):
    res.out.append('SENDTARGETS:')
    records = sorted(glob.glob(os.path.join(kernel.send_targets_dir, '*',
                                            'st_config')))
    if not records:
        res.out.append('No targets found.')
    for st_config in records:
        ip, port = os.path.basename(os.path.dirname(st_config)).rsplit(',', 1)
        res.out.append('DiscoveryAddress: %s,%s' % (ip, port))
        by_target = {}
        for iqn, n_ip, n_port, tpgt, iface, path in kernel.find_nodes():
            record = kernel.read_record(path)
            if (record.get('node.discovery_address') == ip and
                    record.get('node.discovery_port') == port):
                by_target.setdefault(iqn, []).append(
                    (n_ip, n_port, tpgt, iface))
        for iqn, portals in sorted(by_target.items()):
            res.out.append('Target: %s' % iqn)
            for n_ip, n_port, tpgt, iface in portals:
                res.out.append('\tPortal: %s,%d' % (
                    _portal_address(n_ip, n_port), tpgt))
                res.out.append('\t\tIface Name: %s' % iface)
    res.out.append('iSNS:')
    res.out.append('No targets found.')
    res.out.append('STATIC:')
    static = [n for n in kernel.find_nodes()
              if kernel.read_record(n[5]).get('node.discovery_type') ==
              'static']
    if not static:
        res.out.append('No targets found.')
    for iqn, n_ip, n_port, tpgt, iface, __ in static:
        res.out.append('Target: %s' % iqn)
        res.out.append('\tPortal: %s,%d' % (
            _portal_address(n_ip, n_port), tpgt))
        res.out.append('\t\tIface Name: %s' % iface)
    res.out.append('FIRMWARE:')
    res.out.append('No targets found.')
    return res


def _iface_mode(opts, res):
    ifaces = {'default': 'tcp', 'iser': 'iser'}
    name = opts.get('iface')
    if name is None:
        for iface, transport in ifaces.items():
            res.out.append('%s %s,<empty>,<empty>,<empty>,<empty>'
                           % (iface, transport))
        return res
    if name not in ifaces:
        return res.fail(ISCSI_ERR_IDBM,
                        'iscsiadm: Could not read iface %s (6)' % name)
    res.out.append('# BEGIN RECORD %s' % RECORD_VERSION)
    for key, value in (('iface.iscsi_ifacename', name),
                       ('iface.net_ifacename', '<empty>'),
                       ('iface.ipaddress', '<empty>'),
                       ('iface.hwaddress', '<empty>'),
                       ('iface.transport_name', ifaces[name]),
                       ('iface.initiatorname', '<empty>')):
        res.out.append('%s = %s' % (key, value))
    res.out.append('# END RECORD')
    return res


# ------------------------------------------------------ other stand-ins

def tee(kernel, argv):
    """tee: scan/delete/rescan writes go to the fake kernel."""
    files = [a for a in argv if not a.startswith('-')]
    controls = {}
    with kernel.locked():
        for path in files:
            real = os.path.realpath(path)
            if real.startswith('/sys/devices/') and os.path.basename(real) \
                    in ('scan', 'delete', 'rescan'):
                controls[path] = real
    if not controls:
        os.execv(REAL_TEE, ['tee'] + list(argv))
    data = sys.stdin.buffer.read()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    code = 0
    for path in files:
        if path not in controls:
            with open(path, 'ab' if ('-a' in argv or '--append' in argv)
                      else 'wb') as f:
                f.write(data)
            continue
        try:
            _control_write(kernel, controls[path], data.decode())
        except OSError as exc:
            sys.stderr.write('tee: %s: %s\n' % (path, os.strerror(
                exc.errno or errno.EIO)))
            code = 1
        except IscsiError as exc:
            kernel.log('scan-error', path, exc.message)
            sys.stderr.write('tee: %s: %s\n' % (path, os.strerror(
                errno.EIO)))
            code = 1
    return code


def _control_write(kernel, real, text):
    kernel.log('write', real, repr(text))
    action = os.path.basename(real)
    if action == 'scan':
        match = re.match(r'/sys/devices/platform/host(\d+)/scsi_host/',
                         real)
        words = text.split()
        if not match or len(words) != 3:
            raise OSError(errno.EINVAL, 'bad scan')
        values = []
        for word in words:
            if word == '-':
                values.append('-')
            elif word.isdigit():
                values.append(int(word))
            else:
                raise OSError(errno.EINVAL, 'bad scan')
        kernel.scan(int(match.group(1)), *values)
        return
    dev = kernel.device_by_dir(os.path.dirname(real))
    if dev is None:
        raise OSError(errno.ENODEV, 'no such device')
    if text.strip() != '1':
        raise OSError(errno.EINVAL, 'bad value')
    if action == 'delete':
        kernel.remove_device(dev['name'])
    else:
        kernel.rescan(dev['name'])


def scsi_id(kernel, argv):
    """/lib/udev/scsi_id --page 0x83 --whitelisted /dev/sdX."""
    paths = [a for a in argv if a.startswith('/')]
    if not paths:
        return 1
    name = os.path.basename(os.path.realpath(paths[-1]))
    with kernel.locked() as st:
        dev = st['devices'].get(name)
    if dev is None or not dev['udev_id']:
        return 1
    sys.stdout.write(dev['udev_id'] + '\n')
    return 0


def multipath(kernel, argv):
    with kernel.locked() as st:
        if not st['options'].get('multipathd'):
            sys.stderr.write('multipath: cannot connect to multipathd\n')
            return 1
        if argv[:1] == ['-a'] and len(argv) == 2:
            if argv[1] not in st['mpath_wwids']:
                st['mpath_wwids'].append(argv[1])
            sys.stdout.write("wwid '%s' added\n" % argv[1])
            return 0
        if argv[:1] == ['-C']:
            return 0 if argv[1] in st['maps'] else 1
        if argv[:1] == ['-f']:
            name = argv[1]
            for map_name, mp in st['maps'].items():
                if name in (map_name, mp['wwid']):
                    kernel.remove_multipath(map_name)
                    return 0
            return 1
        if argv[:1] in (['-r'], ['-l'], ['-ll']):
            return 0
    return 1


def multipathd(kernel, argv):
    with kernel.locked() as st:
        if not st['options'].get('multipathd'):
            sys.stdout.write('error receiving packet\n')
            return 1
        words = list(argv)
        if words == ['show', 'status']:
            sys.stdout.write('path checker states:\nup %d\n'
                             % len(st['mpath_paths']))
            return 0
        if words[:2] == ['add', 'path']:
            ok = kernel.add_multipath(os.path.basename(words[2]))
            sys.stdout.write('ok\n' if ok else 'fail\n')
            return 0
        if words[:2] == ['del', 'path']:
            name = os.path.basename(words[2])
            if name in st['mpath_paths']:
                st['mpath_paths'].remove(name)
            sys.stdout.write('ok\n')
            return 0
        if words[:2] == ['del', 'map']:
            for map_name, mp in list(st['maps'].items()):
                if words[2] in (map_name, mp['wwid']):
                    kernel.remove_multipath(map_name)
            sys.stdout.write('ok\n')
            return 0
        if words[:3] == ['show', 'paths', 'raw']:
            sys.stdout.write(''.join(p + '\n' for p in st['mpath_paths']))
            return 0
        if words == ['reconfigure']:
            sys.stdout.write('ok\n')
            return 0
        if words[:2] == ['resize', 'map']:
            name = os.path.basename(os.path.realpath(words[2]))
            for map_name, mp in st['maps'].items():
                if name in (map_name, mp['wwid']):
                    ok = kernel.resize_multipath(map_name)
                    sys.stdout.write('ok\n' if ok else 'fail\n')
                    return 0
    sys.stdout.write('fail\n')
    return 1


STAND_INS = {'iscsiadm': None, 'tee': tee, 'scsi_id': scsi_id,
             'multipath': multipath, 'multipathd': multipathd}


def main(state_dir, tool, argv):
    """Entry point of the generated stand-in executables."""
    kernel = Kernel(state_dir)
    if tool != 'tee':
        kernel.log(tool, *argv)
    if tool == 'iscsiadm':
        res = iscsiadm(kernel, argv)
        if res.out:
            sys.stdout.write('\n'.join(res.out) + '\n')
        if res.err:
            sys.stderr.write('\n'.join(res.err) + '\n')
        return res.code
    return STAND_INS[tool](kernel, argv)


# ------------------------------------------------------- the fixture

STAND_IN_TEMPLATE = '''#!%(python)s
# Generated by tests/iscsi/fake_kernel.py for %(state)s
import sys
sys.path[:0] = [%(here)r, %(root)r]
import fake_kernel
sys.exit(fake_kernel.main(%(state)r, %(tool)r, sys.argv[1:]))
'''


class FakeKernel(object):
    """Set up (and tear down) the fake kernel for this process.

    ``setup()`` mounts tmpfs over the sysfs trees and ``/dev``, overlays
    ``/etc`` (initiator name) and ``/usr/lib/udev`` (scsi_id), generates the
    stand-ins, puts them first on PATH and (``configure_os_brick``) makes
    os-brick's privileged calls run in this process (privsep client mode
    off) with its locks under the state folder.  ``teardown()`` logs out
    every session, detaches every loop device it attached, unmounts
    everything and restores the process; it is safe after a failed setup.
    The process must already be in a private mount namespace.
    """

    def __init__(self, initiator_name=None, multipathd=False,
                 configure_os_brick=True):
        self.initiator_name = initiator_name or (
            'iqn.1993-08.org.debian:01:fake-%08x' % random.getrandbits(32))
        self.multipathd = multipathd
        self.configure_os_brick = configure_os_brick
        self.state_dir = None
        self.bin_dir = None
        self.kernel = None
        self._mounts = []
        self._saved = {}

    # -- context manager

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    # -- setup

    def _mount(self, source, target, fstype, flags=0, data=None):
        mount(source, target, fstype, flags, data)
        self._mounts.append(target)

    def _overlay(self, directory, name):
        upper = os.path.join(self.state_dir, name + '-upper')
        work = os.path.join(self.state_dir, name + '-work')
        os.makedirs(upper)
        os.makedirs(work)
        nested = [p for p in _mount_points()
                  if p.startswith(directory.rstrip('/') + '/')]
        if nested:
            raise RuntimeError('cannot overlay %s: it has mounts inside (%s)'
                               % (directory, ', '.join(nested)))
        self._mount('overlay', directory, 'overlay', 0,
                    'lowerdir=%s,upperdir=%s,workdir=%s'
                    % (directory, upper, work))

    def setup(self):
        if os.geteuid() != 0:
            raise RuntimeError('the fake kernel needs root')
        self.state_dir = tempfile.mkdtemp(prefix='fake-iscsi-kernel-')
        self.bin_dir = os.path.join(self.state_dir, 'bin')
        os.makedirs(self.bin_dir)
        with open(os.path.join(self.state_dir, 'kernel.json'), 'w') as f:
            json.dump(Kernel.initial_state(
                {'multipathd': self.multipathd}), f)
        self.kernel = Kernel(self.state_dir)
        for tool in STAND_INS:
            path = os.path.join(self.bin_dir, tool)
            _write(path, STAND_IN_TEMPLATE % {
                'python': sys.executable, 'here': HERE, 'root': REPO_ROOT,
                'state': self.state_dir, 'tool': tool}, 0o755)
        for tree in SYSFS_TREES:
            self._mount('fake-sysfs', tree, 'tmpfs', 0, 'mode=755')
        for path in ('/sys/class/scsi_host', '/sys/class/iscsi_host',
                     '/sys/class/iscsi_session',
                     '/sys/class/iscsi_connection', '/sys/class/block',
                     '/sys/class/scsi_device', '/sys/class/scsi_disk',
                     '/sys/bus/scsi/devices', '/sys/bus/scsi/drivers/sd',
                     '/sys/devices/platform', '/sys/devices/virtual/block',
                     '/sys/dev/block'):
            os.makedirs(path)
        self._setup_dev()
        self._setup_etc()
        udev = os.path.realpath(os.path.dirname(SCSI_ID))
        self._overlay(udev, 'udev')
        # A fake kernel nested in another's namespace (a second host in a
        # child process) finds the first one's stand-in there.
        _unlink(os.path.join(udev, 'scsi_id'))
        os.symlink(os.path.join(self.bin_dir, 'scsi_id'),
                   os.path.join(udev, 'scsi_id'))
        self._saved['PATH'] = os.environ.get('PATH')
        os.environ['PATH'] = self.bin_dir + os.pathsep + os.environ.get(
            'PATH', '/usr/sbin:/usr/bin:/sbin:/bin')
        if self.configure_os_brick:
            self._configure_os_brick()
        return self

    def _setup_dev(self):
        self._mount('fake-dev', '/dev', 'tmpfs', 0, 'mode=755')
        for name, mode, major, minor in (
                ('null', 0o666, 1, 3), ('zero', 0o666, 1, 5),
                ('full', 0o666, 1, 7), ('random', 0o666, 1, 8),
                ('urandom', 0o666, 1, 9), ('tty', 0o666, 5, 0),
                ('loop-control', 0o660, 10, 237)):
            path = '/dev/' + name
            os.mknod(path, mode | 0o020000, os.makedev(major, minor))
            os.chmod(path, mode)
        for name, target in (('fd', '/proc/self/fd'),
                             ('stdin', '/proc/self/fd/0'),
                             ('stdout', '/proc/self/fd/1'),
                             ('stderr', '/proc/self/fd/2'),
                             ('ptmx', 'pts/ptmx')):
            os.symlink(target, '/dev/' + name)
        for name in ('pts', 'shm', 'disk/by-path', 'disk/by-id', 'mapper'):
            os.makedirs('/dev/' + name)
        self._mount('devpts', '/dev/pts', 'devpts', 0,
                    'newinstance,ptmxmode=0666,mode=620')
        self._mount('shm', '/dev/shm', 'tmpfs', 0, 'mode=1777')

    def _setup_etc(self):
        if os.path.isdir(os.path.dirname(INITIATOR_FILE)):
            self._mount('fake-etc-iscsi', os.path.dirname(INITIATOR_FILE),
                        'tmpfs', 0, 'mode=755')
        else:
            self._overlay('/etc', 'etc')
            os.makedirs(os.path.dirname(INITIATOR_FILE))
        self.set_initiator_name(self.initiator_name)

    def set_initiator_name(self, name):
        """Write /etc/iscsi/initiatorname.iscsi as open-iscsi has it."""
        self.initiator_name = name
        _write(INITIATOR_FILE, '## DO NOT EDIT OR REMOVE THIS FILE!\n'
               'InitiatorName=%s\n' % name, 0o600)

    def register_tgt(self, portal, control_port):
        """Tell the kernel a portal's tgtd control port (else /proc)."""
        with self.kernel.locked() as st:
            ip, port, __ = split_portal(portal)
            st['tgt_ports']['%s:%d' % (ip, port)] = control_port

    def _configure_os_brick(self):
        from os_brick import privileged
        from oslo_config import cfg
        lock_path = os.path.join(self.state_dir, 'locks')
        os.makedirs(lock_path)
        cfg.CONF.set_override('lock_path', lock_path, group='os_brick')
        for context in (privileged.default,
                        privileged.brick_privsep_hide_output):
            self._saved.setdefault('privsep', []).append(
                (context, context.client_mode))
            context.set_client_mode(False)

    # -- teardown

    def teardown(self):
        errors = []
        if self.kernel is not None:
            try:
                self._cleanup_kernel()
            except Exception as exc:
                errors.append('kernel cleanup: %r' % exc)
        for context, mode in self._saved.pop('privsep', []):
            context.set_client_mode(mode)
        if self.configure_os_brick and self.state_dir:
            from oslo_config import cfg
            with contextlib.suppress(Exception):
                cfg.CONF.clear_override('lock_path', group='os_brick')
        if 'PATH' in self._saved:
            path = self._saved.pop('PATH')
            if path is None:
                os.environ.pop('PATH', None)
            else:
                os.environ['PATH'] = path
        while self._mounts:
            target = self._mounts.pop()
            try:
                umount(target)
            except OSError:
                try:
                    umount(target, lazy=True)
                except OSError as exc:
                    errors.append(str(exc))
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None
        self.kernel = None
        if errors:
            raise RuntimeError('fake kernel teardown: ' + '; '.join(errors))

    def _cleanup_kernel(self):
        with self.kernel.locked() as st:
            for map_name in list(st['maps']):
                self.kernel.remove_multipath(map_name)
            for sid in list(st['sessions']):
                self.kernel.remove_session(int(sid))
            for name in list(st['devices']):
                self.kernel.remove_device(name)

    # -- inspection

    def state(self):
        with self.kernel.locked() as st:
            return json.loads(json.dumps(st))

    def sessions(self):
        return sorted(self.state()['sessions'].values(),
                      key=lambda s: s['sid'])

    def devices(self):
        return sorted(self.state()['devices'].values(),
                      key=lambda d: d['name'])

    def nodes(self):
        with self.kernel.locked():
            return [(ip, port, iqn) for iqn, ip, port, __, __, __
                    in self.kernel.find_nodes()]

    def loop_devices(self):
        """Loop devices that the fake kernel attached and that are bound."""
        bound = []
        state = self.state()
        for dev in list(state['devices'].values()) + list(
                state['maps'].values()):
            status = loop_backing(dev['loop'])
            if status and status[0] == dev['inode']:
                bound.append(dev['loop'])
        return sorted(bound)

    def calls(self):
        try:
            with open(os.path.join(self.state_dir, 'calls.log')) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def leftovers(self):
        """Everything an attachment leaves; empty when all is clean."""
        found = {
            'sessions': self.sessions(),
            'devices': [d['name'] for d in self.devices()],
            'nodes': self.nodes(),
            'dev': sorted(n for n in os.listdir('/dev')
                          if re.match(r'(sd[a-z]+|dm-\d+)$', n)),
            'links': sorted(glob.glob('/dev/disk/by-*/*') +
                            glob.glob('/dev/mapper/*')),
            'sysfs': sorted(glob.glob('/sys/class/scsi_host/*') +
                            glob.glob('/sys/class/iscsi_session/*') +
                            glob.glob('/sys/block/*') +
                            glob.glob('/sys/bus/scsi/devices/*')),
            'loops': self.loop_devices(),
        }
        return {key: value for key, value in found.items() if value}
