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

"""State and rules of the simulated Datera EDF cluster.

The model is the control plane: tenants, sessions, app instances with
their storage instances, volumes and volume snapshots, ACLs, initiators,
initiator groups and app instance metadata. It keeps everything in SQLite
inside the data directory, so a new model over the same directory sees
everything an earlier one stored, and several threads (or processes) may
use one data directory at once.

It knows nothing of HTTP: callers pass plain values, get plain
dictionaries shaped like the REST API's entities back, and see failures
as the domain errors below. Whatever must happen to volume files and
exports is delegated to an injected data plane object with this
interface::

    create_volume(volume_uuid, size_gib)
    clone_volume(volume_uuid, source_volume_uuid)
    grow_volume(volume_uuid, size_gib)
    delete_volume(volume_uuid)
    create_snapshot(snapshot_id, volume_uuid)
    clone_snapshot(volume_uuid, snapshot_id)
    delete_snapshot(snapshot_id)
    sync_exports(si_uuid, target_iqn, ips, volume_uuid, initiator_iqns)
    exported_initiators(si_uuid) -> set of IQNs

Entity paths never carry the API version (``/app_instances/<id>``), and
tenants are named by their path (``/root``, ``/root/<name>``).
"""

import contextlib
import copy
import json
import os
import re
import secrets
import sqlite3
import threading
import time
import uuid

ROOT_TENANT = '/root'
DB_NAME = 'control-plane.sqlite3'

# dfs_sdk logs in again (once) only when a 401 carries exactly this text;
# any other 401 message is logged as a warning before it does the same.
EXPIRED_KEY_MESSAGE = ('The key provided with the request does not '
                       'correspond to a valid session.')
INSUFFICIENT_CAPACITY_MESSAGE = 'Insufficient capacity'
IQN_PREFIX = 'iqn.2013-05.com.daterainc:tc:01:sn:'
DEFAULT_DATA_IPS = ('127.0.0.1', '127.0.0.2')
DEFAULT_SW_VERSION = '3.3.5.0'
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000

_INITIATOR_PREFIX = '/initiators/'
_GROUP_PREFIX = '/initiator_groups/'

# App instance creation may copy one of these, named by its path; the new
# app instance then gets storage instances and volumes like the source's.
CLONE_SOURCES = ('clone_src', 'clone_volume_src', 'clone_snapshot_src')
# A clone of one volume (or snapshot) gets one storage instance holding
# one volume, named as the cluster names them (and OpenStack's drivers
# name their own).
CLONE_SI_NAME = 'storage-1'
CLONE_VOLUME_NAME = 'volume-1'
_AI_REF = r'^/app_instances/(?P<ai>[^/]+)'
_VOLUME_REF = (_AI_REF + r'/storage_instances/(?P<si>[^/]+)'
               r'/volumes/(?P<vol>[^/]+)')
_CLONE_REF_RES = {
    'clone_src': re.compile(_AI_REF + '$'),
    'clone_volume_src': re.compile(_VOLUME_REF + '$'),
    'clone_snapshot_src': re.compile(_VOLUME_REF +
                                     r'/snapshots/(?P<ts>[^/]+)$'),
}
# What the cluster's schema says of each clone source's path.
_CLONE_REF_HELP = {
    'clone_src': 'Must be a valid path to an app instance',
    'clone_volume_src': 'Must be a valid path to a volume',
    'clone_snapshot_src': 'Must be a valid path to a snapshot',
}
SNAPSHOT_CREATING = 'creating'
SNAPSHOT_AVAILABLE = 'available'

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    path TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_path TEXT NOT NULL,
    seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    expires REAL);
CREATE TABLE IF NOT EXISTS app_instances (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, name));
CREATE TABLE IF NOT EXISTS initiators (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tenant, id));
CREATE TABLE IF NOT EXISTS initiator_groups (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tenant, name));
"""


class ModelError(Exception):
    """Base class of the domain errors the model raises."""

    def __init__(self, message):
        super(ModelError, self).__init__(message)
        self.message = message


class NotFound(ModelError, LookupError):
    """The addressed entity does not exist (in the caller's tenant)."""


class NoData(NotFound):
    """A sub-collection was listed under a parent that does not exist.

    Its message starts with ``No data at``: dfs_sdk's ``list()`` turns
    such an answer into an empty list.
    """

    def __init__(self, path):
        super(NoData, self).__init__('No data at %s' % path)


class Conflict(ModelError):
    """The request conflicts with the current state (duplicate, in use)."""


class Invalid(ModelError):
    """The request is well formed but its values cannot be applied."""


class InsufficientCapacity(Invalid):
    """A create or grow would exceed the cluster's capacity."""


class AuthError(ModelError):
    """Wrong credentials, or a missing, unknown or expired key."""


class BadRequest(ModelError):
    """The request cannot be understood (e.g. an unknown filter)."""


def tenant_name(path):
    return path.rstrip('/').rsplit('/', 1)[-1]


def normalize_tenant(tenant):
    """Turn a tenant header value into a tenant path (``/root/...``)."""
    if not tenant:
        return ROOT_TENANT
    path = '/' + tenant.strip().strip('/')
    if path != ROOT_TENANT and not path.startswith(ROOT_TENANT + '/'):
        raise NotFound('Tenant %s does not exist' % tenant)
    return path


def _ancestors(tenant):
    """The tenant itself, then its parents up to /root."""
    parts = tenant.strip('/').split('/')
    return ['/' + '/'.join(parts[:i]) for i in range(len(parts), 0, -1)]


# Filters ("filter=" in list requests): the subset of the API's query
# language that OpenStack drivers use.
_EQ_RE = re.compile(r'^(?P<field>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$')
_MATCH_RE = re.compile(
    r'^match\((?P<field>[A-Za-z_][A-Za-z0-9_]*),(?P<regex>.*)\)$')


def compile_filter(expression):
    """Compile a list filter into a predicate over entity dictionaries.

    Supported: ``field=value`` (exact, compared as text) and
    ``match(field,REGEX)`` (the whole field must match REGEX).
    """
    if expression is None or expression == '':
        return lambda entity: True
    m = _MATCH_RE.match(expression)
    if m:
        try:
            regex = re.compile(m.group('regex'))
        except re.error as e:
            raise BadRequest('Invalid regular expression in filter %r: %s'
                             % (expression, e))
        field = m.group('field')
        return lambda entity: (
            field in entity and
            regex.fullmatch(str(entity[field])) is not None)
    m = _EQ_RE.match(expression)
    if m:
        field, value = m.group('field'), m.group('value')
        return lambda entity: (
            field in entity and str(entity[field]) == value)
    raise BadRequest('Unsupported filter expression %r' % expression)


def query(entities, filter=None, sort=None, offset=0, limit=None):
    """Filter, sort and page a list of entities.

    :returns: ``(page, total_count, limit)`` where ``total_count`` counts
        the entities after filtering and ``limit`` is the page size used.
    """
    predicate = compile_filter(filter)
    matches = [e for e in entities if predicate(e)]
    if sort:
        reverse = sort.startswith('-')
        key = sort.lstrip('-+')
        matches.sort(key=lambda e: str(e.get(key, '')), reverse=reverse)
    total = len(matches)
    if not limit:
        # Zero or absent: the default page size, or everything if smaller.
        limit = DEFAULT_LIST_LIMIT
    offset = offset or 0
    return matches[offset:offset + limit], total, limit


class _NullDataPlane(object):
    """Data plane used when none is injected: remembers exports only."""

    def __init__(self):
        self._exports = {}

    def create_volume(self, volume_uuid, size_gib):
        pass

    def clone_volume(self, volume_uuid, source_volume_uuid):
        pass

    def grow_volume(self, volume_uuid, size_gib):
        pass

    def delete_volume(self, volume_uuid):
        pass

    def create_snapshot(self, snapshot_id, volume_uuid):
        pass

    def clone_snapshot(self, volume_uuid, snapshot_id):
        pass

    def delete_snapshot(self, snapshot_id):
        pass

    def sync_exports(self, si_uuid, target_iqn, ips, volume_uuid,
                     initiator_iqns):
        if initiator_iqns and ips:
            self._exports[si_uuid] = set(initiator_iqns)
        else:
            self._exports.pop(si_uuid, None)

    def exported_initiators(self, si_uuid):
        return set(self._exports.get(si_uuid, ()))


class Model(object):
    """The simulated cluster's control plane, persisted in SQLite.

    :param data_dir: folder holding the database (created if missing).
    :param dataplane: the data plane object (see the module docstring);
        without one, exports are only remembered in memory.
    :param clock: a ``time.time``-like callable, replaceable in tests.
    :param resize_seconds: how long a grown volume stays ``resizing``.
    :param snapshot_seconds: how long a new volume snapshot stays
        ``creating`` before it is ``available`` (its bytes are frozen at
        once; clients still have to wait, as on a cluster).

    Every change runs in one SQLite write transaction (``BEGIN
    IMMEDIATE``) under a model-wide lock, and the data plane is called
    inside it, so read-modify-write operations (atomic ACL edits,
    metadata merges) never lose updates and the exports always follow the
    committed state in order.
    """

    def __init__(self, data_dir, dataplane=None, clock=time.time,
                 username='admin', password='password',
                 sw_version=DEFAULT_SW_VERSION, key_ttl=3600.0,
                 resize_seconds=1.0, data_ips=DEFAULT_DATA_IPS,
                 system_name='datera-edf-sim', snapshot_seconds=0.5):
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.db_path = os.path.join(data_dir, DB_NAME)
        self.clock = clock
        self.dataplane = dataplane or _NullDataPlane()
        self.username = username
        self.password = password
        self.sw_version = sw_version
        self.key_ttl = key_ttl
        self.resize_seconds = resize_seconds
        self.snapshot_seconds = snapshot_seconds
        self.data_ips = list(data_ips)
        self.system_name = system_name
        self._local = threading.local()
        self._lock = threading.RLock()
        self._init_db()

    # Configuration

    _SETTINGS = ('dataplane', 'username', 'password', 'sw_version',
                 'key_ttl', 'resize_seconds', 'data_ips', 'system_name',
                 'snapshot_seconds')

    def configure(self, **settings):
        """Change settings given to the constructor.

        ``key_ttl=None`` makes keys never expire; ``dataplane=None``
        keeps the current data plane.
        """
        for name, value in settings.items():
            if name not in self._SETTINGS:
                raise TypeError('unknown model setting %r' % name)
            if name == 'dataplane' and value is None:
                continue
            if name == 'data_ips':
                value = list(value)
            setattr(self, name, value)

    # Database plumbing

    def _connect(self):
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30.0,
                                   isolation_level=None,
                                   check_same_thread=False)
            conn.execute('PRAGMA journal_mode=WAL')
            conn.execute('PRAGMA synchronous=NORMAL')
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _init_db(self):
        conn = self._connect()
        with self._lock:
            conn.executescript(_SCHEMA)
            with self._write() as db:
                row = db.execute('SELECT value FROM settings WHERE key=?',
                                 ('system_uuid',)).fetchone()
                if row is None:
                    db.execute('INSERT INTO settings VALUES (?, ?)',
                               ('system_uuid', str(uuid.uuid4())))
                    db.execute('INSERT INTO settings VALUES (?, ?)',
                               ('capacity_gib', json.dumps(None)))
                if not db.execute('SELECT 1 FROM tenants WHERE path=?',
                                  (ROOT_TENANT,)).fetchone():
                    db.execute('INSERT INTO tenants VALUES (?, ?, ?, ?)',
                               (ROOT_TENANT, 'root', '', 0))
                # Never changes; every rendered SI and volume names it.
                self._system_uuid = self._setting(db, 'system_uuid')
        self._node_path = '/storage_nodes/%s' % uuid.uuid5(
            uuid.UUID(self._system_uuid), 'node-1')

    @contextlib.contextmanager
    def _write(self):
        """A write transaction; nested uses join the outer one."""
        with self._lock:
            conn = self._connect()
            if conn.in_transaction:
                yield conn
                return
            conn.execute('BEGIN IMMEDIATE')
            try:
                yield conn
                conn.execute('COMMIT')
            except BaseException:
                if conn.in_transaction:
                    conn.execute('ROLLBACK')
                raise

    def _read(self):
        return self._connect()

    def close(self):
        """Close this thread's database connection."""
        conn = getattr(self._local, 'conn', None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _setting(self, db, key):
        row = db.execute('SELECT value FROM settings WHERE key=?',
                         (key,)).fetchone()
        return json.loads(row['value']) if key != 'system_uuid' else (
            row['value'])

    @staticmethod
    def _next_seq(db, table):
        row = db.execute('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM %s'
                         % table).fetchone()
        return row['n']

    # Sessions

    def login(self, name, password, remote_server=None):
        """Check credentials and open a session.

        ``remote_server`` (an LDAP server name) is accepted and ignored:
        the simulator checks every user against its one account.

        :returns: the session key.
        """
        if name != self.username or password != self.password:
            raise AuthError('Invalid user name or password')
        key = secrets.token_hex(16)
        expires = (self.clock() + self.key_ttl
                   if self.key_ttl is not None else None)
        with self._write() as db:
            # Forget dead sessions so the table does not grow forever.
            db.execute('DELETE FROM sessions WHERE expires < ?',
                       (self.clock(),))
            db.execute('INSERT INTO sessions VALUES (?, ?, ?)',
                       (key, name, expires))
        return key

    def check_key(self, key):
        """Raise AuthError unless ``key`` names a live session."""
        if key:
            row = self._read().execute(
                'SELECT expires FROM sessions WHERE key=?', (key,)).fetchone()
            if row is not None and (row['expires'] is None or
                                    row['expires'] > self.clock()):
                return
        raise AuthError(EXPIRED_KEY_MESSAGE)

    def logout(self, key):
        with self._write() as db:
            db.execute('DELETE FROM sessions WHERE key=?', (key,))

    def expire_all_keys(self):
        """End every session now, as a cluster does when keys time out."""
        with self._write() as db:
            db.execute('DELETE FROM sessions')

    # System

    def system(self):
        db = self._read()
        system_uuid = self._system_uuid
        capacity = self._setting(db, 'capacity_gib')
        used = self._provisioned_gib(db)
        total_gib = capacity if capacity is not None else 1024 * 1024
        total = int(total_gib * 1024 ** 3)
        available = max(0, total - int(used * 1024 ** 3))
        return {
            'path': '/system',
            'name': self.system_name,
            'uuid': system_uuid,
            'sw_version': self.sw_version,
            'build_version': 'sim-%s' % self.sw_version,
            'op_state': 'running',
            'health': 'ok',
            'causes': [],
            'callhome_enabled': False,
            'compression_enabled': False,
            'compression_ratio': '1.0',
            'l3_enabled': False,
            'total_capacity': total,
            'available_capacity': available,
            'total_provisioned_capacity': int(used * 1024 ** 3),
            'all_flash_total_capacity': total,
            'all_flash_available_capacity': available,
            'all_flash_provisioned_capacity': int(used * 1024 ** 3),
            'hybrid_total_capacity': 0,
            'hybrid_available_capacity': 0,
            'hybrid_provisioned_capacity': 0,
        }

    def storage_node_path(self):
        return self._node_path

    def storage_nodes(self):
        path = self.storage_node_path()
        return [{
            'path': path,
            'uuid': path.rsplit('/', 1)[-1],
            'name': 'sim-node-1',
            'op_state': 'online',
            'admin_state': 'online',
            'health': 'ok',
            'causes': [],
            'sw_version': self.sw_version,
        }]

    def set_capacity(self, gib):
        """Limit the total provisioned size (GiB); None: unlimited.

        Creates and grows that would go beyond it fail with
        InsufficientCapacity, as on a full cluster. Existing volumes are
        kept even if they already exceed it.
        """
        with self._write() as db:
            db.execute('UPDATE settings SET value=? WHERE key=?',
                       (json.dumps(gib), 'capacity_gib'))

    def fill_capacity(self):
        """Make the cluster full: capacity = what is provisioned now.

        :returns: the new capacity in GiB.
        """
        with self._write() as db:
            gib = self._provisioned_gib(db)
            db.execute('UPDATE settings SET value=? WHERE key=?',
                       (json.dumps(gib), 'capacity_gib'))
        return gib

    @staticmethod
    def _provisioned_gib(db):
        total = 0
        for row in db.execute('SELECT doc FROM app_instances'):
            doc = json.loads(row['doc'])
            for si in doc['storage_instances']:
                for vol in si['volumes']:
                    total += vol['size']
        return total

    def _check_capacity(self, db, extra_gib):
        capacity = self._setting(db, 'capacity_gib')
        if capacity is None or extra_gib <= 0:
            return
        used = self._provisioned_gib(db)
        if used + extra_gib > capacity:
            raise InsufficientCapacity(
                '%s: %s GiB requested, %s GiB of %s GiB available'
                % (INSUFFICIENT_CAPACITY_MESSAGE, extra_gib,
                   max(0, capacity - used), capacity))

    # Tenants

    def _tenant_row(self, db, path):
        return db.execute('SELECT * FROM tenants WHERE path=?',
                          (path,)).fetchone()

    def check_tenant(self, tenant):
        """Normalize a tenant header value; NotFound if no such tenant."""
        path = normalize_tenant(tenant)
        if self._tenant_row(self._read(), path) is None:
            raise NotFound('Tenant %s does not exist' % path)
        return path

    def _render_tenant(self, db, row):
        children = [r['path'] for r in db.execute(
            'SELECT path FROM tenants WHERE parent_path=? ORDER BY seq',
            (row['path'],))]
        return {
            'path': row['path'],
            'name': row['name'],
            'parent_path': row['parent_path'],
            'subtenants': children,
        }

    def create_tenant(self, name, parent_path=ROOT_TENANT):
        parent = normalize_tenant(parent_path)
        path = '%s/%s' % (parent, name)
        with self._write() as db:
            if self._tenant_row(db, parent) is None:
                raise NotFound('Tenant %s does not exist' % parent)
            if self._tenant_row(db, path) is not None:
                raise Conflict('Tenant %s already exists' % path)
            db.execute('INSERT INTO tenants VALUES (?, ?, ?, ?)',
                       (path, name, parent, self._next_seq(db, 'tenants')))
            return self._render_tenant(db, self._tenant_row(db, path))

    def get_tenant(self, path):
        path = normalize_tenant(path)
        db = self._read()
        row = self._tenant_row(db, path)
        if row is None:
            raise NotFound('Tenant %s does not exist' % path)
        return self._render_tenant(db, row)

    def list_tenants(self, tenant=ROOT_TENANT):
        """The tenant and every tenant below it."""
        tenant = normalize_tenant(tenant)
        db = self._read()
        rows = db.execute(
            'SELECT * FROM tenants WHERE path=? OR path LIKE ? ORDER BY seq',
            (tenant, tenant + '/%')).fetchall()
        return [self._render_tenant(db, r) for r in rows]

    def delete_tenant(self, path):
        path = normalize_tenant(path)
        if path == ROOT_TENANT:
            raise Invalid('The root tenant cannot be deleted')
        with self._write() as db:
            row = self._tenant_row(db, path)
            if row is None:
                raise NotFound('Tenant %s does not exist' % path)
            for table in ('tenants', 'app_instances', 'initiators',
                          'initiator_groups'):
                column = 'parent_path' if table == 'tenants' else 'tenant'
                if db.execute('SELECT 1 FROM %s WHERE %s=? LIMIT 1'
                              % (table, column), (path,)).fetchone():
                    raise Conflict('Tenant %s is not empty' % path)
            rendered = self._render_tenant(db, row)
            db.execute('DELETE FROM tenants WHERE path=?', (path,))
            return rendered

    # App instances: storage and rendering

    def _load_ai(self, db, tenant, ai_id):
        row = db.execute('SELECT doc FROM app_instances WHERE id=? AND '
                         'tenant=?', (ai_id, tenant)).fetchone()
        if row is None:
            raise NotFound('App instance %s does not exist in tenant %s'
                           % (ai_id, tenant))
        return json.loads(row['doc'])

    @staticmethod
    def _save_ai(db, doc):
        db.execute('UPDATE app_instances SET name=?, doc=? WHERE id=?',
                   (doc['name'], json.dumps(doc), doc['id']))

    @staticmethod
    def _find_si(doc, si_name):
        for si in doc['storage_instances']:
            if si['name'] == si_name:
                return si
        raise NotFound('Storage instance %s does not exist in app instance '
                       '%s' % (si_name, doc['id']))

    @staticmethod
    def _find_volume(doc, si, vol_name):
        for vol in si['volumes']:
            if vol['name'] == vol_name:
                return vol
        raise NotFound('Volume %s does not exist in storage instance %s of '
                       'app instance %s' % (vol_name, si['name'], doc['id']))

    @staticmethod
    def _find_snapshot(doc, si, vol, timestamp):
        for snap in vol.get('snapshots', []):
            if snap['timestamp'] == timestamp:
                return snap
        raise NotFound('Snapshot %s does not exist for volume %s of storage '
                       'instance %s of app instance %s'
                       % (timestamp, vol['name'], si['name'], doc['id']))

    def _ai_path(self, doc):
        return '/app_instances/%s' % doc['id']

    def _si_path(self, doc, si):
        return '%s/storage_instances/%s' % (self._ai_path(doc), si['name'])

    def _volume_path(self, doc, si, vol):
        return '%s/volumes/%s' % (self._si_path(doc, si), vol['name'])

    def _render_snapshot(self, doc, si, vol, snap):
        ready = snap['ready_at'] <= self.clock()
        return {
            'tenant': doc['tenant'],
            'path': '%s/snapshots/%s' % (self._volume_path(doc, si, vol),
                                         snap['timestamp']),
            'timestamp': snap['timestamp'],
            'utc_ts': snap['utc_ts'],
            'uuid': snap['uuid'],
            'op_state': SNAPSHOT_AVAILABLE if ready else SNAPSHOT_CREATING,
        }

    def _render_volume(self, doc, si, vol):
        resizing = (vol.get('resize_until') and
                    vol['resize_until'] > self.clock())
        rendered = {
            'tenant': doc['tenant'],
            'path': self._volume_path(doc, si, vol),
            'name': vol['name'],
            'uuid': vol['uuid'],
            'size': vol['size'],
            'replica_count': vol['replica_count'],
            'placement_mode': vol['placement_mode'],
            'capacity_in_use': 0,
            'snapshot_policies': [],
            'snapshots': [self._render_snapshot(doc, si, vol, snap)
                          for snap in vol.get('snapshots', [])],
            'op_state': 'resizing' if resizing else 'available',
            'availability_state': 'available',
            'active_storage_nodes': [{'path': self.storage_node_path()}],
            'health': 'ok',
            'causes': [],
            'deployment_state': 'deployed',
        }
        if resizing:
            rendered['op_status'] = 'volume_resize_in_progress'
        return rendered

    def _render_acl(self, doc, si):
        return {
            'tenant': doc['tenant'],
            'path': '%s/acl_policy' % self._si_path(doc, si),
            'initiators': [{'path': p} for p in si['acl']['initiators']],
            'initiator_groups': [{'path': p}
                                 for p in si['acl']['initiator_groups']],
        }

    def _render_si(self, doc, si):
        path = self._si_path(doc, si)
        online = doc['admin_state'] == 'online'
        return {
            'tenant': doc['tenant'],
            'path': path,
            'name': si['name'],
            'uuid': si['uuid'],
            'health': 'ok',
            'causes': [],
            'admin_state': doc['admin_state'],
            'op_state': 'available' if online else 'unavailable',
            'deployment_state': 'deployed',
            'access_control_mode': si['access_control_mode'],
            'volumes': [self._render_volume(doc, si, v)
                        for v in si['volumes']],
            'acl_policy': self._render_acl(doc, si),
            'ip_pool': {'path': si['ip_pool']},
            'access': {
                'path': '%s/access' % path,
                'ips': list(self.data_ips),
                'iqn': si['iqn'],
            },
            'auth': {
                'path': '%s/auth' % path,
                'type': 'none',
                'initiator_user_name': '',
                'initiator_pswd': '(hidden)',
                'target_user_name': '',
                'target_pswd': '(hidden)',
            },
            'active_initiators': sorted(
                self.dataplane.exported_initiators(si['uuid'])),
            'active_storage_nodes': [{'path': self.storage_node_path()}],
        }

    def _render_ai(self, doc):
        rendered = {
            'tenant': doc['tenant'],
            'path': self._ai_path(doc),
            'name': doc['name'],
            'id': doc['id'],
            'uuid': doc['uuid'],
            'health': 'ok',
            'causes': [],
            'admin_state': doc['admin_state'],
            'create_mode': doc['create_mode'],
            'access_control_mode': doc['access_control_mode'],
            'deployment_state': 'deployed',
            'storage_instances': [self._render_si(doc, si)
                                  for si in doc['storage_instances']],
            'snapshots': [],
            'snapshot_policies': [],
        }
        # The cluster sends "" for no description, which its own schema
        # refuses; leave the field out instead.
        if doc.get('descr'):
            rendered['descr'] = doc['descr']
        return rendered

    # App instances: exports

    def _resolve(self, db, tenant, path):
        """Find the initiator or group a path names, in tenant or above.

        :returns: ``(kind, tenant, doc)`` or None.
        """
        if path.startswith(_INITIATOR_PREFIX):
            table, key, kind = 'initiators', 'id', 'initiator'
            ident = path[len(_INITIATOR_PREFIX):]
        elif path.startswith(_GROUP_PREFIX):
            table, key, kind = 'initiator_groups', 'name', 'initiator_group'
            ident = path[len(_GROUP_PREFIX):]
        else:
            return None
        for candidate in _ancestors(tenant):
            row = db.execute('SELECT doc FROM %s WHERE tenant=? AND %s=?'
                             % (table, key), (candidate, ident)).fetchone()
            if row is not None:
                return kind, candidate, json.loads(row['doc'])
        return None

    def _effective_initiators(self, db, tenant, si):
        """IQNs the SI's ACL admits, directly or through groups."""
        iqns = set()
        for path in si['acl']['initiators']:
            iqns.add(path[len(_INITIATOR_PREFIX):])
        for path in si['acl']['initiator_groups']:
            found = self._resolve(db, tenant, path)
            if found is None:
                continue
            for member in found[2]['members']:
                if member.startswith(_INITIATOR_PREFIX):
                    iqns.add(member[len(_INITIATOR_PREFIX):])
        return iqns

    def _sync_si(self, db, doc, si):
        if doc['admin_state'] == 'online' and si['volumes']:
            wanted = self._effective_initiators(db, doc['tenant'], si)
        else:
            wanted = set()
        volume_uuid = si['volumes'][0]['uuid'] if si['volumes'] else None
        self.dataplane.sync_exports(si['uuid'], si['iqn'],
                                    list(self.data_ips), volume_uuid, wanted)

    def _sync_ai(self, db, doc):
        for si in doc['storage_instances']:
            self._sync_si(db, doc, si)

    def _sync_all(self, db):
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            self._sync_ai(db, json.loads(row['doc']))

    def resync_exports(self):
        """Tell the data plane every SI's export set (e.g. on startup)."""
        with self._write() as db:
            self._sync_all(db)

    # App instances: operations

    def create_app_instance(self, tenant, body):
        """Create an app instance with its storage instances and volumes.

        With ``create_mode: openstack`` and a ``uuid``, that uuid becomes
        the id. Duplicate names (in the tenant) and ids give Conflict.

        With one of :data:`CLONE_SOURCES` (``{"path": ...}`` naming an app
        instance, a volume or a volume snapshot of the same tenant), the
        app instance gets storage instances and volumes like the source's
        (new uuids, the source's sizes), each holding a copy of the
        source's bytes; a clone of one volume or snapshot has one
        ``storage-1`` with one ``volume-1``. A path to nothing is Invalid.
        """
        tenant = normalize_tenant(tenant)
        if 'app_template' in body:
            raise Invalid('app_template is not supported by the simulator')
        clone_key = _clone_key(body)
        doc = self._new_ai_doc(tenant, body)
        if not clone_key:
            fills = self._add_storage(doc, body.get('storage_instances', []))
        with self._write() as db:
            self._check_new_ai(db, doc)
            if clone_key:
                fills = self._add_clone_storage(db, doc, clone_key,
                                                body[clone_key]['path'])
            for si in doc['storage_instances']:
                self._check_acl_refs(db, tenant, si['acl'])
            self._check_capacity(db, sum(size for _, size, _ in fills))
            db.execute('INSERT INTO app_instances VALUES (?, ?, ?, ?, ?)',
                       (doc['id'], tenant, doc['name'],
                        self._next_seq(db, 'app_instances'),
                        json.dumps(doc)))
            self._fill_volumes(fills)
            return self._render_ai(doc)

    @staticmethod
    def _new_ai_doc(tenant, body):
        """The stored form of a new app instance, without storage yet."""
        create_mode = body.get('create_mode', 'normal')
        given_uuid = body.get('uuid')
        if create_mode == 'openstack' and given_uuid:
            ai_id = given_uuid
        else:
            ai_id = str(uuid.uuid4())
        return {
            'tenant': tenant,
            'id': ai_id,
            'name': body['name'],
            'uuid': given_uuid or ai_id,
            'descr': body.get('descr') or '',
            'create_mode': create_mode,
            'admin_state': 'offline',
            'access_control_mode': body.get('access_control_mode',
                                            'deny_all'),
            'metadata': {},
            'storage_instances': [],
        }

    def _check_new_ai(self, db, doc):
        if self._tenant_row(db, doc['tenant']) is None:
            raise NotFound('Tenant %s does not exist' % doc['tenant'])
        if db.execute('SELECT 1 FROM app_instances WHERE id=?',
                      (doc['id'],)).fetchone():
            raise Conflict('App instance with id %s already exists'
                           % doc['id'])
        if db.execute('SELECT 1 FROM app_instances WHERE tenant=? AND '
                      'name=?', (doc['tenant'], doc['name'])).fetchone():
            raise Conflict('App instance with name %s already exists'
                           % doc['name'])

    @staticmethod
    def _new_si(name, access_control_mode, acl=None, ip_pool=None):
        acl = acl or {}
        return {
            'name': name,
            'uuid': str(uuid.uuid4()),
            'iqn': IQN_PREFIX + secrets.token_hex(8),
            'access_control_mode': access_control_mode,
            'ip_pool': ip_pool or '/access_network_ip_pools/default',
            'acl': {
                'initiators': _unique(
                    p['path'] for p in acl.get('initiators', [])),
                'initiator_groups': _unique(
                    p['path'] for p in acl.get('initiator_groups', [])),
            },
            'volumes': [],
        }

    @staticmethod
    def _new_volume(name, size, replica_count=3, placement_mode='hybrid'):
        return {
            'name': name,
            'uuid': str(uuid.uuid4()),
            'size': whole_gib(size),
            'replica_count': replica_count,
            'placement_mode': placement_mode,
            'resize_until': None,
            'snapshots': [],
        }

    def _add_storage(self, doc, si_bodies):
        """Add the storage a create body describes to a new app instance.

        :returns: ``[(volume_uuid, size, None)]``: the volumes to create
            empty (see :meth:`_fill_volumes`).
        """
        fills = []
        for si_body in si_bodies:
            if any(si['name'] == si_body['name']
                   for si in doc['storage_instances']):
                raise Invalid('Duplicate storage instance name %s'
                              % si_body['name'])
            si = self._new_si(
                si_body['name'],
                si_body.get('access_control_mode',
                            doc['access_control_mode']),
                acl=si_body.get('acl_policy'),
                ip_pool=si_body.get('ip_pool', {}).get('path'))
            for vol_body in si_body.get('volumes', []):
                if any(v['name'] == vol_body['name'] for v in si['volumes']):
                    raise Invalid('Duplicate volume name %s'
                                  % vol_body['name'])
                vol = self._new_volume(
                    vol_body['name'], vol_body['size'],
                    vol_body.get('replica_count', 3),
                    vol_body.get('placement_mode', 'hybrid'))
                si['volumes'].append(vol)
                fills.append((vol['uuid'], vol['size'], None))
            doc['storage_instances'].append(si)
        return fills

    def _add_clone_storage(self, db, doc, clone_key, path):
        """Give a new app instance storage like its clone source's.

        :returns: ``[(volume_uuid, size, copy_of)]``, ``copy_of`` being
            ``('volume', uuid)`` or ``('snapshot', id)``.
        """
        fills = []
        for si_name, volumes in self._clone_layout(db, doc['tenant'],
                                                   clone_key, path):
            si = self._new_si(si_name, doc['access_control_mode'])
            for vol_name, src_vol, size, copy_of in volumes:
                vol = self._new_volume(vol_name, size,
                                       src_vol['replica_count'],
                                       src_vol['placement_mode'])
                si['volumes'].append(vol)
                fills.append((vol['uuid'], size, copy_of))
            doc['storage_instances'].append(si)
        return fills

    def _clone_layout(self, db, tenant, clone_key, path):
        """The storage a clone gets, and what each volume copies.

        :returns: ``[(si_name, [(volume_name, source_volume, size,
            copy_of)])]``.
        """
        if clone_key == 'clone_src':
            source = self._clone_source(db, tenant, clone_key, path)
            return [(si['name'], [(vol['name'], vol, vol['size'],
                                   ('volume', vol['uuid']))
                                  for vol in si['volumes']])
                    for si in source['storage_instances']]
        _si, vol, snap = self._clone_source(db, tenant, clone_key, path)
        if snap is None:
            copied = (vol, vol['size'], ('volume', vol['uuid']))
        else:
            # The volume as it was: a later grow is not in the snapshot.
            copied = (vol, snap['size'], ('snapshot', snap['data_id']))
        return [(CLONE_SI_NAME, [(CLONE_VOLUME_NAME,) + copied])]

    def _clone_source(self, db, tenant, clone_key, path):
        """What a clone source path names in the tenant.

        :returns: the app instance's stored form for ``clone_src``, else
            ``(si, volume, snapshot or None)``.
        :raises Invalid: the path names nothing of its kind there (in the
            cluster's words).
        :raises Conflict: the snapshot is still being created.
        """
        match = _CLONE_REF_RES[clone_key].match(path)
        try:
            if not match:
                raise NotFound(path)
            source = self._load_ai(db, tenant, match.group('ai'))
            if clone_key == 'clone_src':
                return source
            si = self._find_si(source, match.group('si'))
            vol = self._find_volume(source, si, match.group('vol'))
            snap = (self._find_snapshot(source, si, vol, match.group('ts'))
                    if clone_key == 'clone_snapshot_src' else None)
        except NotFound:
            raise Invalid('Validation failed for %s: %s; %s does not exist '
                          'in tenant %s' % (clone_key,
                                            _CLONE_REF_HELP[clone_key],
                                            path, tenant))
        if snap is not None and snap['ready_at'] > self.clock():
            raise Conflict('Snapshot %s is still %s; clone it once it is '
                           '%s' % (path, SNAPSHOT_CREATING,
                                   SNAPSHOT_AVAILABLE))
        return si, vol, snap

    def _fill_volumes(self, fills):
        """Make the backing data of new volumes: empty or copied.

        All or nothing: a failure deletes what was made before it.
        """
        made = []
        try:
            for volume_uuid, size, copy_of in fills:
                if copy_of is None:
                    self.dataplane.create_volume(volume_uuid, size)
                elif copy_of[0] == 'volume':
                    self.dataplane.clone_volume(volume_uuid, copy_of[1])
                else:
                    self.dataplane.clone_snapshot(volume_uuid, copy_of[1])
                made.append(volume_uuid)
        except BaseException:
            for volume_uuid in made:
                _best_effort(self.dataplane.delete_volume, volume_uuid)
            raise

    def get_app_instance(self, tenant, ai_id):
        tenant = normalize_tenant(tenant)
        return self._render_ai(self._load_ai(self._read(), tenant, ai_id))

    def list_app_instances(self, tenant):
        tenant = normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM app_instances WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ai(json.loads(r['doc'])) for r in rows]

    def update_app_instance(self, tenant, ai_id, body):
        """Change admin_state (online/offline, with force) or the name.

        Going offline while hosts are still connected (the SI is exported
        to someone) needs ``force``, which cuts them off.
        """
        tenant = normalize_tenant(tenant)
        for unsupported in ('storage_instances', 'restore_point'):
            if unsupported in body:
                raise Invalid('Changing %s is not supported by the '
                              'simulator' % unsupported)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            if 'name' in body and body['name'] != doc['name']:
                if db.execute('SELECT 1 FROM app_instances WHERE tenant=? '
                              'AND name=?',
                              (tenant, body['name'])).fetchone():
                    raise Conflict('App instance with name %s already exists'
                                   % body['name'])
                doc['name'] = body['name']
            state = body.get('admin_state')
            if state == 'offline' and doc['admin_state'] == 'online':
                if not body.get('force'):
                    busy = self._active_initiators(doc)
                    if busy:
                        raise Conflict(
                            'App instance %s has active initiators (%s); '
                            'use force to take it offline'
                            % (ai_id, ', '.join(sorted(busy))))
            if state:
                doc['admin_state'] = state
            self._save_ai(db, doc)
            self._sync_ai(db, doc)
            return self._render_ai(doc)

    def _active_initiators(self, doc):
        busy = set()
        for si in doc['storage_instances']:
            busy |= set(self.dataplane.exported_initiators(si['uuid']))
        return busy

    def force_offline(self, tenant, ai_id):
        """Take an app instance offline as an admin or another host would."""
        return self.update_app_instance(
            tenant, ai_id, {'admin_state': 'offline', 'force': True})

    def delete_app_instance(self, tenant, ai_id, force=False):
        """Delete an app instance; refused while online unless forced."""
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            if doc['admin_state'] == 'online' and not force:
                raise Conflict('App instance %s is online; take it offline '
                               'first or use force' % ai_id)
            rendered = self._render_ai(doc)
            db.execute('DELETE FROM app_instances WHERE id=?', (ai_id,))
            doc['admin_state'] = 'offline'
            self._sync_ai(db, doc)
            for si in doc['storage_instances']:
                for vol in si['volumes']:
                    self.dataplane.delete_volume(vol['uuid'])
                    for snap in vol.get('snapshots', []):
                        self.dataplane.delete_snapshot(snap['data_id'])
            rendered['admin_state'] = 'offline'
            return rendered

    # Storage instances and volumes

    def _load_ai_for_sub(self, db, tenant, ai_id, sub_path):
        """Load the parent of a sub-collection, NoData if missing."""
        try:
            return self._load_ai(db, tenant, ai_id)
        except NotFound:
            raise NoData(sub_path)

    def list_storage_instances(self, tenant, ai_id):
        tenant = normalize_tenant(tenant)
        doc = self._load_ai_for_sub(
            self._read(), tenant, ai_id,
            '/app_instances/%s/storage_instances' % ai_id)
        return [self._render_si(doc, si) for si in doc['storage_instances']]

    def get_storage_instance(self, tenant, ai_id, si_name):
        tenant = normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        return self._render_si(doc, self._find_si(doc, si_name))

    def update_storage_instance(self, tenant, ai_id, si_name, body):
        """Change an SI's ACL (full replace) or access control mode.

        The simulator keeps one admin state per app instance, has no CHAP
        and creates volumes only with their app instance: asking for those
        is Invalid rather than silently ignored.
        """
        tenant = normalize_tenant(tenant)
        if 'admin_state' in body:
            raise Invalid('Set admin_state on the app instance; the '
                          'simulator does not change it per storage '
                          'instance')
        if body.get('auth', {}).get('type', 'none') != 'none':
            raise Invalid('CHAP is not supported by the simulator')
        if 'volumes' in body:
            raise Invalid('Changing volumes through the storage instance '
                          'is not supported by the simulator')
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            if 'acl_policy' in body:
                self._replace_acl(db, tenant, si, body['acl_policy'])
            if 'access_control_mode' in body:
                si['access_control_mode'] = body['access_control_mode']
            if 'ip_pool' in body:
                si['ip_pool'] = body['ip_pool']['path']
            self._save_ai(db, doc)
            self._sync_ai(db, doc)
            return self._render_si(doc, si)

    def list_volumes(self, tenant, ai_id, si_name):
        tenant = normalize_tenant(tenant)
        sub = '/app_instances/%s/storage_instances/%s/volumes' % (ai_id,
                                                                  si_name)
        doc = self._load_ai_for_sub(self._read(), tenant, ai_id, sub)
        try:
            si = self._find_si(doc, si_name)
        except NotFound:
            raise NoData(sub)
        return [self._render_volume(doc, si, v) for v in si['volumes']]

    def get_volume(self, tenant, ai_id, si_name, vol_name):
        tenant = normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        si = self._find_si(doc, si_name)
        return self._render_volume(doc, si,
                                   self._find_volume(doc, si, vol_name))

    def update_volume(self, tenant, ai_id, si_name, vol_name, body):
        """Grow a volume (never shrink) or change its replica/placement.

        A grow leaves ``op_state`` at ``resizing`` for ``resize_seconds``.
        Reverting to a snapshot (``restore_point``) is Invalid rather than
        silently ignored: the simulator does not do it.
        """
        tenant = normalize_tenant(tenant)
        if 'restore_point' in body:
            raise Invalid('Restoring a volume to a snapshot is not '
                          'supported by the simulator')
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            if 'size' in body and body['size'] != vol['size']:
                size = whole_gib(body['size'])
                if size < vol['size']:
                    raise Invalid('Volume %s cannot shrink from %s GiB to %s '
                                  'GiB' % (vol_name, vol['size'], size))
                self._check_capacity(db, size - vol['size'])
                self.dataplane.grow_volume(vol['uuid'], size)
                vol['size'] = size
                vol['resize_until'] = self.clock() + self.resize_seconds
            for field in ('replica_count', 'placement_mode'):
                if field in body:
                    vol[field] = body[field]
            self._save_ai(db, doc)
            return self._render_volume(doc, si, vol)

    # Volume snapshots

    def _load_volume(self, db, tenant, ai_id, si_name, vol_name):
        doc = self._load_ai(db, tenant, ai_id)
        si = self._find_si(doc, si_name)
        return doc, si, self._find_volume(doc, si, vol_name)

    def create_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                               snapshot_uuid=None):
        """Freeze a copy of a volume's bytes now.

        The snapshot is named by its ``timestamp`` (unique per volume);
        it stays ``creating`` for ``snapshot_seconds``, then is
        ``available``. A ``snapshot_uuid`` already used on the volume is
        a Conflict.
        """
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            snapshots = vol.setdefault('snapshots', [])
            if snapshot_uuid and any(s['uuid'] == snapshot_uuid
                                     for s in snapshots):
                raise Conflict('Snapshot with uuid %s already exists'
                               % snapshot_uuid)
            now = self.clock()
            snap = dict(_snapshot_times(now, snapshots),
                        uuid=snapshot_uuid or str(uuid.uuid4()),
                        data_id=str(uuid.uuid4()), size=vol['size'],
                        ready_at=now + self.snapshot_seconds)
            snapshots.append(snap)
            self._save_ai(db, doc)
            self.dataplane.create_snapshot(snap['data_id'], vol['uuid'])
            return self._render_snapshot(doc, si, vol, snap)

    def list_volume_snapshots(self, tenant, ai_id, si_name, vol_name):
        tenant = normalize_tenant(tenant)
        sub = ('/app_instances/%s/storage_instances/%s/volumes/%s/snapshots'
               % (ai_id, si_name, vol_name))
        try:
            doc, si, vol = self._load_volume(self._read(), tenant, ai_id,
                                             si_name, vol_name)
        except NotFound:
            raise NoData(sub)
        return [self._render_snapshot(doc, si, vol, snap)
                for snap in vol.get('snapshots', [])]

    def get_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                            timestamp):
        tenant = normalize_tenant(tenant)
        doc, si, vol = self._load_volume(self._read(), tenant, ai_id,
                                         si_name, vol_name)
        snap = self._find_snapshot(doc, si, vol, timestamp)
        return self._render_snapshot(doc, si, vol, snap)

    def delete_volume_snapshot(self, tenant, ai_id, si_name, vol_name,
                               timestamp):
        """Delete a snapshot and its frozen copy; clones made of it stay."""
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc, si, vol = self._load_volume(db, tenant, ai_id, si_name,
                                             vol_name)
            snap = self._find_snapshot(doc, si, vol, timestamp)
            rendered = self._render_snapshot(doc, si, vol, snap)
            vol['snapshots'].remove(snap)
            self._save_ai(db, doc)
            self.dataplane.delete_snapshot(snap['data_id'])
            return rendered

    # ACLs

    def _check_acl_refs(self, db, tenant, acl):
        for kind, prefix in (('initiators', _INITIATOR_PREFIX),
                             ('initiator_groups', _GROUP_PREFIX)):
            for path in acl[kind]:
                if not path.startswith(prefix) or self._resolve(
                        db, tenant, path) is None:
                    raise Invalid('%s: no such %s' % (path, kind[:-1]))

    def _replace_acl(self, db, tenant, si, body):
        acl = {
            'initiators': _unique(p['path']
                                  for p in body.get('initiators', [])),
            'initiator_groups': _unique(
                p['path'] for p in body.get('initiator_groups', [])),
        }
        self._check_acl_refs(db, tenant, acl)
        si['acl'] = acl

    def get_acl_policy(self, tenant, ai_id, si_name):
        tenant = normalize_tenant(tenant)
        doc = self._load_ai(self._read(), tenant, ai_id)
        return self._render_acl(doc, self._find_si(doc, si_name))

    def set_acl_policy(self, tenant, ai_id, si_name, body):
        """Replace the SI's ACL lists that ``body`` gives (full replace)."""
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            merged = {
                'initiators': body.get('initiators', [
                    {'path': p} for p in si['acl']['initiators']]),
                'initiator_groups': body.get('initiator_groups', [
                    {'path': p} for p in si['acl']['initiator_groups']]),
            }
            self._replace_acl(db, tenant, si, merged)
            self._save_ai(db, doc)
            self._sync_si(db, doc, si)
            return self._render_acl(doc, si)

    def list_acl_members(self, tenant, ai_id, si_name, kind):
        """The initiators (or groups) in an SI's ACL, as full entities."""
        tenant = normalize_tenant(tenant)
        sub = ('/app_instances/%s/storage_instances/%s/acl_policy/%s'
               % (ai_id, si_name, kind))
        db = self._read()
        doc = self._load_ai_for_sub(db, tenant, ai_id, sub)
        try:
            si = self._find_si(doc, si_name)
        except NotFound:
            raise NoData(sub)
        result = []
        for path in si['acl'][kind]:
            found = self._resolve(db, tenant, path)
            if found is not None:
                result.append(self._render_ref(*found))
        return result

    def change_acl(self, tenant, ai_id, si_name, kind, op, path):
        """Add or remove one ACL entry atomically.

        :param kind: ``initiators`` or ``initiator_groups``.
        :returns: the initiator (or group) the path names.
        """
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            si = self._find_si(doc, si_name)
            found = self._resolve(db, tenant, path)
            prefix = (_INITIATOR_PREFIX if kind == 'initiators'
                      else _GROUP_PREFIX)
            if found is None or not path.startswith(prefix):
                raise Invalid('%s: no such %s' % (path, kind[:-1]))
            entries = si['acl'][kind]
            if op == 'add' and path not in entries:
                entries.append(path)
            elif op == 'remove' and path in entries:
                entries.remove(path)
            self._save_ai(db, doc)
            self._sync_si(db, doc, si)
            return self._render_ref(*found)

    # Initiators and initiator groups

    @staticmethod
    def _render_ref(kind, tenant, doc):
        if kind == 'initiator':
            return {
                'tenant': tenant,
                'path': _INITIATOR_PREFIX + doc['id'],
                'id': doc['id'],
                'name': doc['name'],
            }
        return {
            'tenant': tenant,
            'path': _GROUP_PREFIX + doc['name'],
            'name': doc['name'],
            'members': [{'path': p} for p in doc['members']],
        }

    def _referencing_sis(self, db, path):
        """(tenant, ai_id, si_name) of every SI whose ACL names path."""
        refs = []
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            doc = json.loads(row['doc'])
            for si in doc['storage_instances']:
                if (path in si['acl']['initiators'] or
                        path in si['acl']['initiator_groups']):
                    refs.append((doc['tenant'], doc['id'], si['name']))
        return refs

    def create_initiator(self, tenant, iqn, name, force=False):
        """Register a host's initiator in a tenant.

        An IQN already registered in the same tenant is a Conflict. One
        registered in another tenant is a Conflict too unless ``force``.
        """
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            if self._tenant_row(db, tenant) is None:
                raise NotFound('Tenant %s does not exist' % tenant)
            rows = db.execute('SELECT tenant FROM initiators WHERE id=?',
                              (iqn,)).fetchall()
            owners = [r['tenant'] for r in rows]
            if tenant in owners:
                raise Conflict('Initiator %s already exists' % iqn)
            if owners and not force:
                raise Conflict('Initiator %s already exists in another '
                               'tenant; use force to register it here' % iqn)
            doc = {'id': iqn, 'name': name}
            db.execute('INSERT INTO initiators VALUES (?, ?, ?, ?)',
                       (tenant, iqn, self._next_seq(db, 'initiators'),
                        json.dumps(doc)))
            return self._render_ref('initiator', tenant, doc)

    def get_initiator(self, tenant, iqn):
        """Look an initiator up in the tenant, then in its parents."""
        tenant = normalize_tenant(tenant)
        found = self._resolve(self._read(), tenant, _INITIATOR_PREFIX + iqn)
        if found is None:
            raise NotFound('Initiator %s does not exist' % iqn)
        return self._render_ref(*found)

    def list_initiators(self, tenant):
        tenant = normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM initiators WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ref('initiator', tenant, json.loads(r['doc']))
                for r in rows]

    def update_initiator(self, tenant, iqn, body):
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            row = db.execute('SELECT doc FROM initiators WHERE tenant=? AND '
                             'id=?', (tenant, iqn)).fetchone()
            if row is None:
                raise NotFound('Initiator %s does not exist' % iqn)
            doc = json.loads(row['doc'])
            if 'name' in body:
                doc['name'] = body['name']
            db.execute('UPDATE initiators SET doc=? WHERE tenant=? AND id=?',
                       (json.dumps(doc), tenant, iqn))
            return self._render_ref('initiator', tenant, doc)

    def delete_initiator(self, tenant, iqn):
        """Delete an initiator; Conflict while an ACL or group uses it."""
        tenant = normalize_tenant(tenant)
        path = _INITIATOR_PREFIX + iqn
        with self._write() as db:
            row = db.execute('SELECT doc FROM initiators WHERE tenant=? AND '
                             'id=?', (tenant, iqn)).fetchone()
            if row is None:
                raise NotFound('Initiator %s does not exist' % iqn)
            if self._referencing_sis(db, path):
                raise Conflict('Initiator %s is in use by an ACL policy'
                               % iqn)
            for group in db.execute('SELECT doc FROM initiator_groups'):
                if path in json.loads(group['doc'])['members']:
                    raise Conflict('Initiator %s is a member of an '
                                   'initiator group' % iqn)
            db.execute('DELETE FROM initiators WHERE tenant=? AND id=?',
                       (tenant, iqn))
            return self._render_ref('initiator', tenant,
                                    json.loads(row['doc']))

    def _load_group(self, db, tenant, name):
        row = db.execute('SELECT doc FROM initiator_groups WHERE tenant=? '
                         'AND name=?', (tenant, name)).fetchone()
        if row is None:
            raise NotFound('Initiator group %s does not exist' % name)
        return json.loads(row['doc'])

    def _save_group(self, db, tenant, doc):
        db.execute('UPDATE initiator_groups SET doc=? WHERE tenant=? AND '
                   'name=?', (json.dumps(doc), tenant, doc['name']))

    def _check_members(self, db, tenant, members):
        for path in members:
            found = (self._resolve(db, tenant, path)
                     if path.startswith(_INITIATOR_PREFIX) else None)
            if found is None:
                raise Invalid('%s: no such initiator' % path)

    def create_initiator_group(self, tenant, name, members=()):
        tenant = normalize_tenant(tenant)
        members = _unique(m['path'] for m in members)
        with self._write() as db:
            if self._tenant_row(db, tenant) is None:
                raise NotFound('Tenant %s does not exist' % tenant)
            if db.execute('SELECT 1 FROM initiator_groups WHERE tenant=? AND '
                          'name=?', (tenant, name)).fetchone():
                raise Conflict('Initiator group %s already exists' % name)
            self._check_members(db, tenant, members)
            doc = {'name': name, 'members': members}
            db.execute('INSERT INTO initiator_groups VALUES (?, ?, ?, ?)',
                       (tenant, name, self._next_seq(db, 'initiator_groups'),
                        json.dumps(doc)))
            return self._render_ref('initiator_group', tenant, doc)

    def get_initiator_group(self, tenant, name):
        tenant = normalize_tenant(tenant)
        found = self._resolve(self._read(), tenant, _GROUP_PREFIX + name)
        if found is None:
            raise NotFound('Initiator group %s does not exist' % name)
        return self._render_ref(*found)

    def list_initiator_groups(self, tenant):
        tenant = normalize_tenant(tenant)
        rows = self._read().execute(
            'SELECT doc FROM initiator_groups WHERE tenant=? ORDER BY seq',
            (tenant,)).fetchall()
        return [self._render_ref('initiator_group', tenant,
                                 json.loads(r['doc'])) for r in rows]

    def set_initiator_group_members(self, tenant, name, members):
        """Replace a group's members; exports follow."""
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            doc['members'] = _unique(m['path'] for m in members)
            self._check_members(db, tenant, doc['members'])
            self._save_group(db, tenant, doc)
            self._sync_all(db)
            return self._render_ref('initiator_group', tenant, doc)

    def change_initiator_group_members(self, tenant, name, op, path):
        """Add or remove one member atomically; exports follow.

        :returns: the initiator the path names.
        """
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            found = (self._resolve(db, tenant, path)
                     if path.startswith(_INITIATOR_PREFIX) else None)
            if found is None:
                raise Invalid('%s: no such initiator' % path)
            if op == 'add' and path not in doc['members']:
                doc['members'].append(path)
            elif op == 'remove' and path in doc['members']:
                doc['members'].remove(path)
            self._save_group(db, tenant, doc)
            self._sync_all(db)
            return self._render_ref(*found)

    def list_initiator_group_members(self, tenant, name):
        tenant = normalize_tenant(tenant)
        db = self._read()
        try:
            doc = self._load_group(db, tenant, name)
        except NotFound:
            raise NoData('/initiator_groups/%s/members' % name)
        result = []
        for path in doc['members']:
            found = self._resolve(db, tenant, path)
            if found is not None:
                result.append(self._render_ref(*found))
        return result

    def delete_initiator_group(self, tenant, name):
        """Delete a group; Conflict while an ACL uses it."""
        tenant = normalize_tenant(tenant)
        with self._write() as db:
            doc = self._load_group(db, tenant, name)
            if self._referencing_sis(db, _GROUP_PREFIX + name):
                raise Conflict('Initiator group %s is in use by an ACL '
                               'policy' % name)
            db.execute('DELETE FROM initiator_groups WHERE tenant=? AND '
                       'name=?', (tenant, name))
            return self._render_ref('initiator_group', tenant, doc)

    # Metadata

    def get_metadata(self, tenant, ai_id):
        """An app instance's metadata: a flat map of strings."""
        tenant = normalize_tenant(tenant)
        return dict(self._load_ai(self._read(), tenant, ai_id)['metadata'])

    def update_metadata(self, tenant, ai_id, values):
        """Merge ``values`` into the metadata; returns the whole map.

        Values are stored as strings; nested values are refused.
        """
        tenant = normalize_tenant(tenant)
        converted = {}
        for key, value in values.items():
            if isinstance(value, bool):
                converted[key] = 'true' if value else 'false'
            elif isinstance(value, (str, int, float)):
                converted[key] = str(value)
            else:
                raise Invalid('Metadata value for %r must be a string' % key)
        with self._write() as db:
            doc = self._load_ai(db, tenant, ai_id)
            doc['metadata'].update(converted)
            self._save_ai(db, doc)
            return dict(doc['metadata'])

    # Observation

    def snapshot(self):
        """Everything the simulator holds, as a JSON-able dictionary."""
        db = self._read()
        system = self.system()
        ais = []
        for row in db.execute('SELECT doc FROM app_instances ORDER BY seq'):
            doc = json.loads(row['doc'])
            sis = []
            for si in doc['storage_instances']:
                sis.append({
                    'name': si['name'],
                    'uuid': si['uuid'],
                    'iqn': si['iqn'],
                    'op_state': ('available'
                                 if doc['admin_state'] == 'online'
                                 else 'unavailable'),
                    'acl_policy': copy.deepcopy(si['acl']),
                    'exported_to': sorted(
                        self.dataplane.exported_initiators(si['uuid'])),
                    'volumes': [{
                        'name': v['name'],
                        'uuid': v['uuid'],
                        'size': v['size'],
                        'snapshots': [
                            {'timestamp': snap['timestamp'],
                             'uuid': snap['uuid'],
                             'data_id': snap['data_id']}
                            for snap in v.get('snapshots', [])],
                        'op_state': self._render_volume(doc, si,
                                                        v)['op_state'],
                    } for v in si['volumes']],
                })
            ais.append({
                'tenant': doc['tenant'],
                'id': doc['id'],
                'name': doc['name'],
                'admin_state': doc['admin_state'],
                'metadata': dict(doc['metadata']),
                'storage_instances': sis,
            })
        return {
            'system': {k: system[k] for k in ('name', 'uuid', 'sw_version',
                                              'total_capacity',
                                              'available_capacity')},
            'capacity_gib': self._setting(db, 'capacity_gib'),
            'tenants': [r['path'] for r in db.execute(
                'SELECT path FROM tenants ORDER BY seq')],
            'app_instances': ais,
            'initiators': [dict(json.loads(r['doc']), tenant=r['tenant'])
                           for r in db.execute(
                               'SELECT tenant, doc FROM initiators '
                               'ORDER BY seq')],
            'initiator_groups': [dict(json.loads(r['doc']),
                                      tenant=r['tenant'])
                                 for r in db.execute(
                                     'SELECT tenant, doc FROM '
                                     'initiator_groups ORDER BY seq')],
            'sessions': db.execute(
                'SELECT COUNT(*) AS n FROM sessions WHERE expires IS NULL '
                'OR expires > ?', (self.clock(),)).fetchone()['n'],
        }


def whole_gib(size):
    """A volume size as an integer number of GiB.

    JSON clients may send ``2.0`` for 2 (the API's schema types sizes as
    numbers); a fraction of a GiB is Invalid.
    """
    if isinstance(size, float):
        if not size.is_integer():
            raise Invalid('Volume size must be a whole number of GiB, not '
                          '%s' % size)
        return int(size)
    return size


def _clone_key(body):
    """Which clone source a create body names (None: a plain create)."""
    given = [key for key in CLONE_SOURCES if key in body]
    if len(given) > 1:
        raise Invalid('Only one of %s may be given' % ', '.join(given))
    if given and 'storage_instances' in body:
        raise Invalid('%s cannot be combined with storage_instances'
                      % given[0])
    return given[0] if given else None


def _snapshot_times(now, existing):
    """``timestamp`` and ``utc_ts`` of a snapshot taken at ``now``.

    The cluster writes microseconds padded to nanoseconds
    (``1575422318.143125000``); the timestamp names the snapshot in its
    path, so one taken within the same microsecond as another moves on
    by one.
    """
    taken = {snap['timestamp'] for snap in existing}
    micros = int(round(now * 1000000))
    while True:
        seconds, fraction = divmod(micros, 1000000)
        timestamp = '%d.%06d000' % (seconds, fraction)
        if timestamp not in taken:
            return {'timestamp': timestamp, 'utc_ts': str(seconds)}
        micros += 1


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _best_effort(func, *args):
    try:
        func(*args)
    except Exception:  # noqa: S110 - cleanup after an earlier failure
        pass
