"""The store's failure paths against the simulator: releases that fail,
creates answered too late, uploads whose process was killed, deletes while
another host reads or writes, initiators removed behind the store's back,
glance's own input errors and corrupt volumes.

Each test proves one behaviour that an operator relies on: an image is
either completely stored or not at all, a transfer whose data is complete
never fails, another host is never cut off, and what a failure leaves is
removed by the store itself.
"""

import json
import os
import select
import signal
import subprocess
import sys
import threading
import uuid

from glance.common import exception as glance_exception
from glance.common import utils as glance_utils
from glance_store import exceptions
from glance_store import multi_backend
from oslo_config import cfg
import pytest

from datera_glance_dev import polling
from tests.functional import conftest as fx
from tests import sdk_helpers

BACKEND = fx.BACKEND
BLOCK = fx.IMAGE_CHUNK
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HOST1, HOST2 = fx.HOST1, fx.HOST2
IQN1, IQN2 = fx.IQN1, fx.IQN2
ACL_OP = r'/acl_policy/initiators$'


def _add(image_id, data, size, backend=BACKEND):
    return multi_backend.add_with_multihash(cfg.CONF, image_id, data, size,
                                            backend, 'sha256')


def _uri(sim, image_id):
    return 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        sim.host, sim.port, image_id)


def _store(backend=BACKEND):
    return multi_backend.get_store_from_store_identifier(backend)


def _lock_files(*image_ids, backend=BACKEND):
    """Lock and holders files of these images in the store's lock folder.

    The folder is this user's, shared with every other test.
    """
    folder = _store(backend).attacher.lock_path
    return sorted(f for f in os.listdir(folder)
                  if any(f.startswith('datera-attach-%s-' % i)
                         for i in image_ids))


def _assert_idle(sim, image_id):
    """Nobody's ACL entry, offline, not exported."""
    ai = fx.app_instances(sim)[image_id]
    assert fx.acl_initiators(sim, image_id) == []
    assert ai['admin_state'] == 'offline'
    assert fx.exports(sim) == []


# -- a transfer whose data is complete never fails because of cleanup -------

def test_read_whose_release_fails_completes_and_is_cleaned_up_later(
        multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(3 * BLOCK)
    uri = _add(image_id, image, image.size)[0]

    chunks, size = multi_backend.get(uri, BACKEND)
    first = next(chunks)
    # Every try of the release's ACL change fails (1 + retry_attempts).
    sim.fail_next('PUT', ACL_OP, count=10, kind='500')
    rest = list(chunks)
    assert fx.assert_reads_back(image, [first] + rest) == size

    # This host is still in the ACL: the release could not finish...
    assert fx.acl_initiators(sim, image_id) != []
    sim.clear_faults()
    # ... until this host's next operation against the cluster.
    assert multi_backend.get_size_from_uri_and_backend(uri, BACKEND) == size
    _assert_idle(sim, image_id)
    assert _lock_files(image_id) == []


# -- after any failed upload, the same image id uploads again --------------

def test_create_answered_too_late_does_not_block_a_new_upload(
        multi_store, glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim,
                           datera_operation_max_timeout=2)
    image_id = str(uuid.uuid4())
    sim.add_latency(3, 'POST', r'/app_instances$')
    with pytest.raises(exceptions.BackendException) as caught:
        _add(image_id, fx.PatternImage(BLOCK), BLOCK)
    assert image_id in str(caught.value)
    # The cluster carries the create out after the store gave up on it.
    polling.wait_for(lambda: image_id in fx.app_instances(sim), 30,
                     message='the late create')
    sim.clear_faults()

    image = fx.PatternImage(2 * BLOCK)
    uri = _add(image_id, image, image.size)[0]
    chunks, size = multi_backend.get(uri, BACKEND)
    assert fx.assert_reads_back(image, chunks) == image.size


def _start_until_halfway(spec, timeout=120):
    """Start a crash_child and wait until it is half way; return it."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, '-m', 'tests.functional.crash_child',
         json.dumps(spec)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode().strip() if ready else ''
    if line != 'HALFWAY':
        proc.kill()
        raise AssertionError('child did not get half way (%r): %s' % (
            line, proc.communicate(timeout=30)[1].decode()[-3000:]))
    return proc


def _run_until_halfway(spec, timeout=120):
    """Start a crash_child, wait until it is half way, SIGKILL it."""
    proc = _start_until_halfway(spec, timeout)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    return proc


@pytest.mark.parametrize('declare_size', [True, False],
                         ids=['known-size', 'unknown-size'])
def test_upload_of_a_killed_process_does_not_block_a_new_upload(
        multi_store, declare_size):
    sim = multi_store
    image_id = str(uuid.uuid4())
    size = 6 * BLOCK
    _run_until_halfway({
        'options': fx.datera_options(sim), 'backend': BACKEND,
        'image_id': image_id, 'action': 'upload', 'size': size,
        'declare_size': declare_size, 'halfway': 3 * BLOCK})
    assert image_id in fx.app_instances(sim)

    # The half-written image is not served, and says why.
    uri = _uri(sim, image_id)
    with pytest.raises(exceptions.NotFound) as caught:
        multi_backend.get_size_from_uri_and_backend(uri, BACKEND)
    assert image_id in str(caught.value)
    assert 'incomplete upload' in str(caught.value)
    with pytest.raises(exceptions.NotFound) as caught:
        multi_backend.get(uri, BACKEND)
    assert 'incomplete upload' in str(caught.value)
    # Those operations released what the killed process held here.
    assert fx.acl_initiators(sim, image_id) == []
    assert fx.exports(sim) == []

    # glance lets the user upload it again: that works at once.
    image = fx.PatternImage(size)
    _add(image_id, image, size if declare_size else 0)
    chunks, got = multi_backend.get(uri, BACKEND)
    assert fx.assert_reads_back(image, chunks) == size
    _assert_idle(sim, image_id)
    assert _lock_files(image_id) == []


def test_live_upload_on_another_host_is_never_replaced(two_hosts):
    image_id = str(uuid.uuid4())
    refused = []

    def upload_again_from_host2():
        with pytest.raises(exceptions.Duplicate) as caught:
            _add(image_id, fx.PatternImage(BLOCK), BLOCK, HOST2)
        refused.append(str(caught.value))

    image = ArmedSource(3 * BLOCK, after=BLOCK,
                        action=upload_again_from_host2)
    uri = _add(image_id, image, image.size, HOST1)[0]
    assert len(refused) == 1 and 'writing' in refused[0], refused
    chunks, size = multi_backend.get(uri, HOST2)
    assert fx.assert_reads_back(image, chunks) == image.size
    assert image_id in fx.app_instances(two_hosts)


ArmedSource = fx.ArmedSource


# -- delete never cuts off another host's transfer ---------------------------

def test_delete_while_another_host_reads_lets_that_read_finish(two_hosts):
    sim = two_hosts
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(4 * BLOCK)
    uri = _add(image_id, image, image.size, HOST1)[0]

    chunks, size = multi_backend.get(uri, HOST2)
    first = next(chunks)
    multi_backend.delete(uri, HOST1)

    # Gone at once for new reads, on either host...
    for backend in (HOST1, HOST2):
        with pytest.raises(exceptions.NotFound) as caught:
            multi_backend.get(uri, backend)
        assert 'being deleted' in str(caught.value)
    # ... while the read in flight goes on, attached and intact.
    assert fx.acl_initiators(sim, image_id) == ['/initiators/' + IQN2]
    assert fx.assert_reads_back(image, [first] + list(chunks)) == size
    # Its release removed the app instance.
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []


def test_delete_while_another_host_uploads_fails_that_upload_cleanly(
        two_hosts):
    sim = two_hosts
    image_id = str(uuid.uuid4())
    uri = _uri(sim, image_id)

    image = ArmedSource(3 * BLOCK, after=BLOCK,
                        action=lambda: multi_backend.delete(uri, HOST1))
    with pytest.raises(exceptions.NotFound) as caught:
        _add(image_id, image, image.size, HOST2)
    assert 'deleted while it was being uploaded' in str(caught.value)
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []


def test_two_hosts_reading_and_releasing_at_once_never_fail(two_hosts):
    sim = two_hosts
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(BLOCK + 1)
    uri = _add(image_id, image, image.size, HOST1)[0]
    errors = []

    def reads(backend):
        try:
            for _ in range(15):
                chunks, size = multi_backend.get(uri, backend)
                assert fx.assert_reads_back(image, chunks) == size
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reads, args=(b,))
               for b in (HOST1, HOST2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    _assert_idle(sim, image_id)


# -- the cluster changed behind the store's back -----------------------------

def test_initiator_removed_on_the_cluster_is_registered_again(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(BLOCK)
    uri = _add(image_id, image, image.size)[0]
    iqn = _store().attacher.initiator_iqn

    api = sdk_helpers.make_api(sim)
    api.initiators.get(iqn).delete(tenant='/root')

    chunks, size = multi_backend.get(uri, BACKEND)
    assert fx.assert_reads_back(image, chunks) == size
    assert iqn in [i['id'] for i in api.initiators.list()]


@pytest.mark.parametrize('digests', [True, False],
                         ids=['chunk digests', 'md5 only'])
def test_full_read_of_a_changed_volume_never_delivers_every_byte(
        multi_store, digests):
    sim = multi_store
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(3 * BLOCK)
    uri = _add(image_id, image, image.size)[0]
    if not digests:
        # as an image uploaded before chunk digests were recorded
        _store().client.set_image_metadata(image_id, {'chunk_digests': ''})
    sim.corrupt(image_id, BLOCK + 5)

    chunks, size = multi_backend.get(uri, BACKEND)
    delivered = 0
    with pytest.raises(exceptions.BackendException) as caught:
        for chunk in chunks:
            delivered += len(chunk)
    assert image_id in str(caught.value)
    if digests:
        # nothing of the changed chunk left the store
        assert 'does not match the digest' in str(caught.value)
        assert delivered <= BLOCK
    else:
        assert 'Checksum mismatch' in str(caught.value)
        assert delivered < size
    _assert_idle(sim, image_id)


# -- glance's own input errors reach glance unchanged -------------------------

@pytest.mark.parametrize('declared', [0, 4 * BLOCK])
def test_glance_size_limit_error_passes_through_add(multi_store, declared):
    sim = multi_store
    image_id = str(uuid.uuid4())
    limited = glance_utils.LimitingReader(
        fx.PatternImage(4 * BLOCK), 2 * BLOCK + 1)
    with pytest.raises(glance_exception.ImageSizeLimitExceeded):
        _add(image_id, limited, declared)
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []


def test_lock_files_do_not_accumulate(multi_store):
    image_ids = [str(uuid.uuid4()) for _ in range(3)]
    for image_id in image_ids:
        image = fx.PatternImage(BLOCK)
        uri = _add(image_id, image, image.size)[0]
        chunks, _size = multi_backend.get(uri, BACKEND)
        list(chunks)
        multi_backend.delete(uri, BACKEND)
    assert _lock_files(*image_ids) == []
