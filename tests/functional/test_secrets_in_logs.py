"""Neither the password nor any session key reaches a log line, at any
level, on the happy path or on failure paths: full store cycles with
injected faults, expired keys (re-logins), a refused login, and Datera's
SDK's own debug logging, all captured at DEBUG.
"""

import logging
import uuid

from glance_store import exceptions
from glance_store import multi_backend
from oslo_config import cfg

import pytest

from datera_edf_sim import fixture
from tests import conftest as top_conftest
from tests.functional import conftest as fx

BACKEND = fx.BACKEND
BLOCK = fx.IMAGE_CHUNK


def _keys_of(store, seen):
    conn = store.client._conn
    if conn is not None and conn._key:
        seen.add(conn._key)


@pytest.fixture
def secret_store(tmp_path, glance_conf, privsep_in_process):
    """A simulator whose password appears nowhere else; its store."""
    password = 'pw-%s' % uuid.uuid4().hex
    with fixture.running_simulator(
            str(tmp_path / 'sim'), password=password,
            block_devices=top_conftest.can_use_block_devices()) as sim:
        assert fx.configure_multi_store(
            glance_conf, {BACKEND: fx.datera_options(sim)}) == 1
        yield sim


def test_no_secret_in_debug_logs_of_full_cycles_with_faults(
        secret_store, glance_conf, caplog):
    sim = secret_store
    assert sim.password.startswith('pw-')
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    keys = set()
    caplog.set_level(logging.DEBUG)
    for logger in ('dfs_sdk', 'datera_glance', 'glance_store', 'urllib3',
                   'requests'):
        logging.getLogger(logger).setLevel(logging.DEBUG)

    image_id = str(uuid.uuid4())
    image = fx.PatternImage(2 * BLOCK)
    sim.fail_next('PUT', r'/(int_ecosystem_data|metadata)$', count=1,
                  kind='503')
    uri = multi_backend.add_with_multihash(
        cfg.CONF, image_id, image, image.size, BACKEND, 'sha256')[0]
    _keys_of(store, keys)
    sim.expire_keys()
    chunks, _size = multi_backend.get(uri, BACKEND)
    fx.assert_reads_back(image, chunks)
    _keys_of(store, keys)
    sim.fail_next('GET', r'/storage_instances/storage-1$', count=10,
                  kind='500')
    try:
        multi_backend.get_size_from_uri_and_backend(uri, BACKEND)
        chunks, _size = multi_backend.get(uri, BACKEND)
        list(chunks)
    except exceptions.BackendException:
        pass
    sim.clear_faults()
    sim.expire_keys()
    multi_backend.delete(uri, BACKEND)
    _keys_of(store, keys)

    # A store configured with a wrong password: refused at start, logged.
    wrong = 'not-the-password-%s' % uuid.uuid4().hex
    fx.reconfigure_backend(glance_conf, sim, datera_san_password=wrong)

    text = caplog.text
    assert 'Datera API' in text, 'the DEBUG lines were not captured'
    assert len(keys) >= 2, 'expected a re-login'
    assert sim.password not in text
    assert wrong not in text
    for key in keys:
        assert key not in text
