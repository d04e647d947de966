"""The number of REST calls an add, a get, a get_size and a delete make
does not grow with the image: the data moves over the attachment, the
image is addressed by id, and nothing is listed or searched.
"""

import collections
import io
import uuid

from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units

from tests.functional import conftest as fx

BACKEND = fx.BACKEND
BLOCK = fx.IMAGE_CHUNK


def _calls(sim, action):
    sim.clear_requests()
    result = action()
    requests = sim.requests()
    return result, collections.Counter(
        (r['method'], _shape(r['path'])) for r in requests)


def _shape(path):
    # The image id differs between images; the rest of the path must not.
    parts = path.split('?')[0].split('/')
    return '/'.join('<id>' if len(p) == 36 and p.count('-') == 4 else p
                    for p in parts)


def _operations(sim, image_id, image, size):
    def add():
        return multi_backend.add_with_multihash(
            cfg.CONF, image_id, image, size, BACKEND, 'sha256')

    (uri, _, _, _, _), add_calls = _calls(sim, add)
    _, size_calls = _calls(
        sim, lambda: multi_backend.get_size_from_uri_and_backend(
            uri, BACKEND))

    def read_all():
        chunks, _ = multi_backend.get(uri, BACKEND)
        return fx.assert_reads_back(image, chunks)

    got, get_calls = _calls(sim, read_all)
    assert got == size
    _, delete_calls = _calls(sim, lambda: multi_backend.delete(uri,
                                                               BACKEND))
    return add_calls, size_calls, get_calls, delete_calls


def test_rest_calls_do_not_grow_with_the_image(multi_store, glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True)
    # Warm up: login, tenant and this host's initiator are set up once
    # per store, not per image.
    multi_backend.add_with_multihash(cfg.CONF, str(uuid.uuid4()),
                                     io.BytesIO(b'warm'), 4, BACKEND,
                                     'sha256')

    small = fx.PatternImage(units.Mi)
    big_size = 2 * units.Gi
    big = fx.PatternImage(big_size, zero_blocks=range(
        1, big_size // BLOCK - 1), track=False)
    small_calls = _operations(sim, str(uuid.uuid4()), small, small.size)
    big_calls = _operations(sim, str(uuid.uuid4()), big, big.size)

    assert small_calls == big_calls
    add, size, get, delete = small_calls
    # Nothing is listed or searched by name, ever.
    for counter in small_calls:
        assert all(path.endswith(('/app_instances', '<id>', 'metadata',
                                  'int_ecosystem_data', 'storage-1',
                                  'initiators', 'volume-1'))
                   for _, path in counter), counter
    # get_size reads the metadata only; delete marks the image deleted,
    # checks that no host uses it, takes it offline and deletes it.
    assert sum(size.values()) == 1
    assert sum(delete.values()) == 4
    # Upper bounds that keep an eye on regressions.
    assert sum(add.values()) <= 12
    # (the release reads the metadata: was the image deleted meanwhile?)
    assert sum(get.values()) <= 9
