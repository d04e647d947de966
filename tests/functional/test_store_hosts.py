"""Several glance-api hosts and concurrent requests against one cluster.

Two multi-store backends point at the same simulator with different
``datera_initiator_name``: two Store instances acting as two hosts.
"""

import concurrent.futures
import io
import os
import threading
import uuid

from glance_store import multi_backend
from oslo_config import cfg
from tests.functional import conftest as fx

HOST1, HOST2 = fx.HOST1, fx.HOST2
IQN1, IQN2 = fx.IQN1, fx.IQN2
BLOCK = fx.IMAGE_CHUNK


def _add(image_id, data, size, backend):
    return multi_backend.add_with_multihash(cfg.CONF, image_id, data, size,
                                            backend, 'sha256')


def test_two_hosts_read_the_same_image_at_once(two_hosts):
    sim = two_hosts
    image_id = str(uuid.uuid4())
    image = fx.PatternImage(4 * BLOCK)
    uri = _add(image_id, image, image.size, HOST1)[0]

    both_reading = threading.Barrier(2, timeout=30)
    seen = {}

    def read(backend):
        try:
            chunks, size = multi_backend.get(uri, backend)
            first = next(chunks)
            # Both hosts are attached here; neither may cut the other off.
            both_reading.wait()
            if backend == HOST1:
                seen['acl'] = sorted(fx.acl_initiators(sim, image_id))
            both_reading.wait()
            return fx.sha256_of(_prepend(first, chunks))
        except Exception:
            both_reading.abort()
            raise

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(read, [HOST1, HOST2]))

    assert results == [(image.sha256, image.size)] * 2
    assert seen['acl'] == ['/initiators/' + IQN1, '/initiators/' + IQN2]
    assert fx.exports(sim) == []
    assert fx.acl_initiators(sim, image_id) == []


def _prepend(first, chunks):
    yield first
    yield from chunks


def test_concurrent_uploads_of_different_images(two_hosts):
    sim = two_hosts
    jobs = [(str(uuid.uuid4()), fx.PatternImage(2 * BLOCK + n), backend)
            for n, backend in enumerate([HOST1, HOST2, HOST1, HOST2])]

    def upload(job):
        image_id, image, backend = job
        return _add(image_id, image, image.size, backend)

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(upload, jobs))

    for (image_id, image, backend), (uri, size, _, sha, meta) in zip(
            jobs, results):
        assert (size, sha, meta) == (image.size, image.sha256,
                                     {'store': backend})
        chunks, _ = multi_backend.get(uri, backend)
        assert fx.sha256_of(chunks) == (image.sha256, image.size)
    assert set(fx.app_instances(sim)) == {job[0] for job in jobs}
    assert fx.exports(sim) == []


def test_concurrent_reads_of_one_image_on_one_host(two_hosts):
    sim = two_hosts
    image_id = str(uuid.uuid4())
    data = os.urandom(3 * BLOCK)
    uri = _add(image_id, io.BytesIO(data), len(data), HOST1)[0]

    def read(offset):
        chunks, _ = multi_backend.get(uri, HOST1, offset=offset)
        return b''.join(chunks)

    offsets = [0, 1, BLOCK, 2 * BLOCK + 3]
    with concurrent.futures.ThreadPoolExecutor(len(offsets)) as pool:
        results = list(pool.map(read, offsets))
    assert results == [data[o:] for o in offsets]
    assert fx.exports(sim) == []
