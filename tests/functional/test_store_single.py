"""The Datera store as the legacy single store, configured exactly as the
original driver's install guide said (``[glance_store] stores = datera``,
``default_store = datera``, options in ``[glance_store]``), with no change
to glance_store, through glance_store.backend's public API.
"""

import hashlib
import io
import os
import uuid

from glance_store import backend
from glance_store import exceptions
from glance_store import location
from oslo_config import cfg
import pytest

from tests.functional import conftest as fx

BLOCK = fx.IMAGE_CHUNK


def test_default_store_is_datera(single_store):
    assert cfg.CONF.glance_store.default_store == 'datera'
    assert 'datera' in backend.get_known_schemes()


def test_round_trip_through_the_default_store(single_store):
    sim = single_store
    image_id = str(uuid.uuid4())
    data = os.urandom(BLOCK + 4321)
    uri, size, md5, multihash, meta = backend.add_to_backend_with_multihash(
        cfg.CONF, image_id, io.BytesIO(data), len(data), 'sha512')
    assert uri == 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        sim.host, sim.port, image_id)
    assert (size, md5, multihash, meta) == (
        len(data), hashlib.md5(data).hexdigest(),
        hashlib.sha512(data).hexdigest(), {})

    loc = location.get_location_from_uri(uri)
    assert loc.store_name == 'datera'
    assert loc.store_location.image_id == image_id
    assert backend.get_store_from_location(uri) == 'datera'

    chunks, got = backend.get_from_backend(uri)
    assert (b''.join(chunks), got) == (data, len(data))
    chunks, got = backend.get_from_backend(uri, offset=4097,
                                           chunk_size=BLOCK)
    assert (b''.join(chunks), got) == (data[4097:4097 + BLOCK], BLOCK)
    assert backend.get_size_from_backend(uri) == len(data)

    backend.delete_from_backend(uri)
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []
    with pytest.raises(exceptions.NotFound):
        backend.get_from_backend(uri)
    with pytest.raises(exceptions.NotFound):
        backend.get_size_from_backend(uri)
    with pytest.raises(exceptions.NotFound):
        backend.delete_from_backend(uri)


def test_pre_multihash_callers_get_the_four_tuple(single_store):
    image_id = str(uuid.uuid4())
    result = backend.add_to_backend(cfg.CONF, image_id, io.BytesIO(b'abc'),
                                    3)
    assert len(result) == 4
    uri, size, md5, meta = result
    assert (size, md5, meta) == (3, hashlib.md5(b'abc').hexdigest(), {})
    assert backend.get_size_from_backend(uri) == 3


def test_unknown_size_and_mismatches(single_store):
    sim = single_store
    image_id = str(uuid.uuid4())
    uri, size, _, _, _ = backend.add_to_backend_with_multihash(
        cfg.CONF, image_id, io.BytesIO(b'z' * 1000), 0, 'sha256')
    assert size == 1000
    assert backend.get_size_from_backend(uri) == 1000
    with pytest.raises(exceptions.Duplicate):
        backend.add_to_backend_with_multihash(
            cfg.CONF, image_id, io.BytesIO(b'z'), 1, 'sha256')
    other = str(uuid.uuid4())
    with pytest.raises(exceptions.Invalid):
        backend.add_to_backend_with_multihash(
            cfg.CONF, other, io.BytesIO(b'z' * 10), 9, 'sha256')
    assert other not in fx.app_instances(sim)


def test_legacy_entry_point_alias_loads_the_same_driver(glance_conf):
    from datera_glance import store
    cls = backend._load_store(glance_conf, 'glance.store.datera.Store',
                              invoke_load=False)
    assert cls is store.Store
