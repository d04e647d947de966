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

"""The model's core: its settings, its SQLite database and its lock.

Everything the model holds lives in SQLite inside the data directory
(:data:`DB_NAME`): a new model over the same directory sees everything an
earlier one stored, and several threads (or processes) may use one data
directory at once.
"""

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid

from datera_edf_sim import defaults

DB_NAME = 'control-plane.sqlite3'

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


class ModelCore(object):
    """Settings, database and lock of the model; see :class:`Model`.

    The parts of the model keep their state through these:
    ``self._write()`` opens a write transaction (under the model-wide
    lock, joining the caller's if there is one), ``self._read()`` gives
    a connection to read with, ``self._setting()`` and
    ``self._next_seq()`` read the settings and the insertion order;
    the data plane is ``self.dataplane``, the time ``self.clock()``.
    """

    def __init__(self, data_dir, dataplane=None, clock=time.time,
                 username=defaults.USERNAME, password=defaults.PASSWORD,
                 sw_version=defaults.SW_VERSION, key_ttl=defaults.KEY_TTL,
                 resize_seconds=defaults.RESIZE_SECONDS,
                 data_ips=defaults.DATA_IPS, system_name=defaults.SYSTEM_NAME,
                 snapshot_seconds=defaults.SNAPSHOT_SECONDS):
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
                                  (defaults.ROOT_TENANT,)).fetchone():
                    db.execute('INSERT INTO tenants VALUES (?, ?, ?, ?)',
                               (defaults.ROOT_TENANT, 'root', '', 0))
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


def unique(items):
    """The items as a list, in order, each once."""
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
