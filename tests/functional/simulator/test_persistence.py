"""A restarted simulator keeps its state, its data and its exports."""

import os
import signal
import subprocess

import pytest

from datera_edf_sim import fixture
from tests.functional.simulator import helpers
from tests.functional.simulator.helpers import HOST1
from tests.functional.simulator.helpers import HOST2
from tests import sdk_helpers

PROJECT = '/root/project1'
PAYLOAD = b'written before the restart\n' * 100


def build_state(sim):
    """A tenant, hosts, an online AI with an ACL, metadata and data."""
    api = sdk_helpers.make_api(sim)
    api.tenants.create(name='project1')
    helpers.register_host(api, HOST1, tenant=PROJECT)
    helpers.register_host(api, HOST2, tenant=PROJECT)
    online = helpers.create_ai(api, size=2, tenant=PROJECT)
    helpers.allow(api, online['id'], HOST1, tenant=PROJECT)
    helpers.set_state(api, online['id'], 'online', tenant=PROJECT)
    api.app_instances.get(online['id'], tenant=PROJECT).metadata.set(
        tenant=PROJECT, checksum='abc123', type='image')
    offline = helpers.create_ai(api, size=1, tenant=PROJECT)
    helpers.allow(api, offline['id'], HOST2, tenant=PROJECT)

    [link] = helpers.export_links(sim, HOST1)[:1]
    with open(os.path.join(sim.export_dir, HOST1, link), 'r+b') as f:
        f.seek(helpers.GiB + 512)
        f.write(PAYLOAD)
        f.flush()
        os.fsync(f.fileno())
    return online['id'], offline['id']


def check_state(sim, online_id, offline_id):
    api = sdk_helpers.make_api(sim)
    assert {t['path'] for t in api.tenants.list()} >= {'/root', PROJECT}
    ais = {ai['id']: ai for ai in api.app_instances.list(tenant=PROJECT)}
    assert set(ais) == {online_id, offline_id}
    assert ais[online_id]['admin_state'] == 'online'
    assert ais[offline_id]['admin_state'] == 'offline'
    acl = helpers.storage_instance(
        api, offline_id, tenant=PROJECT)['acl_policy']
    assert [i['path'] for i in acl['initiators']] == [
        '/initiators/' + HOST2]
    metadata = api.app_instances.get(
        online_id, tenant=PROJECT).metadata.get(tenant=PROJECT)
    assert dict(metadata) == {'checksum': 'abc123', 'type': 'image'}
    assert sorted(i['id'] for i in api.initiators.list(tenant=PROJECT)) == [
        HOST1, HOST2]

    links = helpers.export_links(sim, HOST1)
    assert links == helpers.expected_links(api, online_id, tenant=PROJECT)
    assert helpers.export_links(sim, HOST2) == []
    with open(os.path.join(sim.export_dir, HOST1, links[-1]), 'rb') as f:
        f.seek(helpers.GiB + 512)
        assert f.read(len(PAYLOAD)) == PAYLOAD


def test_restart_keeps_state_data_and_exports(edf_sim):
    ids = build_state(edf_sim)
    edf_sim.restart()
    check_state(edf_sim, *ids)


def test_restart_keeps_the_ca(edf_sim):
    with open(edf_sim.ca_file, 'rb') as f:
        ca = f.read()
    api = sdk_helpers.make_api(edf_sim)
    edf_sim.restart()
    with open(edf_sim.ca_file, 'rb') as f:
        assert f.read() == ca
    # The API object made before the restart still verifies and connects.
    assert api.system.get()['sw_version']


def test_sdk_sessions_survive_a_restart(edf_sim):
    api = sdk_helpers.make_api(edf_sim)
    helpers.create_ai(api)
    edf_sim.restart()
    edf_sim.clear_requests()
    assert len(api.app_instances.list(tenant='/root')) == 1
    assert not [r for r in edf_sim.requests() if r['status'] == 401]


def test_state_survives_a_crash(edf_sim):
    ids = build_state(edf_sim)
    edf_sim.process.send_signal(signal.SIGKILL)
    edf_sim.process.wait(timeout=30)
    with pytest.raises(fixture.SimulatorError, match='status -9'):
        edf_sim.stop()
    edf_sim.start()
    check_state(edf_sim, *ids)


def test_crash_leftover_loop_devices_are_not_duplicated(block_sim):
    ids = build_state(block_sim)
    block_sim.process.send_signal(signal.SIGKILL)
    block_sim.process.wait(timeout=30)
    with pytest.raises(fixture.SimulatorError, match='status -9'):
        block_sim.stop()
    block_sim.start()
    check_state(block_sim, *ids)
    volumes = os.path.join(block_sim.data_dir, 'volumes')
    attached = [line for name in os.listdir(volumes)
                for line in _loops(os.path.join(volumes, name))]
    assert len(attached) == 1  # the online AI's volume, once


def test_stop_frees_loop_devices_and_links(block_sim):
    build_state(block_sim)
    block_sim.stop()
    volumes = os.path.join(block_sim.data_dir, 'volumes')
    for name in os.listdir(volumes):
        assert _loops(os.path.join(volumes, name)) == []
    assert helpers.export_links(block_sim, HOST1) == []


def _loops(path):
    out = subprocess.run(['losetup', '--associated', path], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]
