# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Attaching an image's Datera volume to this host.

The shape follows os-brick's connectors: one small class per transport
behind a factory keyed by name, each with ``connect``, ``disconnect`` and
``extend``. ``iscsi`` is os-brick's iSCSI connector (what production
uses); ``local`` is os-brick's LOCAL connector pointed at the by-path link
that the EDF simulator exports for this host, the way the iSCSI connector
finds its device under /dev/disk/by-path.

Privileged steps happen inside os-brick, which runs them in its
oslo.privsep daemon; that daemon starts through rootwrap with
``root_helper`` (see etc/glance/rootwrap.d/datera.filters).

Several users of one image on one host (glance-api threads and worker
processes) share one export: the first one exports and connects, the
last one disconnects and unexports. Attach and detach of one image on one
host are serialized with an oslo.concurrency lock (in-process semaphore
plus a file lock), keyed on the image and the initiator, so that other
images, and other "hosts" in one process (tests), proceed in parallel.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import socket
import stat
import tempfile
import threading
import time
import uuid

from glance_store import exceptions
import os_brick
from os_brick.initiator import connector as brick_connector
# lockutils registers [oslo_concurrency] options; os_brick.setup() needs
# them, so it is imported before the first use of os-brick.
from oslo_concurrency import lockutils
from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_privsep import priv_context

from datera_glance.i18n import _

LOG = logging.getLogger(__name__)

ISCSI_PORT = 3260
LUN = 0
IQN_PREFIX = 'iqn.2010-10.org.openstack:datera-glance:'
_TRANSPORTS = {}


@dataclasses.dataclass(frozen=True)
class AttachSettings:
    """How this host attaches image volumes.

    ``initiator_name`` None means os-brick's (the host's iSCSI initiator
    name), else a stable name derived from the host name. ``lock_path``
    None means ``[oslo_concurrency] lock_path``, else a private folder.
    """

    transport: str = 'iscsi'          # 'iscsi' | 'local'
    use_multipath: bool = False
    local_export_dir: str | None = None
    initiator_name: str | None = None
    root_helper: str = 'sudo glance-rootwrap /etc/glance/rootwrap.conf'
    lock_path: str | None = None
    export_timeout: float = 60.0


def portal(ip):
    """The iSCSI portal of a data IP (IPv6 literals in brackets)."""
    if ':' in ip and not ip.startswith('['):
        ip = '[%s]' % ip
    return '%s:%d' % (ip, ISCSI_PORT)


def local_device_path(export_dir, initiator_iqn, ip, target_iqn):
    """Where the simulator exports a target for an initiator.

    ``<export_dir>/<initiator-iqn>/ip-<ip>:3260-iscsi-<iqn>-lun-0``, the
    name udev gives an iSCSI disk under /dev/disk/by-path.
    """
    return os.path.join(export_dir, initiator_iqn, 'ip-%s-iscsi-%s-lun-%d' % (
        portal(ip), target_iqn, LUN))


def connection_properties(access, transport='iscsi', use_multipath=False,
                          initiator_iqn=None, local_export_dir=None):
    """os-brick connection properties for a storage instance's access.

    ``access`` is ``{'iqn': ..., 'ips': [...]}``. The result is what
    cinder's iSCSI drivers hand os-brick: the first portal, the target
    IQN, LUN 0, not discovered; with multipath also every portal. For the
    ``local`` transport it also holds ``device_path``, the export link
    of the first portal for ``initiator_iqn`` under ``local_export_dir``.
    """
    if transport not in _TRANSPORTS:
        raise ValueError(_('Unknown transport %s') % transport)
    ips = list(access.get('ips') or [])
    iqn = access.get('iqn')
    if not ips or not iqn:
        raise exceptions.BackendException(
            _('The Datera storage instance has no access information '
              '(%s)') % access)
    props = {
        'target_discovered': False,
        'target_portal': portal(ips[0]),
        'target_iqn': iqn,
        'target_lun': LUN,
        'discard': False,
    }
    if use_multipath:
        props['target_portals'] = [portal(ip) for ip in ips]
        props['target_iqns'] = [iqn] * len(ips)
        props['target_luns'] = [LUN] * len(ips)
    if transport == 'local':
        if not local_export_dir or not initiator_iqn:
            raise exceptions.BadStoreConfiguration(
                store_name='datera', reason=_(
                    'the local transport needs datera_local_export_dir'))
        props['device_path'] = local_device_path(
            local_export_dir, initiator_iqn, ips[0], iqn)
    return props


def _transport(name):
    def register(cls):
        _TRANSPORTS[name] = cls
        cls.name = name
        return cls
    return register


class Transport:
    """Connects this host to an exported volume (one class per kind)."""

    name = None
    protocol = None

    def __init__(self, settings):
        self.settings = settings
        self.connector = brick_connector.InitiatorConnector.factory(
            self.protocol, settings.root_helper,
            use_multipath=settings.use_multipath)

    def connect(self, props):
        """Connect; return os-brick's device info (``path`` and more)."""
        return self.connector.connect_volume(props)

    def disconnect(self, props, device_info):
        self.connector.disconnect_volume(props, device_info, force=True)

    def extend(self, props, device_path):
        """Make the host see a grown volume; return its size in bytes."""
        size = self.connector.extend_volume(props)
        if not size:
            raise exceptions.BackendException(
                _('The host did not see the new size of %s') % device_path)
        return int(size)


@_transport('iscsi')
class ISCSITransport(Transport):
    """os-brick's iSCSI connector: login, scan, by-path device."""

    protocol = 'ISCSI'


@_transport('local')
class LocalTransport(Transport):
    """os-brick's LOCAL connector on the simulator's export link."""

    protocol = 'LOCAL'

    def connect(self, props):
        path = props['device_path']
        # The link appears once the simulator has acted on the export;
        # wait for it rather than for a fixed time.
        deadline = time.monotonic() + self.settings.export_timeout
        delay = 0.01
        while not os.path.exists(path):
            if time.monotonic() >= deadline:
                raise exceptions.BackendException(
                    _('The export %(path)s did not appear within %(t)ss') % {
                        'path': path, 't': self.settings.export_timeout})
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return super().connect(props)

    def extend(self, props, device_path):
        # blockdev --getsize64 (os-brick) answers for a block device;
        # a regular file simply has its new size.
        if stat.S_ISBLK(os.stat(device_path).st_mode):
            return super().extend(props, device_path)
        return os.stat(device_path).st_size


def transport_factory(settings):
    """The transport named by ``settings.transport``."""
    try:
        cls = _TRANSPORTS[settings.transport]
    except KeyError:
        raise exceptions.BadStoreConfiguration(
            store_name='datera', reason=_(
                'unknown datera_transport %(t)s (one of %(all)s)') % {
                't': settings.transport, 'all': ', '.join(sorted(
                    _TRANSPORTS))})
    return cls(settings)


def derived_initiator_name(host=None):
    """A stable initiator name for a host without one."""
    host = host or socket.gethostname()
    return IQN_PREFIX + hashlib.sha256(host.encode('utf-8')).hexdigest()[:12]


def initiator_display_name(iqn):
    """The name the initiator is registered under: OpenStack-<8 hex>."""
    return 'OpenStack-' + hashlib.sha256(iqn.encode('utf-8')).hexdigest()[:8]


_setup_lock = threading.Lock()
_private_lock_dir = None


def _private_lock_path():
    global _private_lock_dir
    if _private_lock_dir is None:
        # Shared by this host's glance-api processes when they share the
        # user; created 0700 and refused if someone else owns it.
        path = os.path.join(tempfile.gettempdir(),
                            'datera-glance-locks-%d' % os.geteuid())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or
                st.st_mode & 0o077):
            raise exceptions.BadStoreConfiguration(
                store_name='datera', reason=_(
                    '%s is not a private folder of this user; set '
                    '[oslo_concurrency] lock_path') % path)
        _private_lock_dir = path
    return _private_lock_dir


def _setup_brick(settings):
    """What os-brick needs before its first use (REFERENCE.md 7)."""
    with _setup_lock:
        conf = cfg.CONF
        lock_path = settings.lock_path or conf.oslo_concurrency.lock_path
        if not lock_path:
            lock_path = _private_lock_path()
            # The iSCSI connector's external locks read it from CONF.
            conf.set_override('lock_path', lock_path, 'oslo_concurrency')
        os_brick.setup(conf)
        # Start os-brick's privsep daemon through rootwrap when needed.
        priv_context.init(root_helper=shlex.split(settings.root_helper))
        return lock_path


class Attachment:
    """An attached image volume: its device and how to use it."""

    def __init__(self, attacher, image_id, device_path, props):
        self._attacher = attacher
        self.image_id = image_id
        self.device_path = device_path
        self.connection_properties = props

    def open(self, mode):
        """Open the device, 'rb' or 'r+b'; never truncates it."""
        if mode not in ('rb', 'r+b'):
            raise ValueError(_('mode must be rb or r+b, not %s') % mode)
        flags = os.O_RDONLY if mode == 'rb' else os.O_RDWR
        self._attacher._make_accessible(self.device_path, flags)
        # os.open, not open(..., 'wb'): 'w' truncates (REFERENCE.md 3).
        fd = os.open(self.device_path, flags)
        return os.fdopen(fd, mode)

    def extend(self):
        """After a grow: make the host see it; return the size in bytes."""
        return self._attacher._transport.extend(
            self.connection_properties, self.device_path)


class Attacher:
    """Attaches image volumes to this host, as initiator ``initiator_iqn``.

    One per Store; two Attachers with different initiator names act as
    two hosts (that is how tests prove multi-host behaviour in one
    process).
    """

    def __init__(self, edf_client, settings):
        self.edf = edf_client
        self.settings = settings
        self._lock_path = _setup_brick(settings)
        self._transport = transport_factory(settings)
        self.initiator_iqn = self._initiator_name()
        self._registered = False
        self._chowned = {}
        self._chown_lock = threading.Lock()

    def _initiator_name(self):
        if self.settings.initiator_name:
            return self.settings.initiator_name
        if self.settings.transport != 'local':
            try:
                props = brick_connector.get_connector_properties(
                    self.settings.root_helper, None,
                    self.settings.use_multipath, False)
            except Exception as e:
                # E.g. privsep cannot start: the store stays usable with
                # a derived name, and the attach itself will report it.
                LOG.warning('Could not read this host\'s iSCSI initiator '
                            'name through os-brick: %s', e)
                props = {}
            if props.get('initiator'):
                return props['initiator']
        name = derived_initiator_name()
        LOG.info('Using initiator name %s for this host', name)
        return name

    def _ensure_initiator(self):
        if not self._registered:
            self.edf.ensure_initiator(
                self.initiator_iqn, initiator_display_name(self.initiator_iqn))
            self._registered = True

    @contextlib.contextmanager
    def attached(self, image_id):
        """Attach the image's volume for the duration of the block.

        Yields an :class:`Attachment`. On leaving the block, however it is
        left (normally, by an exception, or by a closed generator), this
        user is released; the last user of the image on this host
        disconnects and removes this host from the volume's ACL.
        """
        key = '%s-%s' % (image_id, hashlib.sha256(
            self.initiator_iqn.encode('utf-8')).hexdigest()[:16])
        token = '%d:%s' % (os.getpid(), uuid.uuid4().hex)
        with self._lock(key):
            first = self._add_holder(key, token)
            try:
                device_path, props, device_info = self._attach(
                    image_id, first)
            except BaseException:
                if self._remove_holder(key, token):
                    self._release(image_id, None, None, quiet=True)
                raise
        failed = True
        try:
            yield Attachment(self, image_id, device_path, props)
            failed = False
        finally:
            with self._lock(key):
                if self._remove_holder(key, token):
                    self._release(image_id, props, device_info,
                                  quiet=failed)

    def _lock(self, key):
        return lockutils.lock('attach-' + key, lock_file_prefix='datera-',
                              external=True, lock_path=self._lock_path)

    def _attach(self, image_id, first):
        self._ensure_initiator()
        # For a later user of the image on this host the export is in
        # place (this only reads where it is); the first one waits for it.
        access = self.edf.export_to(image_id, self.initiator_iqn)
        if first:
            self.edf.wait_export_ready(image_id, self.settings.export_timeout)
        props = connection_properties(
            access, self.settings.transport, self.settings.use_multipath,
            self.initiator_iqn, self.settings.local_export_dir)
        LOG.debug('Connecting image %(image)s: %(props)s',
                  {'image': image_id, 'props': props})
        try:
            device_info = self._transport.connect(props)
        except exceptions.GlanceStoreException:
            raise
        except Exception as e:
            raise exceptions.BackendException(
                _('Could not connect the volume of image %(image)s: '
                  '%(e)s') % {'image': image_id, 'e': e})
        return device_info['path'], props, device_info

    def _release(self, image_id, props, device_info, quiet):
        """Disconnect and unexport this host.

        Errors surface only when ``quiet`` is false; otherwise they would
        hide the error already being raised.
        """
        errors = []
        if props is not None:
            try:
                self._restore_owner(device_info['path'])
                self._transport.disconnect(props, device_info)
            except Exception as e:
                errors.append(e)
                LOG.error('Could not disconnect the volume of image '
                          '%(image)s: %(e)s', {'image': image_id, 'e': e})
        try:
            self.edf.unexport_from(image_id, self.initiator_iqn)
        except Exception as e:
            errors.append(e)
            LOG.error('Could not unexport the volume of image %(image)s '
                      'from %(iqn)s: %(e)s', {'image': image_id, 'e': e,
                                              'iqn': self.initiator_iqn})
        if errors and not quiet:
            if isinstance(errors[-1], exceptions.GlanceStoreException):
                raise errors[-1]
            raise exceptions.BackendException(
                _('Could not detach the volume of image %(image)s: '
                  '%(e)s') % {'image': image_id, 'e': errors[-1]})

    # Holders of one image on this host, shared by its processes: a JSON
    # list of "<pid>:<token>" next to the lock file, only touched under
    # the lock. Holders of dead processes are dropped, so a crash does
    # not pin the export forever.

    def _holders_file(self, key):
        return os.path.join(self._lock_path, 'datera-attach-%s.holders' % key)

    def _read_holders(self, path):
        try:
            with open(path) as f:
                holders = json.load(f)
        except (OSError, ValueError):
            return []
        alive = []
        for holder in holders:
            pid = int(str(holder).split(':', 1)[0])
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            except PermissionError:
                pass
            alive.append(holder)
        return alive

    def _write_holders(self, path, holders):
        if not holders:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        tmp = '%s.%s' % (path, uuid.uuid4().hex)
        with open(tmp, 'w') as f:
            json.dump(holders, f)
        os.replace(tmp, path)

    def _add_holder(self, key, token):
        """Register a user; True when it is the only one."""
        path = self._holders_file(key)
        holders = self._read_holders(path)
        holders.append(token)
        self._write_holders(path, holders)
        return len(holders) == 1

    def _remove_holder(self, key, token):
        """Unregister a user; True when none remains."""
        path = self._holders_file(key)
        holders = [h for h in self._read_holders(path) if h != token]
        self._write_holders(path, holders)
        return not holders

    # A non-root glance-api cannot open a root-owned /dev/sdX: like the
    # cinder store, own it for the time of the attachment through
    # rootwrap (the filter only allows chown of paths under /dev).

    def _make_accessible(self, path, flags):
        if os.geteuid() == 0:
            return
        want = os.R_OK | (os.W_OK if flags & os.O_RDWR else 0)
        if os.access(path, want):
            return
        real = os.path.realpath(path)
        with self._chown_lock:
            if real in self._chowned:
                return
            owner = os.stat(real).st_uid
            self._chown(os.getuid(), real)
            self._chowned[real] = owner

    def _restore_owner(self, path):
        real = os.path.realpath(path)
        with self._chown_lock:
            owner = self._chowned.pop(real, None)
        if owner is not None:
            try:
                self._chown(owner, real)
            except (OSError, processutils.ProcessExecutionError) as e:
                LOG.warning('Could not give %(path)s back to uid %(uid)s: '
                            '%(e)s', {'path': real, 'uid': owner, 'e': e})

    def _chown(self, uid, path):
        processutils.execute('chown', str(uid), path, run_as_root=True,
                             root_helper=self.settings.root_helper)
