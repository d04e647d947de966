"""Failures the store must survive cleanly, against the simulator: a full
cluster, faults injected in the middle of an upload, and a cluster that
cannot be reached or verified. After each, nothing is left behind: no app
instance and no export.
"""

import io
import logging
import os
import uuid

from glance_store import capabilities
from glance_store import exceptions
from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units
import pytest

from tests.functional import conftest as fx

BACKEND = fx.BACKEND
GiB = units.Gi
BLOCK = fx.IMAGE_CHUNK
GROW_PATH = r'/storage_instances/storage-1/volumes/volume-1$'
METADATA_PATH = r'/(int_ecosystem_data|metadata)$'


def _add(image_id, data, size):
    return multi_backend.add_with_multihash(cfg.CONF, image_id, data, size,
                                            BACKEND, 'sha256')


def _assert_nothing_left(sim, image_id):
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []


ArmedSource = fx.ArmedSource


def test_cluster_out_of_space_on_create(multi_store):
    sim = multi_store
    sim.set_capacity(2)
    image_id = str(uuid.uuid4())
    with pytest.raises(exceptions.StorageFull):
        _add(image_id, fx.PatternImage(BLOCK), 3 * GiB)
    _assert_nothing_left(sim, image_id)


def test_cluster_out_of_space_while_growing(multi_store, glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True)
    sim.set_capacity(1)
    image_id = str(uuid.uuid4())
    size = GiB + BLOCK
    image = fx.PatternImage(size, zero_blocks=range(1, size // BLOCK))
    with pytest.raises(exceptions.StorageFull):
        _add(image_id, image, 0)
    _assert_nothing_left(sim, image_id)


def test_failed_grow_midway_leaves_nothing(multi_store, glance_conf):
    sim = multi_store
    fx.reconfigure_backend(glance_conf, sim, datera_thin_provisioning=True)
    image_id = str(uuid.uuid4())
    size = GiB + BLOCK
    image = ArmedSource(
        size, after=BLOCK,
        action=lambda: sim.fail_next('PUT', GROW_PATH, count=5, kind='500'),
        zero_blocks=range(1, size // BLOCK))
    with pytest.raises(exceptions.BackendException) as exc:
        _add(image_id, image, 0)
    assert image.action is None          # the fault was armed mid-upload
    assert 'grow' in str(exc.value)
    _assert_nothing_left(sim, image_id)


def test_failed_final_metadata_write_leaves_nothing(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())
    image = ArmedSource(
        2 * BLOCK, after=BLOCK,
        action=lambda: sim.fail_next('PUT', METADATA_PATH, count=5,
                                     kind='500'))
    with pytest.raises(exceptions.BackendException) as exc:
        _add(image_id, image, 2 * BLOCK)
    assert image.action is None
    assert 'metadata' in str(exc.value)
    _assert_nothing_left(sim, image_id)


def test_connection_dropped_mid_upload_is_retried(multi_store):
    # A lost answer to the final metadata write is retried within
    # datera_retry_attempts; the upload succeeds.
    sim = multi_store
    image_id = str(uuid.uuid4())
    image = ArmedSource(
        2 * BLOCK, after=BLOCK,
        action=lambda: sim.fail_next('PUT', METADATA_PATH, kind='drop'))
    uri = _add(image_id, image, 2 * BLOCK)[0]
    assert [r for r in sim.requests() if r['status'] is None]
    chunks, size = multi_backend.get(uri, BACKEND)
    assert fx.sha256_of(chunks) == (image.sha256, 2 * BLOCK)


def test_source_failure_mid_upload_leaves_nothing(multi_store):
    sim = multi_store
    image_id = str(uuid.uuid4())

    def client_went_away():
        raise IOError('the client closed the connection')

    image = ArmedSource(2 * BLOCK, after=BLOCK, action=client_went_away)
    # The source's own error, for glance to handle as its own.
    with pytest.raises(IOError, match='client closed the connection'):
        _add(image_id, image, 2 * BLOCK)
    _assert_nothing_left(sim, image_id)


def test_wrong_ca_disables_writes_with_a_clear_error(edf_sim, glance_conf,
                                                     privsep_in_process,
                                                     tmp_path, caplog):
    sim = edf_sim
    other_ca = tmp_path / 'other-ca.pem'
    # Any CA that did not sign the simulator's certificate will do.
    with open(sim.ca_file) as f:
        ours = f.read()
    system_bundle = '/etc/ssl/certs/ca-certificates.crt'
    if os.path.exists(system_bundle):
        other_ca.write_text(open(system_bundle).read())
    else:
        pytest.skip('no system CA bundle to stand for a wrong CA')
    assert ours not in other_ca.read_text()

    caplog.set_level(logging.ERROR)
    fx.configure_multi_store(glance_conf, {BACKEND: fx.datera_options(
        sim, datera_ca_certificates_file=str(other_ca))})
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    assert not store.is_capable(capabilities.BitMasks.WRITE_ACCESS)
    assert any('TLS' in r.getMessage() and 'disabled for writes' in
               r.getMessage() for r in caplog.records)
    with pytest.raises(exceptions.StoreAddDisabled):
        _add(str(uuid.uuid4()), io.BytesIO(b'x'), 1)
    uri = 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        sim.host, sim.port, uuid.uuid4())
    with pytest.raises(exceptions.BadStoreConfiguration) as exc:
        multi_backend.get_size_from_uri_and_backend(uri, BACKEND)
    assert 'datera_ca_certificates_file' in str(exc.value)


def test_unreachable_cluster_at_start_keeps_the_store_enabled(
        edf_sim, glance_conf, privsep_in_process, caplog):
    sim = edf_sim
    sim.stop()      # down while glance-api starts
    caplog.set_level(logging.WARNING)
    fx.configure_multi_store(glance_conf, {BACKEND: fx.datera_options(sim)})
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    # An outage is not a configuration error: writes stay enabled...
    assert store.is_capable(capabilities.BitMasks.WRITE_ACCESS)
    messages = [r.getMessage() for r in caplog.records]
    warning = [m for m in messages if 'did not answer' in m]
    assert len(warning) == 1, messages
    assert '%s:%d' % (sim.host, sim.port) in warning[0]
    assert 'datera_san_ip' in warning[0]
    assert not any('retry' in m for m in messages), 'start-up retried'
    image_id = str(uuid.uuid4())
    with pytest.raises(exceptions.BackendException) as caught:
        _add(image_id, io.BytesIO(b'x'), 1)
    assert '%s:%d' % (sim.host, sim.port) in str(caught.value)

    # ... and once the cluster answers, uploads and deletes just work.
    sim.start()
    image = fx.PatternImage(BLOCK)
    uri = _add(image_id, image, image.size)[0]
    multi_backend.delete(uri, BACKEND)
    _assert_nothing_left(sim, image_id)
