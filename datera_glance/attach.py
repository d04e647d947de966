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
import fcntl
import functools
import hashlib
import json
import operator
import os
import shlex
import socket
import stat
import tempfile
import threading
import uuid

from glance_store import exceptions
import os_brick
from os_brick.initiator import connector as brick_connector
# lockutils registers [oslo_concurrency] options; os_brick.setup() needs
# them, so it is imported before the first use of os-brick.
from oslo_concurrency import lockutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_privsep import daemon as priv_daemon
from oslo_privsep import priv_context
import tenacity

from datera_glance.i18n import _
from datera_glance import names
from datera_glance import privileged

LOG = logging.getLogger(__name__)

ISCSI_PORT = names.ISCSI_PORT
LUN = 0
IQN_PREFIX = 'iqn.2010-10.org.openstack:datera-glance:'
INITIATOR_NAME_FILE = '/etc/iscsi/initiatorname.iscsi'
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
    return names.portal(ip, ISCSI_PORT)


def local_device_path(export_dir, initiator_iqn, ip, target_iqn):
    """Where the simulator exports a target for an initiator.

    ``<export_dir>/<initiator-iqn>/ip-<ip>:3260-iscsi-<iqn>-lun-0``, the
    name udev gives an iSCSI disk under /dev/disk/by-path.
    """
    return os.path.join(export_dir, initiator_iqn, names.export_link_name(
        ip, target_iqn, LUN, ISCSI_PORT))


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


@contextlib.contextmanager
def root_helper_errors(root_helper):
    """Report a privileged helper that cannot start as a configuration error.

    oslo.privsep starts its daemon on the first privileged call, with the
    root helper; when that fails (no sudo, a sudoers rule that does not
    match, rootwrap refusing the command) it says only "privsep helper
    command exited non-zero". The operator needs the options to look at.
    """
    try:
        yield
    except (priv_daemon.FailedToDropPrivileges, FileNotFoundError) as e:
        argv = shlex.split(root_helper)
        if (isinstance(e, FileNotFoundError) and
                (not argv or e.filename != argv[0])):
            raise
        raise exceptions.BackendException(_(
            'Could not start the privileged helper with the root helper '
            '"%(helper)s" (%(error)s): check datera_glance_rootwrap_path and '
            'datera_glance_rootwrap_config, the sudoers rule for that '
            'glance-rootwrap and that rootwrap.conf\'s filters_path holds '
            'datera.filters (glance-api\'s log shows the command after '
            '"Running privsep helper")') % {
                'helper': root_helper, 'error': e}) from e


def _privileged(method):
    """A Transport method that may start the privileged helper."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with root_helper_errors(self.settings.root_helper):
            return method(self, *args, **kwargs)
    return wrapper


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

    @_privileged
    def connect(self, props):
        """Connect; return os-brick's device info (``path`` and more)."""
        return self.connector.connect_volume(props)

    @_privileged
    def disconnect(self, props, device_info):
        self.connector.disconnect_volume(props, device_info, force=True)

    @_privileged
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
        timeout = self.settings.export_timeout

        def not_there(retry_state):
            raise exceptions.BackendException(
                _('The export %(path)s did not appear within %(t)ss') % {
                    'path': path, 't': timeout})
        # The link appears once the simulator has acted on the export;
        # wait for it rather than for a fixed time: look again after
        # 0.01 s, then after twice the previous pause, at most 0.5 s.
        tenacity.Retrying(
            retry=tenacity.retry_if_result(operator.not_),
            wait=tenacity.wait_exponential(multiplier=0.01, max=0.5),
            stop=tenacity.stop_after_delay(timeout),
            retry_error_callback=not_there)(os.path.exists, path)
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
    """What os-brick needs before its first use.

    ``os_brick.setup()`` with the CONF that holds ``[oslo_concurrency]
    lock_path`` (its iSCSI connector takes external locks there), and the
    root helper its privsep context starts the daemon with.
    """
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
        # os.open, not open(..., 'wb'): 'w' truncates, and the original
        # driver's truncating open lost data on file-backed exports.
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

    Users of one image on this host (threads and glance-api processes)
    are counted in a holders file beside a lock file, both named after
    the image and the attachment's scope: the cluster, the tenant and
    the initiator. Two Datera backends (two clusters, or two tenants)
    therefore never share attach state, even for one image id.

    A release never fails the transfer it ends: what it could not undo
    (the ACL entry, the online state) is remembered and undone before
    this host's next operation against the cluster
    (:meth:`finish_pending`), which also releases what crashed processes
    of this host left (holders files whose holders are all gone).
    """

    def __init__(self, edf_client, settings):
        self.edf = edf_client
        self.settings = settings
        self._lock_path = _setup_brick(settings)
        self._transport = transport_factory(settings)
        self.initiator_iqn = self._initiator_name()
        self._registered = False
        self._pending = set()
        self._pending_lock = threading.Lock()
        edf_settings = edf_client.settings
        scope = '%s:%s|%s|%s' % (edf_settings.san_ip, edf_settings.san_port,
                                 edf_client.tenant, self.initiator_iqn)
        self._scope = hashlib.sha256(scope.encode('utf-8')).hexdigest()[:16]

    @property
    def lock_path(self):
        """The folder holding this host's lock and holders files."""
        return self._lock_path

    def _initiator_name(self):
        """This host's initiator name, as the cluster will see it log in.

        Under ``iscsi`` that is the host's own name, the one iscsiadm
        presents (``/etc/iscsi/initiatorname.iscsi``): a host without one
        cannot attach, and ``datera_initiator_name`` cannot change it, so
        both are configuration errors. The ``local`` transport (the
        simulator) presents ``datera_initiator_name``, else a stable name
        derived from the host name.
        """
        if self.settings.transport == 'local':
            if self.settings.initiator_name:
                return self.settings.initiator_name
            name = derived_initiator_name()
            LOG.info('Using initiator name %s for this host', name)
            return name
        if self.settings.initiator_name:
            raise exceptions.BadStoreConfiguration(
                store_name='datera', reason=_(
                    'datera_initiator_name = %s applies to datera_transport '
                    '= local only: an iSCSI login presents the host\'s own '
                    'initiator name (%s); remove the option') % (
                        self.settings.initiator_name, INITIATOR_NAME_FILE))
        try:
            props = brick_connector.get_connector_properties(
                self.settings.root_helper, None,
                self.settings.use_multipath, False)
        except Exception as e:
            props = {}
            reason = str(e)
        else:
            reason = _('it has none')
        if props.get('initiator'):
            return props['initiator']
        raise exceptions.BadStoreConfiguration(
            store_name='datera', reason=_(
                'os-brick could not read this host\'s iSCSI initiator name '
                '(%(reason)s): install open-iscsi and set InitiatorName in '
                '%(file)s, and check datera_glance_rootwrap_path and '
                'datera_glance_rootwrap_config (datera_transport = '
                'iscsi)') % {'reason': reason, 'file': INITIATOR_NAME_FILE})

    @property
    def _display_name(self):
        return initiator_display_name(self.initiator_iqn)

    def _ensure_initiator(self):
        if not self._registered:
            self.edf.ensure_initiator(self.initiator_iqn, self._display_name)
            self._registered = True

    def _key(self, image_id):
        return '%s-%s' % (image_id, self._scope)

    @contextlib.contextmanager
    def attached(self, image_id):
        """Attach the image's volume for the duration of the block.

        Yields an :class:`Attachment`. On leaving the block, however it is
        left (normally, by an exception, or by a closed generator), this
        user is released; the last user of the image on this host
        disconnects and removes this host from the volume's ACL. Errors
        of that release are logged, never raised.
        """
        key = self._key(image_id)
        token = '%d:%s' % (os.getpid(), uuid.uuid4().hex)
        with self._lock(key) as lock:
            record = self._read_record(key)
            first = not record['holders']
            record['image'] = image_id
            record['holders'].append(token)
            self._write_record(key, record)
            try:
                with self.edf.operation():
                    device_path, props, device_info = self._attach(
                        image_id, first)
            except BaseException:
                self._drop_locked(lock, key, record, token)
                raise
            if first:
                record['props'], record['device'] = props, device_info
                self._write_record(key, record)
        try:
            yield Attachment(self, image_id, device_path, props)
        finally:
            self._drop_holder(key, token, image_id)

    def _drop_holder(self, key, token, image_id):
        """Unregister a user; the last one releases. Never raises."""
        try:
            with self._lock(key) as lock:
                self._drop_locked(lock, key, self._read_record(key), token)
        except Exception:
            LOG.exception('Could not release image %s on this host; it '
                          'will be retried', image_id)
            self._remember(image_id)

    def _drop_locked(self, lock, key, record, token):
        """Under the image's lock: unregister ``token``, release if last."""
        record['holders'] = [h for h in record['holders'] if h != token]
        if not record['holders'] and self._release(
                record['image'], record.get('props'), record.get('device')):
            self._write_record(key, None)
            lock.remove = True
        else:
            self._write_record(key, record)

    def _lock(self, key):
        return _FileLock(os.path.join(
            self._lock_path, 'datera-attach-%s.lock' % key))

    def _attach(self, image_id, first):
        self._ensure_initiator()
        # For a later user of the image on this host the export is in
        # place (this only reads where it is); the first one waits for it.
        access = self.edf.export_to(image_id, self.initiator_iqn,
                                    self._display_name)
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

    def _release(self, image_id, props, device_info):
        """Disconnect and unexport this host; True when all of it worked.

        What fails is logged and left for :meth:`finish_pending`: the
        data of the transfer that ends here is complete, and this must
        not fail it.
        """
        done = True
        if props is not None and device_info:
            try:
                self._restore_owner(device_info['path'])
                self._transport.disconnect(props, device_info)
            except Exception as e:
                done = False
                LOG.warning('Could not disconnect the volume of image '
                            '%(image)s (will retry): %(e)s',
                            {'image': image_id, 'e': e})
        try:
            with self.edf.operation():
                self.edf.unexport_from(image_id, self.initiator_iqn)
        except Exception as e:
            done = False
            LOG.warning('Could not unexport the volume of image %(image)s '
                        'from %(iqn)s (will retry before the next '
                        'operation): %(e)s',
                        {'image': image_id, 'e': e,
                         'iqn': self.initiator_iqn})
        if done:
            with self._pending_lock:
                self._pending.discard(image_id)
        else:
            self._remember(image_id)
        return done

    def _remember(self, image_id):
        with self._pending_lock:
            self._pending.add(image_id)

    def finish_pending(self):
        """Release what failed releases and crashed processes left.

        Cheap when there is nothing: a look at the lock folder. Never
        raises; what still fails stays pending.
        """
        with self._pending_lock:
            images = set(self._pending)
        images.update(self.stale_images())
        for image_id in sorted(images):
            try:
                self.release_stale(image_id)
            except Exception:
                LOG.exception('Could not finish releasing image %s',
                              image_id)

    def release_stale(self, image_id):
        """Release this host's export of an image no live user holds.

        Disconnects it (with the connection properties its last user
        recorded) and removes this host from its ACL; does nothing while
        a live user holds it (that user's release will).
        """
        key = self._key(image_id)
        with self._lock(key) as lock:
            record = self._read_record(key)
            if record['holders']:
                return      # in use again: its last user releases
            record['image'] = image_id
            self._drop_locked(lock, key, record, None)

    def stale_images(self):
        """Images this host's crashed processes left attached."""
        suffix = '-%s.holders' % self._scope
        found = []
        try:
            names = os.listdir(self._lock_path)
        except OSError:
            return found
        for name in names:
            if name.startswith('datera-attach-') and name.endswith(suffix):
                key = name[len('datera-attach-'):-len('.holders')]
                record = self._read_record(key)
                if record['image'] and not record['holders']:
                    found.append(record['image'])
        return found

    def holders(self, image_id):
        """Live users of the image on this host."""
        return self._read_record(self._key(image_id))['holders']

    # The holders file of an image: JSON {"image", "holders", "props",
    # "device"}, holders being "<pid>:<token>" of live users; only
    # touched under the image's lock. Holders of dead processes are
    # dropped when read, so a crash does not pin the export forever, and
    # the connection properties let a later process disconnect it.

    def _holders_file(self, key):
        return os.path.join(self._lock_path, 'datera-attach-%s.holders' % key)

    def _read_record(self, key):
        record = {'image': None, 'holders': [], 'props': None,
                  'device': None}
        try:
            with open(self._holders_file(key)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return record
        if isinstance(data, list):      # written by an earlier release
            data = {'holders': data}
        if isinstance(data, dict):
            record.update({k: data.get(k) for k in record if k in data})
        record['holders'] = [h for h in record['holders'] or []
                             if _holder_alive(h)]
        return record

    def _write_record(self, key, record):
        path = self._holders_file(key)
        if record is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        tmp = '%s.%s' % (path, uuid.uuid4().hex)
        with open(tmp, 'w') as f:
            json.dump(record, f)
        os.replace(tmp, path)

    # A non-root glance-api cannot open the root-owned disk os-brick
    # attached: the store's own privsep entrypoint gives it the disk, and
    # only a Datera iSCSI disk (datera_glance.privileged), for the time of
    # the attachment. Checked at every open: another worker of this host
    # may have released and re-attached it since.

    def _make_accessible(self, path, flags):
        if os.geteuid() == 0:
            return
        want = os.R_OK | (os.W_OK if flags & os.O_RDWR else 0)
        if os.access(path, want):
            return
        with root_helper_errors(self.settings.root_helper):
            privileged.own_device(path, os.getuid())

    def _restore_owner(self, path):
        if os.geteuid() == 0:
            return
        try:
            with root_helper_errors(self.settings.root_helper):
                privileged.return_device(path)
        except Exception as e:
            LOG.warning('Could not give %(path)s back to root: %(e)s',
                        {'path': path, 'e': e})


def _holder_alive(holder):
    try:
        pid = int(str(holder).split(':', 1)[0])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class _FileLock:
    """An exclusive lock of one image on this host, across processes.

    A thread lock (oslo.concurrency's in-process semaphore, keyed by
    path) plus ``flock`` on a lock file. The holder may remove the file
    when it is done (``remove = True``): a process that was waiting on
    the removed file notices that the path no longer names the file it
    locked and locks the new one instead, so removal is race-free and no
    lock file outlives the attachment it guarded.
    """

    def __init__(self, path):
        self.path = path
        self.remove = False
        self._fd = None
        self._thread_lock = None

    def __enter__(self):
        self._thread_lock = lockutils.internal_lock(self.path)
        self._thread_lock.acquire()
        try:
            self._fd = self._lock_file()
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _lock_file(self):
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                locked = os.fstat(fd)
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
            except BaseException:
                os.close(fd)
                raise
            if current is not None and (
                    (current.st_dev, current.st_ino) ==
                    (locked.st_dev, locked.st_ino)):
                return fd
            os.close(fd)    # removed by its last holder: lock the new one

    def __exit__(self, *exc):
        try:
            if self.remove:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            os.close(self._fd)
        finally:
            self._thread_lock.release()
