"""``datera-glance-manage`` against the simulator, run as an operator runs
it: the installed console script reading a glance-api.conf.

Crash safety end to end: uploads (known and unknown size, GiB-scale
generated data) and a download are SIGKILLed half way in a child process;
the tool then finds what they left and removes it, and the store keeps
working for the same image ids.
"""

import configparser
import json
import os
import sqlite3
import subprocess
import sys
import uuid

from glance_store import multi_backend
from oslo_utils import units
import pytest

from tests.functional import conftest as fx
from tests.functional import test_store_recovery as recovery
from tests import sdk_helpers

BACKEND = fx.BACKEND
BLOCK = fx.IMAGE_CHUNK
MANAGE = os.path.join(os.path.dirname(sys.executable), 'datera-glance-manage')


def write_config(path, sim, legacy=False, **overrides):
    """A glance-api.conf with one Datera backend named ``fast``."""
    config = configparser.ConfigParser()
    options = {k: str(v) for k, v in fx.datera_options(
        sim, **overrides).items()}
    if legacy:
        config['glance_store'] = dict(options, stores='file,datera',
                                      default_store='datera')
    else:
        config['DEFAULT'] = {'enabled_backends': 'fast:datera,'
                                                 'other:file'}
        config['glance_store'] = {'default_backend': 'fast'}
        config[BACKEND] = options
    with open(path, 'w') as f:
        config.write(f)
    return path


def manage(config, *args, check=True):
    result = subprocess.run([MANAGE, '--config-file', config] + list(args),
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode:
        raise AssertionError('datera-glance-manage %s failed (%d):\n%s%s' % (
            ' '.join(args), result.returncode, result.stdout,
            result.stderr))
    return result


@pytest.fixture
def config(multi_store, tmp_path):
    return write_config(str(tmp_path / 'glance-api.conf'), multi_store)


def _add(image_id, image, size):
    return recovery._add(image_id, image, size)


def _killed_upload(sim, image_id, size, declare_size):
    recovery._run_until_halfway({
        'options': fx.datera_options(sim), 'backend': BACKEND,
        'image_id': image_id, 'action': 'upload', 'size': size,
        'declare_size': declare_size, 'halfway': size // 2})


def _killed_download(sim, image_id):
    """Store an image, kill a download of it half way; return its URI."""
    image = fx.PatternImage(6 * BLOCK)
    uri = _add(image_id, image, image.size)[0]
    recovery._run_until_halfway({
        'options': fx.datera_options(sim), 'backend': BACKEND,
        'image_id': image_id, 'action': 'download', 'uri': uri,
        'halfway': 3 * BLOCK})
    assert fx.acl_initiators(sim, image_id) != []
    return uri


def _loop_devices():
    """Loop devices backed by files (empty where there are none)."""
    if not os.path.isdir('/sys/block'):
        return set()
    found = set()
    for name in os.listdir('/sys/block'):
        backing = '/sys/block/%s/loop/backing_file' % name
        if os.path.exists(backing):
            with open(backing) as f:
                found.add((name, f.read().strip()))
    return found


def _volume_loops(sim, image_id):
    path = fx.backing_file(sim, image_id)
    return {d for d in _loop_devices() if d[1].startswith(path)}


@pytest.mark.parametrize('declare_size', [True, False],
                         ids=['known-size', 'unknown-size'])
def test_killed_upload_is_listed_purged_and_uploaded_again(
        multi_store, config, declare_size):
    sim = multi_store
    complete_id, killed_id = str(uuid.uuid4()), str(uuid.uuid4())
    complete = fx.PatternImage(2 * BLOCK + 7)
    _add(complete_id, complete, complete.size)
    size = 2 * units.Gi + 3 * BLOCK
    _killed_upload(sim, killed_id, size, declare_size)
    loops = _volume_loops(sim, killed_id)
    assert fx.acl_initiators(sim, killed_id) != []

    # (That the store does not serve it, and that the next operation of
    # a live process releases its export, test_store_recovery shows.)
    rows = {r['image_id']: r for r in json.loads(
        manage(config, 'list', '--format', 'json').stdout)}
    assert rows[complete_id]['state'] == 'complete'
    assert rows[complete_id]['size'] == complete.size
    assert rows[killed_id]['state'] == 'incomplete'
    assert rows[killed_id]['exported_to'] != []
    for key in ('image_id', 'state', 'size', 'checksum', 'created',
                'exported_to'):
        assert key in rows[killed_id]
    table = manage(config, 'list', '--state', 'incomplete').stdout
    assert killed_id in table and complete_id not in table

    dry = manage(config, 'purge', '--older-than', '0s').stdout
    assert 'Would remove %s' % killed_id in dry
    assert complete_id not in dry
    assert killed_id in fx.app_instances(sim), 'a dry run removes nothing'

    done = manage(config, 'purge', '--older-than', '0s', '--yes').stdout
    assert 'Removed %s' % killed_id in done
    assert killed_id not in fx.app_instances(sim)
    assert complete_id in fx.app_instances(sim)
    assert fx.exports(sim) == []
    assert not (_loop_devices() & loops), 'its loop device was left'

    image = fx.PatternImage(3 * BLOCK)
    _add(killed_id, image, image.size)
    chunks, got = multi_backend.get(recovery._uri(sim, killed_id), BACKEND)
    assert fx.assert_reads_back(image, chunks) == image.size


def test_purge_keeps_recent_incomplete_uploads(multi_store, config):
    sim = multi_store
    killed_id = str(uuid.uuid4())
    _killed_upload(sim, killed_id, 4 * BLOCK, True)
    out = manage(config, 'purge', '--older-than', '1h', '--yes').stdout
    assert 'Nothing to purge' in out
    assert killed_id in fx.app_instances(sim)


def test_killed_download_is_released_by_exports_cleanup(multi_store, config):
    sim = multi_store
    image_id = str(uuid.uuid4())
    _killed_download(sim, image_id)

    listed = manage(config, 'exports').stdout
    assert image_id in listed and 'held by no process' in listed
    cleaned = manage(config, 'exports', '--cleanup').stdout
    assert 'Released %s' % image_id in cleaned
    recovery._assert_idle(sim, image_id)
    assert 'No export' in manage(config, 'exports').stdout
    assert recovery._lock_files(image_id) == []


def test_next_operation_of_a_live_process_releases_a_killed_download(
        multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    uri = _killed_download(sim, image_id)
    # Any operation of this (live) process against the cluster.
    multi_backend.get_size_from_uri_and_backend(uri, BACKEND)
    recovery._assert_idle(sim, image_id)


def test_verify_passes_on_an_intact_image_and_fails_on_a_changed_one(
        multi_store, config):
    sim = multi_store
    intact, changed = str(uuid.uuid4()), str(uuid.uuid4())
    for image_id in (intact, changed):
        image = fx.PatternImage(3 * BLOCK + 11)
        _add(image_id, image, image.size)
    out = manage(config, 'verify', intact).stdout
    assert 'OK %s' % intact in out

    sim.corrupt(changed, BLOCK)
    result = manage(config, 'verify', '--all', check=False)
    assert result.returncode == 1
    assert 'OK %s' % intact in result.stdout
    assert 'FAILED %s' % changed in result.stdout
    assert changed in result.stderr.splitlines()[-1]
    assert 'Traceback' not in result.stderr
    recovery._assert_idle(sim, intact)


def test_purge_with_glance_db_removes_only_orphans(
        multi_store, config, tmp_path):
    sim = multi_store
    known, deleted, unknown = (str(uuid.uuid4()) for _ in range(3))
    for image_id in (known, deleted, unknown):
        image = fx.PatternImage(BLOCK)
        _add(image_id, image, image.size)
    db = str(tmp_path / 'glance.sqlite')
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE images (id VARCHAR(36) PRIMARY KEY, '
                     'status VARCHAR(30), deleted BOOLEAN)')
        conn.execute('INSERT INTO images VALUES (?, ?, ?)',
                     (known, 'active', False))
        conn.execute('INSERT INTO images VALUES (?, ?, ?)',
                     (deleted, 'deleted', True))
    url = 'sqlite:///' + db
    dry = manage(config, 'purge', '--glance-db', url).stdout
    assert 'Would remove %s' % deleted in dry
    assert 'Would remove %s' % unknown in dry
    assert known not in dry
    manage(config, 'purge', '--glance-db', url, '--yes')
    left = fx.app_instances(sim)
    assert known in left and deleted not in left and unknown not in left


def test_legacy_single_store_configuration_works(multi_store, tmp_path):
    sim = multi_store
    image_id = str(uuid.uuid4())
    _add(image_id, fx.PatternImage(BLOCK), BLOCK)
    config = write_config(str(tmp_path / 'legacy.conf'), sim, legacy=True)
    assert image_id in manage(config, 'list').stdout


@pytest.mark.parametrize('args,status,words', [
    (['--backend', 'other', 'list'], 2, 'not a Datera backend'),
    (['purge', '--older-than', 'soon'], 2, 'invalid duration'),
    (['verify'], 2, 'name images to verify'),
])
def test_bad_input_is_one_line_with_a_non_zero_exit(config, args, status,
                                                    words):
    result = manage(config, *args, check=False)
    assert result.returncode == status
    assert words in result.stderr
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_purge_never_removes_an_upload_a_live_process_writes(
        multi_store, config):
    sim = multi_store
    image_id = str(uuid.uuid4())
    writer = recovery._start_until_halfway({
        'options': fx.datera_options(sim), 'backend': BACKEND,
        'image_id': image_id, 'action': 'upload', 'size': 4 * BLOCK,
        'declare_size': False, 'halfway': 2 * BLOCK})
    try:
        out = manage(config, 'purge', '--older-than', '0s', '--yes').stdout
        assert 'Nothing to purge' in out
        assert image_id in fx.app_instances(sim)
        listed = manage(config, 'list', '--state', 'incomplete').stdout
        assert 'in progress' in listed
    finally:
        writer.kill()
        writer.communicate(timeout=30)


def test_purge_never_touches_other_tenants_or_other_names(
        multi_store, config, tmp_path):
    sim = multi_store
    foreign = str(uuid.uuid4())
    elsewhere = str(uuid.uuid4())
    api = sdk_helpers.make_api(sim)
    api.tenants.create(name='other')
    volume = {'name': 'volume-1', 'size': 1, 'replica_count': 1}
    api.app_instances.create(
        name='cinder-volume-%s' % foreign, uuid=foreign,
        create_mode='openstack', tenant='/root',
        storage_instances=[{'name': 'storage-1', 'volumes': [volume]}])
    api.app_instances.create(
        name='OS-IMAGE-%s' % elsewhere, uuid=elsewhere,
        create_mode='openstack', tenant='/root/other',
        storage_instances=[{'name': 'storage-1', 'volumes': [volume]}])
    db = str(tmp_path / 'empty.sqlite')
    with sqlite3.connect(db) as conn:
        conn.execute('CREATE TABLE images (id VARCHAR(36) PRIMARY KEY, '
                     'status VARCHAR(30), deleted BOOLEAN)')
    out = manage(config, 'purge', '--older-than', '0s', '--glance-db',
                 'sqlite:///' + db, '--yes').stdout
    assert 'Nothing to purge' in out
    left = {ai['id'] for ai in sim.state()['app_instances']}
    assert {foreign, elsewhere} <= left


def test_unreachable_cluster_is_one_line(multi_store, tmp_path):
    sim = multi_store
    config = write_config(str(tmp_path / 'down.conf'), sim)
    sim.stop()
    try:
        result = manage(config, 'list', check=False)
    finally:
        sim.start()
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('datera-glance-manage: ')
    assert '%s:%d' % (sim.host, sim.port) in last
    assert 'Traceback' not in result.stderr
