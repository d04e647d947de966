"""The Datera store as a multi-store backend, through glance_store's public
API (glance_store.multi_backend), against the simulator.

Large images are mostly zeros with thin provisioning on, so that what is
written stays small while sizes, boundaries and hashes are exercised in
full; random blocks sit where boundaries are (start, around each GiB, the
last byte).
"""

import base64
import hashlib
import io
import os
import uuid

from glance_store import exceptions
from glance_store import location
from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units
import pytest

from datera_edf_sim import fixture as sim_fixture
from tests.conftest import can_use_block_devices
from tests.functional import conftest as fx

BACKEND = fx.BACKEND
MiB = units.Mi
GiB = units.Gi
BLOCK = fx.IMAGE_CHUNK


def _add(image_id, data, size, backend=BACKEND, algo='sha512'):
    return multi_backend.add_with_multihash(cfg.CONF, image_id, data, size,
                                            backend, algo)


def _read(uri, backend=BACKEND, **kwargs):
    chunks, size = multi_backend.get(uri, backend, **kwargs)
    return b''.join(chunks), size


def _sparse_image(size, random_at=()):
    """Zero blocks except the first, the last and those at ``random_at``."""
    nblocks = -(-size // BLOCK)
    keep = {0, nblocks - 1} | {offset // BLOCK for offset in random_at}
    return fx.PatternImage(size, zero_blocks=set(range(nblocks)) - keep,
                           track=False)


def _volume_gib(sim, image_id):
    ai = fx.app_instances(sim)[image_id]
    return ai['storage_instances'][0]['volumes'][0]['size']


def _grows(sim, image_id):
    return [r for r in sim.requests()
            if r['method'] == 'PUT' and
            r['path'].endswith('/app_instances/%s/storage_instances/'
                               'storage-1/volumes/volume-1' % image_id)]


def _assert_nothing_left(sim, image_id):
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []


def test_a_few_bytes_round_trip(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    data = b'a few bytes'
    uri, size, md5, multihash, meta = _add(image_id, io.BytesIO(data),
                                           len(data))
    assert uri == 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        sim.host, sim.port, image_id)
    assert size == len(data)
    assert md5 == hashlib.md5(data).hexdigest()
    assert multihash == hashlib.sha512(data).hexdigest()
    assert meta == {'store': BACKEND}

    loc = location.get_location_from_uri_and_backend(uri, BACKEND)
    assert loc.store_location.image_id == image_id
    assert _read(uri) == (data, len(data))
    assert multi_backend.get_size_from_uri_and_backend(uri, BACKEND) == 11

    ai = fx.app_instances(sim)[image_id]
    assert ai['name'] == 'OS-IMAGE-' + image_id
    metadata = {k: v for k, v in ai['metadata'].items()
                if not k.startswith('upload_')}
    assert metadata == {
        'checksum': md5, 'length': '11', 'type': 'image',
        'multihash': multihash, 'hash_algo': 'sha512',
        'chunk_digests': 'sha256-64:%d:%s' % (
            8 * units.Mi, base64.b64encode(
                hashlib.sha256(data).digest()[:8]).decode())}
    assert ai['metadata']['upload_state'] == 'complete'
    assert _volume_gib(sim, image_id) == 1
    assert fx.exports(sim) == []

    multi_backend.delete(uri, BACKEND)
    _assert_nothing_left(sim, image_id)


def test_zeros_are_written_without_thin_provisioning(multi_store):
    image_id = str(uuid.uuid4())
    size = 3 * BLOCK + 12345
    image = fx.PatternImage(size, zero_blocks={1})
    uri, written, _, _, _ = _add(image_id, image, size)
    assert written == size
    assert fx.allocated_bytes(multi_store, image_id) >= size
    chunks, got = multi_backend.get(uri, BACKEND)
    assert fx.sha256_of(chunks) == (image.sha256, size)


def test_thin_provisioning_does_not_write_zero_blocks(multi_store,
                                                      glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True)
    image_id = str(uuid.uuid4())
    size = 4 * BLOCK + 12345
    image = fx.PatternImage(size, zero_blocks={1, 2})
    uri, written, _, _, _ = _add(image_id, image, size)
    assert written == size
    # Two of the five blocks were zeros and never reached the volume
    # (allowing for the file system's block rounding).
    assert fx.allocated_bytes(sim, image_id) <= size - 2 * BLOCK + 65536
    chunks, got = multi_backend.get(uri, BACKEND)
    assert fx.sha256_of(chunks) == (image.sha256, size)


@pytest.mark.parametrize('size,volume_gib', [
    (GiB, 1),
    (GiB + 1, 2),
], ids=['exactly-1GiB', '1GiB-plus-1-byte'])
def test_gib_boundaries(multi_store, glance_conf, size, volume_gib):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True)
    image_id = str(uuid.uuid4())
    image = _sparse_image(size, random_at=[GiB - 1, GiB])
    uri, written, _, _, _ = _add(image_id, image, size, algo='sha256')
    assert written == size
    assert _volume_gib(sim, image_id) == volume_gib
    assert _grows(sim, image_id) == []

    assert multi_backend.get_size_from_uri_and_backend(uri, BACKEND) == size
    chunks, got = multi_backend.get(uri, BACKEND)
    assert got == size
    assert fx.assert_reads_back(image, chunks) == size
    # The last bytes, across the GiB boundary.
    tail, n = _read(uri, offset=GiB - 3, chunk_size=10)
    assert n == min(10, size - (GiB - 3))
    assert tail == image.bytes_at(GiB - 3, n)


def test_unknown_size_grows_the_volume_while_attached(multi_store,
                                                      glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True,
                           datera_default_image_size=1)
    image_id = str(uuid.uuid4())
    size = 4 * GiB + 1
    image = _sparse_image(size, random_at=[GiB, 2 * GiB, 4 * GiB - 1])
    sim.clear_requests()
    uri, written, _, _, _ = _add(image_id, image, 0, algo='sha256')
    assert written == size
    # 1 -> 2 -> 4 -> 8 GiB: three grows, all within one attachment.
    assert len(_grows(sim, image_id)) == 3
    assert _volume_gib(sim, image_id) == 8
    exports_made = [r for r in sim.requests()
                    if r['method'] == 'PUT' and
                    r['path'].endswith('/acl_policy/initiators')]
    assert len(exports_made) == 2      # one add, one remove
    assert fx.app_instances(sim)[image_id]['metadata']['length'] == str(size)

    chunks, got = multi_backend.get(uri, BACKEND)
    assert got == size
    assert fx.assert_reads_back(image, chunks) == size


def test_partial_reads_at_odd_offsets(multi_store):
    image_id = str(uuid.uuid4())
    data = os.urandom(2 * BLOCK + 4097)
    uri = _add(image_id, io.BytesIO(data), len(data))[0]
    for offset, length in [(1, 1), (4095, 8193), (BLOCK - 7, BLOCK + 13),
                           (len(data) - 5, 100), (12345, None),
                           (len(data), 10)]:
        got, n = _read(uri, offset=offset, chunk_size=length)
        expected = data[offset:None if length is None else offset + length]
        assert got == expected
        assert n == len(expected)
    assert fx.exports(multi_store) == []


def test_duplicate_is_refused_and_keeps_the_image(multi_store):
    image_id = str(uuid.uuid4())
    uri = _add(image_id, io.BytesIO(b'first'), 5)[0]
    with pytest.raises(exceptions.Duplicate):
        _add(image_id, io.BytesIO(b'second'), 6)
    assert _read(uri) == (b'first', 5)


def test_missing_image_is_not_found(multi_store):
    uri = 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        multi_store.host, multi_store.port, uuid.uuid4())
    with pytest.raises(exceptions.NotFound):
        multi_backend.get(uri, BACKEND)
    with pytest.raises(exceptions.NotFound):
        multi_backend.get_size_from_uri_and_backend(uri, BACKEND)
    with pytest.raises(exceptions.NotFound):
        multi_backend.delete(uri, BACKEND)


@pytest.mark.parametrize('declared,actual', [(100, 99), (100, 101)],
                         ids=['too-few-bytes', 'too-many-bytes'])
def test_size_mismatch_is_invalid_and_leaves_nothing(multi_store, declared,
                                                     actual):
    image_id = str(uuid.uuid4())
    with pytest.raises(exceptions.Invalid):
        _add(image_id, io.BytesIO(os.urandom(actual)), declared)
    _assert_nothing_left(multi_store, image_id)


def test_abandoned_read_iterator_leaves_no_export(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    uri = _add(image_id, fx.PatternImage(3 * BLOCK), 3 * BLOCK)[0]
    chunks, _ = multi_backend.get(uri, BACKEND)
    next(chunks)
    assert fx.exports(sim)                    # attached while reading
    chunks.close()                            # the client went away
    assert fx.exports(sim) == []
    assert fx.acl_initiators(sim, image_id) == []

    chunks, _ = multi_backend.get(uri, BACKEND)
    del chunks                                # never iterated
    assert fx.exports(sim) == []


def test_corrupted_volume_fails_the_full_read(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    uri = _add(image_id, io.BytesIO(b'x' * 4096), 4096)[0]
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    with store.attacher.attached(image_id) as attachment:
        with attachment.open('r+b') as device:
            device.write(b'y')
            device.flush()
            os.fsync(device.fileno())
    # One chunk, held back until checked: get() itself fails.
    with pytest.raises(exceptions.BackendException) as exc:
        chunks, _ = multi_backend.get(uri, BACKEND)
        fx.sha256_of(chunks)
    assert image_id in str(exc.value)
    assert fx.exports(sim) == []


def test_backend_description_weight_and_lookup_without_backend(
        edf_sim, glance_conf, privsep_in_process):
    fx.configure_multi_store(glance_conf, {
        'slow': fx.datera_options(edf_sim, store_description='Datera HDD',
                                  weight=5),
        BACKEND: fx.datera_options(edf_sim, weight=10),
    })
    assert multi_backend.get_store_weight('slow') == 5
    assert multi_backend.get_store_weight(BACKEND) == 10
    assert glance_conf.slow.store_description == 'Datera HDD'

    image_id = str(uuid.uuid4())
    uri, _, _, _, meta = _add(image_id, io.BytesIO(b'abc'), 3,
                              backend='slow')
    assert meta == {'store': 'slow'}
    # glance falls back to searching every backend when an image's
    # location lost its store name.
    assert _read(uri, backend=None) == (b'abc', 3)
    multi_backend.delete(uri, None)
    assert image_id not in fx.app_instances(edf_sim)


def test_images_live_in_the_configured_tenant(multi_store, glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_tenant_id='glance')
    image_id = str(uuid.uuid4())
    uri = _add(image_id, io.BytesIO(b'tenant data'), 11)[0]
    assert fx.app_instances(sim)[image_id]['tenant'] == '/root/glance'
    assert _read(uri) == (b'tenant data', 11)
    multi_backend.delete(uri, BACKEND)
    assert image_id not in fx.app_instances(sim)


@pytest.fixture
def ipv6_store(tmp_path, glance_conf, privsep_in_process):
    """The store against a simulator whose data addresses are IPv6."""
    with sim_fixture.running_simulator(
            str(tmp_path / 'edf-sim'), block_devices=can_use_block_devices(),
            data_ips='fd00::1,fd00::2') as sim:
        assert fx.configure_multi_store(
            glance_conf, {BACKEND: fx.datera_options(sim)}) == 1
        yield sim


def test_an_image_round_trips_over_ipv6_data_addresses(ipv6_store):
    sim = ipv6_store
    image_id = str(uuid.uuid4())
    data = os.urandom(BLOCK + 77)
    uri = _add(image_id, io.BytesIO(data), len(data))[0]
    chunks, size = multi_backend.get(uri, BACKEND)
    # attached now: the export links are named as udev and os-brick name
    # them, brackets and all, and the store found its device there
    links = sorted(os.path.basename(p) for p in fx.exports(sim))
    assert [link.split('-iscsi-')[0] for link in links] == [
        'ip-[fd00::1]:3260', 'ip-[fd00::2]:3260']
    assert b''.join(chunks) == data
    multi_backend.delete(uri, BACKEND)
    assert fx.exports(sim) == []
