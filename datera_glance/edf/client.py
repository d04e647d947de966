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

"""The REST calls the store makes: :class:`EdfClient`.

An image is one app instance (AI) in the configured tenant, named
``OS-IMAGE-<image id>`` with the image id as its id. It is always addressed
by that id, never looked up by name.
"""

import dataclasses
import functools
import json
import threading
import time

from glance_store import exceptions
from oslo_log import log as logging

from datera_glance.edf import connection
from datera_glance.edf import errors
from datera_glance.edf import retries
from datera_glance.i18n import _
from datera_glance import lifecycle
from datera_glance.sdk_compat import dfs_sdk

sdk_exc = dfs_sdk.exceptions
sdk_connection = dfs_sdk.connection

# One logger for the whole package, named as before it was split: the
# README and operators' logging configurations name it.
LOG = logging.getLogger(__package__)

AI_NAME_PREFIX = 'OS-IMAGE-'
SI_NAME = 'storage-1'
VOLUME_NAME = 'volume-1'
ROOT_TENANT = connection.ROOT_TENANT

_API_VERSIONS = {'auto': ('v2.2', 'v2.1'), '2.2': ('v2.2',),
                 '2.1': ('v2.1',)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class EdfSettings:
    """How to reach and use one Datera EDF cluster.

    ``retry_attempts`` is the number of retries after a first failed try
    of a retriable request (503, a 500 saying the REST server is still
    starting, a lost connection, a timeout), the first after
    ``retry_interval`` seconds, each later one after twice the previous
    wait; all tries of one call, the waits included, end within
    ``operation_timeout`` seconds. ``request_timeout`` bounds a single
    HTTP request.
    """

    san_ip: str
    san_port: int = 7718
    login: str
    password: str = dataclasses.field(repr=False)
    tenant: str = ROOT_TENANT
    api_version: str = 'auto'
    ldap_server: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    retry_attempts: int = 5
    retry_interval: float = 1.0
    operation_timeout: float = 20.0
    request_timeout: float = 30.0
    schema_cache_dir: str | None = None


def ai_name(image_id):
    """The name of the app instance holding an image."""
    return AI_NAME_PREFIX + image_id


def tenant_path(tenant):
    """Normalize a tenant option value to a tenant path.

    ``None``, ``''``, ``root`` and ``/root`` are the root tenant; ``name``
    and ``/root/name`` are a child of it.
    """
    tenant = (tenant or '').strip().strip('/')
    if not tenant or tenant == 'root':
        return ROOT_TENANT
    if tenant.startswith('root/'):
        return '/' + tenant
    return '%s/%s' % (ROOT_TENANT, tenant)


class EdfClient:
    """A thread-safe client of one Datera cluster, one per Store.

    Logs in lazily (or at :meth:`check_connection`), negotiates the API
    version, creates the tenant when missing and remembers that it exists.
    Every method raises glance_store exceptions only.
    """

    def __init__(self, settings):
        self.settings = settings
        self.tenant = tenant_path(settings.tenant)
        self._lock = threading.Lock()
        self._conn = None
        self._tenant_ready = False
        self._initiators = set()
        self._retrier = retries.Retrier(settings)
        # image id -> (creation marker, when) of creates this client gave
        # up on (their answer may still come): see reap_given_up().
        self._given_up = {}
        self._given_up_lock = threading.Lock()
        # Deleted images whose app instance could not be removed yet.
        self._deleted = set()
        self._warn_if_unprotected()

    def _warn_if_unprotected(self):
        settings = self.settings
        if settings.insecure and not settings.ca_file:
            LOG.warning('TLS certificate verification of the Datera cluster '
                        'at %(ip)s is disabled (%(opt)s); anyone on the path '
                        'can read the credentials and the image traffic.',
                        {'ip': settings.san_ip, 'opt': errors.OPT_INSECURE})
        elif settings.san_port == connection.HTTP_PORT:
            LOG.warning('The Datera cluster at %(ip)s is reached over plain '
                        'HTTP (%(opt)s = %(port)s): credentials travel '
                        'unencrypted.', {'ip': settings.san_ip,
                                         'opt': errors.OPT_SAN_PORT,
                                         'port': connection.HTTP_PORT})

    # -- connection ---------------------------------------------------------

    @property
    def api_version(self):
        """The negotiated API version ('v2.2' or 'v2.1'); None before."""
        return self._conn._version if self._conn else None

    @property
    def product_version(self):
        return self._conn._product_version if self._conn else None

    def _schema_file(self):
        return connection.schema_file(self.settings)

    def _new_api(self, version):
        return connection.new_api(self.settings, self.tenant, version,
                                  self._schema_file())

    def _connect(self):
        """Log in, negotiating the API version; return the connection."""
        with self._lock:
            if self._conn is None:
                self._conn = self._negotiate()
            return self._conn

    def _negotiate(self):
        """Log in with the first API version the cluster serves."""
        wanted = self.settings.api_version
        versions = _API_VERSIONS.get(str(wanted).lower().lstrip('v'))
        if versions is None:
            raise errors.config_error(
                errors.OPT_API_VERSION,
                _('unsupported API version %s') % wanted)
        last = None
        for version in versions:
            # The SDK's API object only serves to build the connection.
            conn = self._new_api(version)[1]
            last = self._login(conn, version)
            if last is None:
                LOG.info('Connected to Datera cluster %(ip)s:%(port)s, API '
                         '%(v)s, product %(p)s, tenant %(t)s',
                         {'ip': self.settings.san_ip,
                          'port': self.settings.san_port, 'v': version,
                          'p': conn._product_version, 't': self.tenant})
                return conn
        raise errors.config_error(
            errors.OPT_API_VERSION,
            _('the cluster at %(ip)s serves none of the API versions '
              '%(v)s: %(e)s') % {'ip': self.settings.san_ip,
                                 'v': ', '.join(versions),
                                 'e': errors.api_message(last)})

    def _login(self, conn, version):
        """Log in on ``conn``; the error if it does not serve ``version``.

        Any other failure is raised, translated; ``conn`` is closed
        unless the login succeeded.
        """
        try:
            self._retrier.call(conn, conn.login)
        except sdk_exc.ApiValidationFailedError as e:
            # The version is served: it refused the login body.
            conn.close()
            raise errors.login_refused(self.settings, e)
        except (sdk_exc.ApiNotFoundError,
                sdk_exc.ApiInvalidRequestError,
                sdk_exc.ApiUnavailableError) as e:
            # The cluster does not serve this version: the caller tries
            # the next one.
            LOG.info('Datera cluster %(ip)s does not answer API '
                     '%(v)s: %(e)s', {'ip': self.settings.san_ip,
                                      'v': version,
                                      'e': errors.api_message(e)})
            conn.close()
            return e
        except sdk_exc.ApiError as e:
            conn.close()
            raise errors.login_error(self.settings, e)
        except BaseException:
            conn.close()
            raise
        return None

    def check_connection(self, timeout=None):
        """Log in now and make sure the tenant exists.

        :param timeout: seconds the whole check may take, tried once
            (glance-api start-up); None: the usual bounds and retries.
        :raises BadStoreConfiguration: naming the option to fix, when the
            cluster refuses the credentials, fails TLS verification or
            serves no supported API version.
        :raises ClusterUnreachable: the cluster did not answer (in time).
        """
        with self.operation(timeout, retries=timeout is None):
            conn = self._connect()
            self._ensure_tenant(conn)

    def close(self):
        """Close the pooled HTTP connections."""
        if self._conn is not None:
            self._conn.close()

    # -- calling ------------------------------------------------------------

    def operation(self, timeout=None, retries=True):
        """Bound every REST call this thread makes inside the block.

        All calls, their retries and waits included, end within
        ``timeout`` seconds (default: ``operation_timeout``) from the
        start of the block, or of an enclosing block when that ends
        sooner. ``retries=False`` tries each call once.
        """
        return self._retrier.operation(timeout, retries)

    def _call(self, what, image_id, fn, *args,
              retriable=retries.RETRIABLE, capacity=False, image=True,
              **kwargs):
        """Run one API operation; translate its errors for ``image_id``.

        :param retriable: the SDK errors worth retrying
        :param capacity: whether the cluster may refuse it for lack of
            room (a create or a grow): only then is an answer saying so
            StorageFull
        :param image: whether ``image_id`` is an image, whose missing
            app instance makes a 404 NotFound
        """
        conn = self._connect()
        try:
            return self._retrier.call(conn, fn, *args, retriable=retriable,
                                      **kwargs)
        except (exceptions.GlanceStoreException,
                exceptions.BackendException):
            raise
        except sdk_exc.ApiNotFoundError as e:
            if not image:
                raise self._translate(what, image_id, e)
            raise self._not_found(conn, what, image_id, e)
        except Exception as e:
            raise self._translate(what, image_id, e, capacity)

    def _not_found(self, conn, what, image_id, error):
        """NotFound when the image's app instance is missing.

        Any other 404 (an ACL entry, an initiator, a sub-path) is the
        cluster refusing the operation on an image that does exist.
        """
        try:
            self._retrier.call(conn, self._get_ai, conn, image_id)
        except sdk_exc.ApiNotFoundError:
            return self._image_not_found(image_id)
        except Exception as e:
            return self._translate(what, image_id, e)
        return self._translate(what, image_id, error)

    def _image_not_found(self, image_id):
        return errors.image_not_found(image_id, self.tenant)

    def _translate(self, what, image_id, e, capacity=False):
        return errors.translate(self.settings, what, image_id, e, capacity)

    def _poll(self, image_id, what, condition, timeout):
        """Call ``condition`` until true, backing off, within ``timeout``.

        The wait also ends with the enclosing :meth:`operation`.
        """
        self._retrier.poll(
            functools.partial(self._call, what, image_id, condition),
            timeout,
            functools.partial(errors.not_finished, what, image_id, timeout))

    def _params(self, tenant=None):
        return {'tenant': tenant or self.tenant}

    def _ensure_tenant(self, conn):
        """Create the tenant once per client when it is missing."""
        if self._tenant_ready or self.tenant == ROOT_TENANT:
            self._tenant_ready = True
            return
        parent, name = self.tenant.rsplit('/', 1)

        def ensure():
            try:
                conn.read_entity('/tenants/%s' % self.tenant[1:],
                                 params=self._params(ROOT_TENANT))
            except sdk_exc.ApiNotFoundError:
                LOG.info('Creating Datera tenant %s', self.tenant)
                try:
                    conn.create_entity('/tenants', {
                        'name': name, 'tenant': parent or ROOT_TENANT})
                except sdk_exc.ApiConflictError:
                    pass    # created meanwhile, by us or another host
        try:
            self._retrier.call(conn, ensure)
        except (sdk_exc.ApiConnectionError, sdk_exc.Api503RetryError) as e:
            raise errors.unreachable(self.settings, e)
        except Exception as e:
            raise errors.tenant_error(self.tenant, e)
        self._tenant_ready = True

    def _ai_path(self, image_id):
        return '/app_instances/%s' % image_id

    def _si_path(self, image_id):
        return '%s/storage_instances/%s' % (self._ai_path(image_id), SI_NAME)

    def _volume_path(self, image_id):
        return '%s/volumes/%s' % (self._si_path(image_id), VOLUME_NAME)

    def _get_ai(self, conn, image_id):
        return conn.read_entity(self._ai_path(image_id),
                                params=self._params())

    # -- image volumes ------------------------------------------------------

    def create_image_volume(self, image_id, size_gib, replica_count,
                            placement_mode, thin=True, marker=None):
        """Create the app instance of an image.

        Datera volumes are always thin on the cluster (the API has no
        switch for it); ``thin`` is accepted so that callers state it.
        ``marker`` becomes the app instance's description (see
        :mod:`datera_glance.lifecycle`). When the create fails in a way
        that leaves its outcome open (no answer in time), the marker is
        remembered: see :meth:`given_up_marker`.

        :raises Duplicate: the image's app instance already exists.
        :raises StorageFull: the cluster refused for lack of capacity.
        """
        conn = self._connect()
        self._ensure_tenant(conn)
        # A token only this call knows: if the connection drops after the
        # cluster created the AI, the retried POST gets 409, and the token
        # tells our own AI apart from one that existed before.
        marker = marker or lifecycle.creation_marker()
        body = {
            'name': ai_name(image_id),
            'uuid': image_id,
            'create_mode': 'openstack',
            'access_control_mode': 'deny_all',
            'descr': marker,
            'storage_instances': [{
                'name': SI_NAME,
                'volumes': [{
                    'name': VOLUME_NAME,
                    'size': int(size_gib),
                    'replica_count': int(replica_count),
                    'placement_mode': placement_mode,
                }],
            }],
            'tenant': self.tenant,
        }
        attempts = []

        def create():
            attempts.append(1)
            try:
                conn.create_entity('/app_instances', dict(body))
            except sdk_exc.ApiConflictError:
                if len(attempts) > 1 and self._created_by(
                        conn, image_id, marker, size_gib):
                    LOG.info('App instance of image %s was created by an '
                             'earlier try whose answer was lost', image_id)
                    return
                raise exceptions.Duplicate(image=image_id)
        try:
            self._call(_('create a volume'), image_id, create,
                       capacity=True, image=False)
        except (exceptions.Duplicate, exceptions.StorageFull):
            raise
        except Exception:
            # The cluster may still carry it out (the answer was lost or
            # late): a later upload of this image may remove what it left.
            self.give_up(image_id, marker)
            raise
        LOG.debug('Created Datera app instance %(ai)s (%(size)d GiB) in '
                  '%(t)s', {'ai': image_id, 'size': size_gib,
                            't': self.tenant})

    def _created_by(self, conn, image_id, marker, size_gib):
        try:
            ai = self._get_ai(conn, image_id)
        except sdk_exc.ApiNotFoundError:
            return False
        if ai.get('name') != ai_name(image_id):
            return False
        if 'descr' in ai:
            return ai.get('descr') == marker
        # A cluster that drops the description: accept an AI of the right
        # name and size that nobody has put online yet.
        try:
            volume = ai['storage_instances'][0]['volumes'][0]
        except (KeyError, IndexError, TypeError):
            return False
        return (volume.get('size') == size_gib and
                ai.get('admin_state') != 'online')

    def give_up(self, image_id, marker):
        """Remember a create of ours whose outcome is unknown."""
        with self._given_up_lock:
            self._given_up[image_id] = (marker, time.monotonic())

    def given_up_marker(self, image_id):
        """The marker of a create of this image given up on, or None."""
        with self._given_up_lock:
            entry = self._given_up.get(image_id)
        return entry[0] if entry else None

    def forget_given_up(self, image_id):
        with self._given_up_lock:
            self._given_up.pop(image_id, None)

    def reap_given_up(self):
        """Remove app instances that creates given up on made after all.

        Called before each store operation; cheap when there are none.
        An entry is kept until the app instance is removed or, once no
        late answer can come any more (twice the operation timeout), is
        known not to exist.
        """
        with self._given_up_lock:
            entries = list(self._given_up.items())
        for image_id, (marker, since) in entries:
            try:
                ai, metadata = self.image_record(image_id)
            except exceptions.NotFound:
                if (time.monotonic() - since >
                        2 * self.settings.operation_timeout):
                    self._drop_given_up(image_id, marker)
                continue
            if ai.get('descr') == marker and 'upload_state' not in metadata:
                LOG.info('Removing app instance %s, created after its '
                         'upload had given up on it', image_id)
                self.delete_image_volume(image_id, force=True)
            self._drop_given_up(image_id, marker)

    def reap_deleted(self):
        """Remove app instances of deleted images whose removal failed.

        Called before each store operation; cheap when there are none.
        Those still used by a host stay for that host's release.
        """
        with self._given_up_lock:
            images = list(self._deleted)
        for image_id in images:
            try:
                self._mark_deleted(image_id)
                self._remove_deleted(image_id)
            except exceptions.NotFound:
                pass
            with self._given_up_lock:
                self._deleted.discard(image_id)

    def _drop_given_up(self, image_id, marker):
        with self._given_up_lock:
            if self._given_up.get(image_id, (None,))[0] == marker:
                del self._given_up[image_id]

    def grow_image_volume(self, image_id, size_gib):
        """Grow the image's volume to ``size_gib`` and wait until done."""
        conn = self._connect()
        path = self._volume_path(image_id)

        def grow():
            conn.update_entity(path, {'size': int(size_gib),
                                      'tenant': self.tenant})
        self._call(_('grow the volume'), image_id, grow, capacity=True)

        def resized():
            volume = conn.read_entity(path, params=self._params())
            return (volume.get('size') == int(size_gib) and
                    volume.get('op_state', 'available') == 'available')
        self._poll(image_id, _('grow the volume'), resized,
                   self.settings.operation_timeout)

    def image_record(self, image_id):
        """(app instance, metadata) of an image.

        :raises NotFound: the app instance does not exist.
        """
        conn = self._connect()
        ai = self._call(_('read the volume'), image_id, self._get_ai, conn,
                        image_id)
        return ai, self.get_image_metadata(image_id)

    def list_image_volumes(self):
        """Every image app instance (``OS-IMAGE-<id>``) of the tenant.

        Lists the tenant's app instances with a name filter (the SDK
        pages through them) and keeps those whose name is exactly the
        image prefix followed by their own id: nothing else is the
        store's.
        """
        conn = self._connect()

        def listing():
            return conn.read_endpoint('/app_instances', params={
                'tenant': self.tenant,
                'filter': 'match(name,^%s.*)' % AI_NAME_PREFIX})
        found = self._call(_('list the image volumes'), self.tenant,
                           listing, image=False) or []
        return [ai for ai in found
                if ai.get('name') == ai_name(str(ai.get('id')))]

    def delete_image_volume(self, image_id, force=False):
        """Take the image's app instance offline and delete it.

        Without ``force`` the cluster refuses while hosts are logged in
        to it or bring it back online meanwhile: then nothing is deleted
        and the answer is False. ``force`` cuts such hosts off: only for
        app instances no legitimate user can hold (a failed upload's).

        :returns: True once deleted (also when an earlier try whose
            answer was lost deleted it)
        :raises NotFound: the app instance does not exist.
        """
        conn = self._connect()
        path = self._ai_path(image_id)
        offline = {'admin_state': 'offline', 'tenant': self.tenant}
        if force:
            offline['force'] = True

        def take_offline():
            try:
                conn.update_entity(path, dict(offline))
            except sdk_exc.ApiConflictError:
                return False    # in use: its users keep it
            return True
        if not self._call(_('take the volume offline'), image_id,
                          take_offline):
            return False
        attempts = []

        def delete():
            attempts.append(1)
            body = {'tenant': self.tenant}
            if force:
                body['force'] = True
            try:
                conn.delete_entity(path, data=body)
            except sdk_exc.ApiNotFoundError:
                if len(attempts) == 1:
                    raise
                # An earlier try deleted it; its answer was lost.
            except sdk_exc.ApiConflictError:
                return False    # a host brought it back online
            return True
        deleted = self._call(_('delete the volume'), image_id, delete)
        if deleted:
            LOG.debug('Deleted Datera app instance %s', image_id)
        return deleted

    def delete_image(self, image_id):
        """Delete an image without cutting off the hosts reading it.

        The image is marked ``deleting`` first: from then on it is gone
        for new reads and uploads. When no host uses its app instance,
        the app instance is removed now; otherwise the last host to
        release it removes it (:meth:`unexport_from`).

        :returns: True when removed now, False when left to its readers
            or, if the cluster did not let it finish, to the next operation
        :raises NotFound: the app instance does not exist.
        """
        # Once asked, the image is deleted: whatever cannot be done now
        # (the cluster is slow or refuses) is done before the next store
        # operation, so that glance never keeps an image whose data is
        # half deleted.
        try:
            self._mark_deleted(image_id)
            return self._remove_deleted(image_id)
        except exceptions.NotFound:
            if image_id in self._deleted:
                return True
            raise
        except Exception as e:
            LOG.warning('Image %(image)s is deleted, but its app instance '
                        'could not be removed yet (%(e)s); it will be '
                        'before the next operation.',
                        {'image': image_id, 'e': e})
            with self._given_up_lock:
                self._deleted.add(image_id)
            return False

    def is_deleted(self, image_id):
        """Whether this client deleted the image but could not finish."""
        with self._given_up_lock:
            return image_id in self._deleted

    def _mark_deleted(self, image_id):
        self.set_image_metadata(image_id, {
            'upload_state': lifecycle.STATE_DELETING,
            'deleting_since': '%d' % time.time()})

    def _remove_deleted(self, image_id):
        """Remove a deleted image's app instance if no host uses it."""
        conn = self._connect()

        def remove():
            si = conn.read_entity(self._si_path(image_id),
                                  params=self._params())
            if self._in_use(si, None):
                return False
            return self._remove_idle(conn, image_id)
        return self._call(_('delete the volume'), image_id, remove)

    def _remove_idle(self, conn, image_id):
        """Offline and delete, unless a host holds it; True if removed."""
        path = self._ai_path(image_id)
        try:
            conn.update_entity(path, {'admin_state': 'offline',
                                      'tenant': self.tenant})
            conn.delete_entity(path, data={'tenant': self.tenant})
        except sdk_exc.ApiConflictError:
            return False    # a host logged in or brought it back
        except sdk_exc.ApiNotFoundError:
            pass            # removed by another host's release
        LOG.info('Removed the app instance of deleted image %s', image_id)
        return True

    def _metadata_path(self, image_id):
        # The SDK's own rule: 3.3.0.0 moved AI metadata.
        version = self._conn._product_version or '0'
        if sdk_connection.dat_version_gte(version, '3.3.0.0'):
            return self._ai_path(image_id) + '/int_ecosystem_data'
        return self._ai_path(image_id) + '/metadata'

    def _read_metadata(self, conn, image_id):
        try:
            data = conn.read_entity(self._metadata_path(image_id),
                                    params=self._params())
        except sdk_exc.ApiNotFoundError:
            # An AI without metadata may answer 404 as well: tell it
            # from a missing AI (a 404 here too) by reading the AI, once.
            try:
                self._get_ai(conn, image_id)
            except sdk_exc.ApiNotFoundError:
                raise self._image_not_found(image_id)
            return {}
        if (isinstance(data, dict) and list(data) == ['data'] and
                isinstance(data['data'], dict)):
            data = data['data']
        return dict(data or {})

    def get_image_metadata(self, image_id):
        """The app instance's metadata, a dict of strings.

        :raises NotFound: the app instance does not exist.
        """
        conn = self._connect()
        return self._call(_('read the metadata'), image_id,
                          self._read_metadata, conn, image_id)

    def set_image_metadata(self, image_id, metadata):
        """Merge ``metadata`` into the app instance's metadata.

        Values are sent as strings (the API stores a map of strings).
        """
        conn = self._connect()
        values = {str(k): v if isinstance(v, str) else json.dumps(v)
                  if isinstance(v, (dict, list)) else str(v)
                  for k, v in metadata.items()}
        path = self._metadata_path(image_id)
        if path.endswith('/int_ecosystem_data'):
            body = {'data': values, 'tenant': self.tenant}
        else:
            body = dict(values, tenant=self.tenant)
        self._call(_('write the metadata'), image_id,
                   conn.update_entity, path, body)

    def volume_size_gib(self, image_id):
        """The size of the image's volume in GiB."""
        conn = self._connect()
        volume = self._call(_('read the volume'), image_id,
                            conn.read_entity, self._volume_path(image_id),
                            params=self._params())
        return int(volume['size'])

    # -- attach support -----------------------------------------------------

    def _initiator_tenant(self):
        # API 2.1 has initiators only at the root; 2.2 keeps them in the
        # tenant (as the original driver did from 2018.7.18.0 on).
        return self.tenant if self._conn._version != 'v2.1' else ROOT_TENANT

    def _register_initiator(self, conn, iqn, name):
        body = {'id': iqn, 'name': name, 'tenant': self._initiator_tenant()}
        if conn._version != 'v2.1':
            body['force'] = True    # v2.1's schema rejects it
        try:
            conn.create_entity('/initiators', body)
        except sdk_exc.ApiConflictError:
            pass

    def ensure_initiator(self, iqn, name):
        """Register this host's initiator once (an existing one is fine)."""
        conn = self._connect()
        self._ensure_tenant(conn)
        key = (iqn, self._initiator_tenant())
        if key in self._initiators:
            return
        self._call(_('register initiator %s') % iqn, iqn,
                   self._register_initiator, conn, iqn, name, image=False)
        self._initiators.add(key)

    def forget_initiator(self, iqn):
        """Drop the cached registration (e.g. after it was deleted)."""
        self._initiators = {k for k in self._initiators if k[0] != iqn}

    @staticmethod
    def _access(si):
        access = si.get('access') or {}
        if access.get('iqn') and access.get('ips'):
            return {'iqn': access['iqn'], 'ips': list(access['ips'])}
        return None

    def export_to(self, image_id, iqn, name=None):
        """Let initiator ``iqn`` reach the image's volume.

        Adds the initiator to the storage instance's ACL with the atomic
        ``acl_policy/initiators`` operation (other hosts' entries stay),
        puts the app instance online when it is not, and returns the
        storage instance's access ``{'iqn': ..., 'ips': [...]}``. When
        the cluster no longer knows the initiator (an admin removed it),
        it is registered again as ``name``.
        """
        conn = self._connect()
        initiator = '/initiators/%s' % iqn

        def export():
            ai = self._get_ai(conn, image_id)
            si = ai['storage_instances'][0]
            acl = si.get('acl_policy') or {}
            if not any(i.get('path') == initiator
                       for i in acl.get('initiators') or []):
                self._add_to_acl(conn, image_id, si, iqn, name)
            access = self._access(si)
            if ai.get('admin_state') != 'online' or access is None:
                ai = conn.update_entity(
                    self._ai_path(image_id),
                    {'admin_state': 'online', 'tenant': self.tenant})
                access = self._access(ai['storage_instances'][0])
            return access
        access = self._call(_('export the volume'), image_id, export)
        if access is None:
            access = self._wait_access(conn, image_id)
        return access

    def _add_to_acl(self, conn, image_id, si, iqn, name):
        """Add initiator ``iqn`` to the ACL of storage instance ``si``.

        With ``name``, an initiator the cluster no longer knows is
        registered again under that name and added then.
        """
        path = (si.get('path') or self._si_path(image_id)) + (
            '/acl_policy/initiators')
        body = {'op': 'add', 'path': '/initiators/%s' % iqn,
                'tenant': self.tenant}
        try:
            conn.update_endpoint(path, dict(body))
        except sdk_exc.ApiConflictError:
            pass    # an earlier try added it
        except (sdk_exc.ApiValidationFailedError,
                sdk_exc.ApiNotFoundError):
            if name is None:
                raise
            LOG.warning('The Datera cluster does not know initiator '
                        '%s any more; registering it again', iqn)
            self.forget_initiator(iqn)
            self._register_initiator(conn, iqn, name)
            conn.update_endpoint(path, dict(body))

    def _wait_access(self, conn, image_id):
        found = []

        def ready():
            si = conn.read_entity(self._si_path(image_id),
                                  params=self._params())
            found[:] = [self._access(si)]
            return found[0] is not None
        self._poll(image_id, _('export the volume'), ready,
                   self.settings.operation_timeout)
        return found[0]

    def wait_export_ready(self, image_id, timeout):
        """Wait until the storage instance is exported (``available``).

        Puts the app instance back online if another host took it offline
        between our export and now.
        """
        conn = self._connect()

        def ready():
            si = conn.read_entity(self._si_path(image_id),
                                  params=self._params())
            if si.get('admin_state') == 'offline':
                conn.update_entity(self._ai_path(image_id),
                                   {'admin_state': 'online',
                                    'tenant': self.tenant})
                return False
            return si.get('op_state') == 'available'
        self._poll(image_id, _('export the volume'), ready, timeout)

    def unexport_from(self, image_id, iqn):
        """Remove initiator ``iqn`` from the image's ACL.

        When no other initiator (or initiator group) remains in the ACL
        and none is logged in, the app instance is taken offline (idle
        image volumes stay offline: a real cluster clones those faster),
        or removed if its image was deleted meanwhile. The cluster
        refusing the offline (a host logged in meanwhile) is fine: that
        host now uses it. Transient failures, 500s included, are retried
        within the configured bounds. A missing app instance has nothing
        left to unexport.
        """
        conn = self._connect()
        initiator = '/initiators/%s' % iqn
        si_path = self._si_path(image_id)

        def unexport():
            try:
                conn.update_endpoint(si_path + '/acl_policy/initiators',
                                     {'op': 'remove', 'path': initiator,
                                      'tenant': self.tenant})
            except (sdk_exc.ApiConflictError, sdk_exc.ApiNotFoundError,
                    sdk_exc.ApiInvalidRequestError):
                # Not in the ACL (any more, e.g. an earlier try removed
                # it); a missing AI shows in the read below.
                pass
            si = conn.read_entity(si_path, params=self._params())
            if self._in_use(si, initiator):
                return
            state = self._read_metadata(conn, image_id).get('upload_state')
            if state == lifecycle.STATE_DELETING:
                self._remove_idle(conn, image_id)
                return
            try:
                ai = conn.update_entity(self._ai_path(image_id),
                                        {'admin_state': 'offline',
                                         'tenant': self.tenant})
            except sdk_exc.ApiConflictError:
                return      # a host logged in meanwhile: it keeps it
            # Another host may have added itself between our read and the
            # offline: bring the export back for it.
            sis = ai.get('storage_instances') if isinstance(ai, dict) else []
            if sis and self._in_use(sis[0], initiator):
                conn.update_entity(self._ai_path(image_id),
                                   {'admin_state': 'online',
                                    'tenant': self.tenant})
        try:
            self._call(_('unexport the volume'), image_id, unexport,
                       retriable=retries.RELEASE_RETRIABLE)
        except exceptions.NotFound:
            LOG.debug('App instance %s is gone; nothing to unexport',
                      image_id)

    @staticmethod
    def _in_use(si, initiator):
        """Whether a host other than ``initiator`` may use the SI."""
        acl = si.get('acl_policy') or {}
        others = [i for i in acl.get('initiators') or []
                  if i.get('path') != initiator]
        active = [i for i in si.get('active_initiators') or []
                  if initiator is None or
                  (i.get('path') if isinstance(i, dict) else i)
                  not in (initiator, initiator.rsplit('/', 1)[-1])]
        return bool(others or acl.get('initiator_groups') or active)
