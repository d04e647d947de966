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

"""Glance store backed by Datera EDF app instances.

Each image is one app instance in the configured tenant: its id is the
image id, its name ``OS-IMAGE-<image id>``, and it holds one storage
instance (``storage-1``) with one volume (``volume-1``) that contains the
image's bytes from offset 0. The app instance's metadata records the
image's length and checksums. This is the layout of the original Datera
glance driver, so images it wrote stay readable and deletable.

Location URIs keep the original driver's form::

    datera://<datera_san_ip>:<datera_san_port>/app_instances/OS-IMAGE-<id>

and the forms its earlier versions wrote (``.../app_instances/<id>`` and
``.../app_instances/OS-<id>``). The image is always found by its id;
reads and deletes go to the configured cluster address.
"""

import contextlib
import functools
import hashlib
import re
import time

from glance_store import capabilities
from glance_store import driver
from glance_store import exceptions
from glance_store import location
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from datera_glance import attach
from datera_glance import edf
from datera_glance.i18n import _
from datera_glance import lifecycle
from datera_glance import names
from datera_glance import options
from datera_glance import stream

LOG = logging.getLogger(__name__)

SCHEME = options.STORE_NAME
URI_PREFIX = SCHEME + '://'
APP_INSTANCES = '/app_instances/'
# App instance name prefixes the original driver used, newest first:
# OS-IMAGE- since 2018.7, OS- before; the 2018.11 release wrote URIs
# with the bare id.
NAME_PREFIX = 'OS-IMAGE-'
_NAME_PREFIXES = (NAME_PREFIX, 'OS-', '')
# Glance image ids: the API accepts user-chosen ids in this form.
# Both are matched in full (re.fullmatch): '$' would let a trailing
# newline through into an app instance id.
_IMAGE_ID_RE = re.compile(
    r'[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}')
_HOST_RE = re.compile(r'(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)')

# Seconds glance-api start-up waits for each Datera backend to answer.
STARTUP_CHECK_TIMEOUT = 5.0
_STATE_WORDS = {
    lifecycle.STATE_WRITING: _('upload in progress'),
    lifecycle.ABANDONED: _('incomplete upload'),
    lifecycle.STATE_DELETING: _('being deleted'),
}

# The scheme is a valid [glance_store] default_store as soon as the
# driver is loaded (legacy single-store configurations).
options.allow_default_store()


class StoreLocation(location.StoreLocation):
    """A Datera image location.

    ``datera://<host>:<port>/app_instances/<prefix><image id>`` where the
    prefix is ``OS-IMAGE-`` (written by this driver), ``OS-`` or empty
    (written by earlier releases of the original driver). ``parse_uri``
    and ``get_uri`` are inverses.
    """

    def process_specs(self):
        self.scheme = SCHEME
        self.host = names.uri_host(self.specs['host'])
        self.port = int(self.specs['port'])
        self.image_id = self.specs['image_id']
        self.name_prefix = self.specs.get('name_prefix', NAME_PREFIX)

    @property
    def app_instance_name(self):
        return self.name_prefix + self.image_id

    def get_uri(self):
        return '%s%s:%d%s%s' % (URI_PREFIX, self.host, self.port,
                                APP_INSTANCES, self.app_instance_name)

    def parse_uri(self, uri):
        self.validate_schemas(uri, valid_schemas=(URI_PREFIX,))
        try:
            (self.host, self.port, self.name_prefix,
             self.image_id) = self._split(uri[len(URI_PREFIX):])
        except ValueError as e:
            reason = (_('Invalid Datera location URI %(uri)s: %(reason)s') %
                      {'uri': uri, 'reason': e})
            LOG.info(reason)
            raise exceptions.BadStoreUri(message=reason)
        self.scheme = SCHEME

    @staticmethod
    def _split(rest):
        if '?' in rest or '#' in rest:
            raise ValueError(_('a query or fragment is not allowed'))
        netloc, slash, path = rest.partition('/')
        if not slash:
            raise ValueError(_('the app instance path is missing'))
        host, colon, port = netloc.rpartition(':')
        if not colon or not host:
            raise ValueError(_('it must name a host and a port'))
        if not _HOST_RE.fullmatch(host):
            raise ValueError(_('invalid host %s') % host)
        if (not port.isdigit() or port != str(int(port)) or
                not 0 < int(port) < 65536):
            raise ValueError(_('invalid port %s') % port)
        path = '/' + path
        if not path.startswith(APP_INSTANCES):
            raise ValueError(_('the path must be %s<app instance>') %
                             APP_INSTANCES)
        name = path[len(APP_INSTANCES):]
        for prefix in _NAME_PREFIXES:
            if (name.startswith(prefix) and
                    _IMAGE_ID_RE.fullmatch(name[len(prefix):])):
                return host, int(port), prefix, name[len(prefix):]
        raise ValueError(_('%s is not the app instance of an image') % name)


class _ImageIterator(object):
    """Chunks of an image read from an attached volume.

    The first chunk is read when the iterator is made, so that attach
    errors reach the caller of ``get`` rather than a half-sent download.
    The volume is released when the data is exhausted, when reading
    fails, and when the consumer stops early and calls ``close()`` (or
    drops the iterator).
    """

    def __init__(self, chunks):
        self._chunks = chunks
        self._head = next(chunks, None)

    def __iter__(self):
        return self

    def __next__(self):
        if self._head is not None:
            head, self._head = self._head, None
            return head
        return next(self._chunks)

    def close(self):
        self._head = None
        self._chunks.close()


class Store(driver.Store):
    """Datera EDF backend store."""

    # Reads honour offset and length; add() keeps no per-call state on the
    # instance and the EDF client is thread-safe, so one instance serves
    # concurrent requests.
    _CAPABILITIES = (capabilities.BitMasks.RW_ACCESS |
                     capabilities.BitMasks.READ_RANDOM |
                     capabilities.BitMasks.DRIVER_REUSABLE)
    OPTIONS = options.OPTIONS
    EXAMPLE_URL = ('datera://<DATERA_SAN_IP>:<DATERA_SAN_PORT>'
                   '/app_instances/OS-IMAGE-<IMAGE_ID>')

    def __init__(self, *args, **kwargs):
        super(Store, self).__init__(*args, **kwargs)
        if self.backend_group:
            self.store_conf = driver.BackendGroupConfiguration(
                self.OPTIONS, self.backend_group, conf=self.conf)
        else:
            self.store_conf = self.conf.glance_store
        self.client = None
        self.attacher = None

    def get_schemes(self):
        return (SCHEME,)

    @property
    def _store_name(self):
        return self.backend_group or SCHEME

    def _bad_config(self, reason):
        LOG.error('Datera store %(store)s disabled for writes: %(reason)s',
                  {'store': self._store_name, 'reason': reason})
        return exceptions.BadStoreConfiguration(store_name=self._store_name,
                                                reason=reason)

    def configure_add(self):
        """Read the options once and check the cluster briefly.

        Missing or invalid options, and a cluster that answers but
        refuses the credentials or the TLS certificate, raise
        BadStoreConfiguration naming the option: glance then disables
        writes to this store instead of failing to start. A cluster that
        does not answer within a few seconds is an outage, not a
        configuration error: a warning is logged and the store stays
        enabled, so uploads and deletes work as soon as it is back.
        """
        try:
            edf_settings, attach_settings = self._read_options()
        except (cfg.Error, ValueError) as e:
            # oslo.config reports values outside an option's choices or
            # range only when the option is read.
            raise self._bad_config(str(e))
        self._url_prefix = '%s%s:%d%s' % (
            URI_PREFIX, names.uri_host(self.san_host), self.san_port,
            APP_INSTANCES)
        try:
            self.client = edf.EdfClient(edf_settings)
            self.attacher = attach.Attacher(self.client, attach_settings)
        except exceptions.BadStoreConfiguration as e:
            LOG.error('Datera store %(store)s disabled for writes: %(err)s',
                      {'store': self._store_name, 'err': e})
            raise
        except Exception as e:
            raise self._bad_config(str(e))
        timeout = min(STARTUP_CHECK_TIMEOUT, edf_settings.operation_timeout)
        try:
            # Tried once and briefly: every glance-api worker runs this
            # at start-up, before it serves anything.
            self.client.check_connection(timeout=timeout)
        except exceptions.BadStoreConfiguration as e:
            LOG.error('Datera store %(store)s disabled for writes: %(err)s',
                      {'store': self._store_name, 'err': e})
            raise
        except Exception as e:
            LOG.warning(
                'Datera store %(store)s: the cluster at %(host)s:%(port)d '
                'did not answer within %(t).0fs at start-up (%(err)s). The '
                'store stays enabled and uses the cluster once it answers; '
                'if this persists, check %(ip_opt)s and %(port_opt)s.',
                {'store': self._store_name, 'host': self.san_host,
                 'port': self.san_port, 't': timeout, 'err': e,
                 'ip_opt': edf.OPT_SAN_IP, 'port_opt': edf.OPT_SAN_PORT})

    def _read_options(self):
        """Check the options; keep the store's, return the others'."""
        conf = self.store_conf
        for name in ('datera_san_ip', 'datera_san_login',
                     'datera_san_password'):
            if not getattr(conf, name):
                raise self._bad_config(_('the %s option is required') % name)
        if (conf.datera_transport == 'local' and
                not conf.datera_local_export_dir):
            raise self._bad_config(
                _('the datera_local_export_dir option is required with '
                  'datera_transport = local'))
        options.check(conf)

        self.chunk_size = conf.datera_chunk_size
        self.READ_CHUNKSIZE = self.WRITE_CHUNKSIZE = self.chunk_size
        if self.chunk_size > 256 * units.Mi:
            LOG.warning('datera_chunk_size is %d bytes: every upload and '
                        'download holds a buffer this large.',
                        self.chunk_size)
        self.default_size_gib = conf.datera_default_image_size
        self.replica_count = conf.datera_replica_count
        self.placement_mode = conf.datera_placement_mode
        self.thin_provisioning = conf.datera_thin_provisioning
        self.san_host = conf.datera_san_ip
        self.san_port = conf.datera_san_port
        self.operation_timeout = conf.datera_operation_max_timeout

        edf_settings = edf.EdfSettings(
            san_ip=conf.datera_san_ip,
            san_port=conf.datera_san_port,
            login=conf.datera_san_login,
            password=conf.datera_san_password,
            tenant=conf.datera_tenant_id,
            api_version=conf.datera_api_version,
            ldap_server=conf.datera_ldap_server,
            ca_file=conf.datera_ca_certificates_file,
            insecure=conf.datera_api_insecure,
            retry_attempts=conf.datera_retry_attempts,
            retry_interval=conf.datera_retry_interval,
            operation_timeout=conf.datera_operation_max_timeout,
            request_timeout=conf.datera_operation_max_timeout)
        attach_settings = attach.AttachSettings(
            transport=conf.datera_transport,
            use_multipath=conf.datera_use_multipath,
            local_export_dir=conf.datera_local_export_dir,
            initiator_name=conf.datera_initiator_name,
            root_helper='%s %s' % (conf.datera_glance_rootwrap_path,
                                   conf.datera_glance_rootwrap_config),
            export_timeout=conf.datera_operation_max_timeout)
        return edf_settings, attach_settings

    def _check_configured(self):
        if self.client is None or self.attacher is None:
            raise exceptions.BackendException(
                _('Datera store %s is not configured; see the errors '
                  'logged when it was loaded') % self._store_name)

    def _location(self, image_id):
        return StoreLocation({'host': self.san_host,
                              'port': self.san_port,
                              'image_id': image_id},
                             self.conf, backend_group=self.backend_group)

    @contextlib.contextmanager
    def _backend_errors(self, image_id, action):
        """Let store errors through; anything else is a BackendException.

        The image source's own errors pass untouched (see add()).
        """
        try:
            yield
        except (exceptions.GlanceStoreException,
                exceptions.BackendException, stream.SourceError):
            raise
        except Exception as e:
            msg = (_('Failed to %(action)s image %(image)s on Datera store '
                     '%(store)s: %(error)s') %
                   {'action': action, 'image': image_id,
                    'store': self._store_name, 'error': e})
            LOG.exception(msg)
            raise exceptions.BackendException(msg) from e

    @contextlib.contextmanager
    def _operation(self, image_id, action):
        """The cluster-facing part of a store call.

        Bounded by ``datera_operation_max_timeout`` as a whole, first
        finishing what earlier operations of this host left undone.
        """
        with self._backend_errors(image_id, action):
            with self.client.operation():
                self._tidy()
                yield

    def _tidy(self):
        """Release leftovers of earlier operations; never raises.

        Takes at most a third of the operation's time, so the operation
        itself still has its share.
        """
        try:
            with self.client.operation(self.operation_timeout / 3):
                self.client.reap_given_up()
                self.client.reap_deleted()
                self.attacher.finish_pending()
        except Exception as e:
            LOG.warning('Could not tidy up after earlier operations on '
                        'Datera store %(store)s: %(e)s',
                        {'store': self._store_name, 'e': e})

    @driver.back_compat_add
    @capabilities.check
    def add(self, image_id, image_file, image_size, hashing_algo,
            context=None, verifier=None):
        """Store an image in a new app instance.

        :param image_id: the image's id; the app instance gets it as id
        :param image_file: the image data, a file-like object or iterable
        :param image_size: the size in bytes, or 0 when unknown
        :param hashing_algo: hashlib name of the multihash algorithm
        :param context: the request context (unused)
        :param verifier: an object whose ``update()`` gets every byte
        :returns: (location URI, bytes written, md5 hex digest, multihash
                  hex digest, location metadata)
        :raises: Duplicate if the image is stored or being stored,
                 Invalid if a known size does not match the data,
                 StorageFull, StorageWriteDenied, BackendException; an
                 exception raised by ``image_file`` itself is re-raised
                 unchanged once the app instance is removed
        """
        self._check_configured()
        # Refuse before anything is created on the cluster.
        if not _IMAGE_ID_RE.fullmatch(str(image_id)):
            raise exceptions.Invalid(
                _('Image id %s is not a UUID; the Datera store names app '
                  'instances after image UUIDs') % image_id)
        if hashing_algo not in hashlib.algorithms_available:
            raise exceptions.UnknownHashingAlgo(algo=hashing_algo)
        image_size = int(image_size or 0)
        if image_size:
            size_gib = stream.size_gib_for(image_size)
        else:
            size_gib = self.default_size_gib
            LOG.info('Image %(image)s has no size: its volume starts at '
                     '%(size)d GiB and grows while the data arrives.',
                     {'image': image_id, 'size': size_gib})

        marker = lifecycle.creation_marker()
        with self._operation(image_id, 'create'):
            self._create(image_id, size_gib, marker)
        # From here on the app instance is ours: remove it on any failure.
        try:
            with lifecycle.LiveUpload() as upload:
                with self._backend_errors(image_id, 'write'):
                    with self.client.operation():
                        self.client.set_image_metadata(
                            image_id, lifecycle.writer_metadata(
                                self.attacher.initiator_iqn, upload.token))
                    result = self._write(image_id, image_file, image_size,
                                         size_gib, hashing_algo, verifier)
                    with self.client.operation():
                        self._complete(image_id, result, hashing_algo)
        except BaseException as e:
            LOG.error('Upload of image %(image)s failed (%(e)s); removing '
                      'its app instance.', {'image': image_id, 'e': e})
            self._discard(image_id, marker)
            if isinstance(e, stream.SourceError):
                # Glance's own reader errors (size limit, quota) mean
                # something to glance: hand back the very same object.
                raise e.original from None
            raise

        LOG.info('Stored image %(image)s: %(size)d bytes (%(zeros)d zero '
                 'bytes not written), md5 %(md5)s.',
                 {'image': image_id, 'size': result.bytes_written,
                  'zeros': result.zero_bytes, 'md5': result.checksum})
        metadata = {}
        if self.backend_group:
            metadata['store'] = self.backend_group
        return (self._location(image_id).get_uri(), result.bytes_written,
                result.checksum, result.multihash, metadata)

    def _create(self, image_id, size_gib, marker):
        """Create the app instance, replacing an abandoned one."""
        create = functools.partial(
            self.client.create_image_volume, image_id, size_gib,
            self.replica_count, self.placement_mode, self.thin_provisioning,
            marker=marker)
        try:
            create()
        except exceptions.Duplicate:
            self._remove_abandoned(image_id)
            create()
        self.client.forget_given_up(image_id)

    def _image_state(self, image_id, ai, metadata):
        return lifecycle.classify(
            metadata, ai.get('descr'), self.attacher.initiator_iqn,
            creation_grace=2 * self.operation_timeout,
            abandoned_markers={self.client.given_up_marker(image_id)})

    def _remove_abandoned(self, image_id):
        """Remove what a failed upload of this image left, else Duplicate.

        Never removes a complete image, an upload in progress or an app
        instance this store did not create.
        """
        try:
            ai, metadata = self.client.image_record(image_id)
        except exceptions.NotFound:
            return      # removed meanwhile
        state = self._image_state(image_id, ai, metadata)
        if state.state == lifecycle.STATE_DELETING:
            if self.client.delete_image(image_id):
                return
        elif state.removable:
            LOG.warning('Removing the app instance of an earlier upload of '
                        'image %(image)s: %(reason)s.',
                        {'image': image_id, 'reason': state.reason})
            self.client.delete_image_volume(image_id, force=True)
            return
        raise exceptions.Duplicate(message=_(
            'Image %(image)s already exists on Datera store %(store)s '
            '(%(state)s: %(reason)s)') % {
                'image': image_id, 'store': self._store_name,
                'state': state.state, 'reason': state.reason})

    def _complete(self, image_id, result, hashing_algo):
        """Record a complete upload, unless glance deleted the image."""
        deleted = exceptions.NotFound(message=_(
            'Image %s was deleted while it was being uploaded') % image_id)
        try:
            state = self.client.get_image_metadata(image_id).get(
                'upload_state')
        except exceptions.NotFound:
            # Removed when this host released it, as deleted images are.
            raise deleted
        if state == lifecycle.STATE_DELETING:
            raise deleted
        record = {
            'checksum': result.checksum,
            'length': str(result.bytes_written),
            'type': lifecycle.TYPE_IMAGE,
            'multihash': result.multihash,
            'hash_algo': str(hashing_algo),
            'upload_state': lifecycle.STATE_COMPLETE,
            'upload_heartbeat': '%d' % time.time(),
        }
        if result.chunk_digests is not None:
            record[lifecycle.CHUNK_DIGESTS] = result.chunk_digests.encode()
        self.client.set_image_metadata(image_id, record)

    def _write(self, image_id, image_file, image_size, size_gib,
               hashing_algo, verifier):
        """Attach the volume once and stream the image into it."""
        volume_gib = size_gib
        last_heartbeat = time.monotonic()

        with self.attacher.attached(image_id) as attachment:

            def grow(needed_bytes):
                # Grow on the cluster, then make this host see it; the
                # attachment stays in place.
                nonlocal volume_gib
                new_gib = stream.next_volume_size_gib(volume_gib,
                                                      needed_bytes)
                LOG.debug('Growing the volume of image %(image)s from '
                          '%(old)d to %(new)d GiB.',
                          {'image': image_id, 'old': volume_gib,
                           'new': new_gib})
                with self.client.operation():
                    self.client.grow_image_volume(image_id, new_gib)
                volume_gib = new_gib
                return attachment.extend()

            def progress(written):
                # Show other hosts that this upload is alive.
                nonlocal last_heartbeat
                now = time.monotonic()
                if now - last_heartbeat >= lifecycle.HEARTBEAT_INTERVAL:
                    with self.client.operation():
                        self.client.set_image_metadata(
                            image_id, lifecycle.heartbeat_metadata())
                    last_heartbeat = now

            with attachment.open('r+b') as device:
                return stream.write_image(
                    device, image_file, image_id, self.chunk_size,
                    hashing_algo, size_gib * units.Gi,
                    image_size=image_size, verifier=verifier,
                    skip_zeros=self.thin_provisioning, grow=grow,
                    progress=progress)

    def _discard(self, image_id, marker):
        """Delete the app instance of a failed upload; never raises.

        What cannot be deleted now is removed before a later operation
        of this process, or by a new upload of the image.
        """
        try:
            with self.client.operation():
                self.client.delete_image_volume(image_id, force=True)
            self.client.forget_given_up(image_id)
        except exceptions.NotFound:
            # Its create may still be carried out: keep watching for it.
            self.client.give_up(image_id, marker)
        except Exception as e:
            self.client.give_up(image_id, marker)
            LOG.warning('Could not remove the app instance of failed '
                        'upload %(image)s now (%(e)s); it is removed by '
                        'the next operation or upload of it.',
                        {'image': image_id, 'e': e})

    def _stored_image(self, image_id):
        """(size in bytes, md5 or None, ChunkDigests or None) of an image.

        Images written by the original driver carry ``checksum``,
        ``length`` and ``type`` only. An app instance with no metadata at
        all that this store did not create (the original driver wrote
        metadata only at the end) is taken to hold a whole volume's worth
        of unverified data, as the cinder store does.

        :raises NotFound: the image does not exist, or is being uploaded
            or deleted
        """
        if self.client.is_deleted(image_id):
            raise exceptions.NotFound(
                message=_('Image %(image)s on Datera store %(store)s is '
                          'not available: being deleted') %
                {'image': image_id, 'store': self._store_name})
        metadata = self.client.get_image_metadata(image_id)
        if 'upload_state' in metadata or 'length' in metadata:
            descr = None    # the metadata alone tells
        else:
            descr = self.client.image_record(image_id)[0].get('descr')
        state = self._image_state(image_id, {'descr': descr}, metadata)
        if state.state not in (lifecycle.STATE_COMPLETE, lifecycle.UNKNOWN):
            raise exceptions.NotFound(
                message=_('Image %(image)s on Datera store %(store)s is '
                          'not available: %(state)s (%(reason)s)') %
                {'image': image_id, 'store': self._store_name,
                 'state': _STATE_WORDS.get(state.state, state.state),
                 'reason': state.reason})
        length = metadata.get('length')
        if length is None:
            size = self.client.volume_size_gib(image_id) * units.Gi
            LOG.warning('Image %(image)s has no recorded length; using its '
                        'volume size, %(size)d bytes, unverified.',
                        {'image': image_id, 'size': size})
            return size, None, None
        try:
            size = int(length)
        except ValueError:
            raise exceptions.BackendException(
                _('Image %(image)s has an invalid recorded length %(len)r') %
                {'image': image_id, 'len': length})
        return (size, metadata.get('checksum') or None,
                self._chunk_digests(image_id, metadata, size))

    @staticmethod
    def _chunk_digests(image_id, metadata, size):
        """The image's recorded chunk digests; None if it has none."""
        text = metadata.get(lifecycle.CHUNK_DIGESTS)
        if not text:
            return None     # uploaded before them, or too large
        try:
            return stream.ChunkDigests.decode(text, size)
        except ValueError as e:
            LOG.warning('Image %(image)s has unusable chunk digests (%(e)s); '
                        'checking full reads against its md5 only.',
                        {'image': image_id, 'e': e})
            return None

    @capabilities.check
    def get(self, location, offset=0, chunk_size=None, context=None):
        """Return an iterator over an image's data and its length.

        Each chunk is checked against the digest recorded for it at
        upload before it is handed out; an image without chunk digests
        (uploaded by an earlier version, or too large for them) holds back
        the last chunk of a full read until the data matches its md5.
        Either way a mismatch raises instead of sending the chunk.

        :param location: a Location whose store_location is ours
        :param offset: first byte to read
        :param chunk_size: number of bytes to read (a partial read), or
                           None for everything from ``offset``
        :returns: (iterator, number of bytes it yields)
        :raises: NotFound if the image does not exist
        """
        self._check_configured()
        image_id = location.store_location.image_id
        # Finding the image and attaching it share one deadline.
        with self._operation(image_id, 'read'):
            size, md5, digests = self._stored_image(image_id)
            offset = int(offset or 0)
            if not 0 <= offset <= size:
                raise exceptions.Invalid(
                    _('Offset %(offset)d is outside image %(image)s of '
                      '%(size)d bytes') %
                    {'offset': offset, 'image': image_id, 'size': size})
            length = size - offset
            if chunk_size is not None:
                length = min(length, int(chunk_size))
            # Chunk digests check any range; without them only a read
            # of every byte can be checked, against the md5.
            expected_md5 = md5 if (offset == 0 and length == size) else None
            if length == 0:
                return iter(()), 0
            chunks = _ImageIterator(
                self._read(image_id, offset, length, expected_md5, digests))
        return chunks, length

    def _read(self, image_id, offset, length, expected_md5, digests):
        with self._backend_errors(image_id, 'read'):
            with self.attacher.attached(image_id) as attachment:
                with attachment.open('rb') as device:
                    yield from stream.read_image(
                        device, image_id, offset, length,
                        self.READ_CHUNKSIZE, expected_md5, digests)

    def get_size(self, location, context=None):
        """The size in bytes of a stored image, without attaching it.

        :raises: NotFound if the image does not exist
        """
        self._check_configured()
        image_id = location.store_location.image_id
        with self._operation(image_id, 'size'):
            return self._stored_image(image_id)[0]

    @capabilities.check
    def delete(self, location, context=None):
        """Delete an image without cutting off its readers.

        The image is gone for new reads and uploads at once; its app
        instance is removed now, or by the last host still reading it
        when that host releases it (as a filesystem keeps an unlinked
        file for the processes that have it open).

        :raises: NotFound if the image does not exist; any other failure
                 raises too
        """
        self._check_configured()
        image_id = location.store_location.image_id
        with self._operation(image_id, 'delete'):
            removed = self.client.delete_image(image_id)
        if removed:
            LOG.info('Deleted image %s.', image_id)
        else:
            LOG.info('Deleted image %s; its app instance is removed when '
                     'the hosts still reading it release it.', image_id)
