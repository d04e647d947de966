"""Export links follow the API: online/offline, ACL changes, per host.

Driven through the real SDK against a simulator process, so these prove
what a driver sees: the by-path link named after the SI's ``access``
appears in its host's folder exactly while the app instance is online and
the host is in its ACL.
"""

import os
import stat
import subprocess

import pytest

from datera_edf_sim import fixture
from tests.functional.simulator import helpers
from tests.functional.simulator.helpers import HOST1
from tests.functional.simulator.helpers import HOST2
from tests import sdk_helpers


@pytest.fixture
def api(file_sim):
    api = sdk_helpers.make_api(file_sim)
    helpers.register_host(api, HOST1)
    helpers.register_host(api, HOST2)
    return api


def test_online_exports_to_the_hosts_in_the_acl(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    assert helpers.export_links(file_sim, HOST1) == []
    helpers.set_state(api, ai['id'], 'online')
    expected = helpers.expected_links(api, ai['id'])
    assert len(expected) == 2  # one per data IP
    assert helpers.export_links(file_sim, HOST1) == expected
    assert helpers.export_links(file_sim, HOST2) == []


def test_links_point_at_the_volume(file_sim, api):
    ai = helpers.create_ai(api, size=2)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    for name in helpers.export_links(file_sim, HOST1):
        assert os.path.getsize(helpers.device_of(
            file_sim, HOST1, name)) == 2 * helpers.GiB


def test_offline_removes_the_links(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    helpers.set_state(api, ai['id'], 'offline')
    assert helpers.export_links(file_sim, HOST1) == []
    assert not os.path.exists(os.path.join(file_sim.export_dir, HOST1))


def test_acl_changes_while_online_are_seen_per_host(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    expected = helpers.expected_links(api, ai['id'])

    helpers.allow(api, ai['id'], HOST2)
    assert helpers.export_links(file_sim, HOST2) == expected
    assert helpers.export_links(file_sim, HOST1) == expected

    helpers.disallow(api, ai['id'], HOST1)
    assert helpers.export_links(file_sim, HOST1) == []
    assert helpers.export_links(file_sim, HOST2) == expected


def test_active_initiators_lists_the_hosts_that_see_it(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.allow(api, ai['id'], HOST2)
    helpers.set_state(api, ai['id'], 'online')
    si = helpers.storage_instance(api, ai['id'])
    assert sorted(_iqns(si['active_initiators'])) == [HOST1, HOST2]
    helpers.set_state(api, ai['id'], 'offline')
    si = helpers.storage_instance(api, ai['id'])
    assert list(si['active_initiators']) == []


def _iqns(refs):
    return [r.rsplit('/', 1)[-1] if isinstance(r, str)
            else r['path'].rsplit('/', 1)[-1] for r in refs]


def test_initiator_group_members_see_the_export(file_sim, api):
    ai = helpers.create_ai(api)
    api.initiator_groups.create(name='hosts', members=[
        {'path': '/initiators/' + HOST2}], tenant='/root')
    helpers.storage_instance(api, ai['id']).acl_policy.initiator_groups.add(
        '/initiator_groups/hosts', tenant='/root')
    helpers.set_state(api, ai['id'], 'online')
    assert helpers.export_links(file_sim, HOST2) == helpers.expected_links(
        api, ai['id'])
    assert helpers.export_links(file_sim, HOST1) == []


def test_delete_removes_links_and_volume(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    helpers.set_state(api, ai['id'], 'offline')
    api.app_instances.get(ai['id'], tenant='/root').delete(tenant='/root')
    assert helpers.export_links(file_sim, HOST1) == []
    volumes = os.path.join(file_sim.data_dir, 'volumes')
    assert os.listdir(volumes) == []


def test_force_offline_from_the_admin_api_cuts_the_hosts(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    file_sim.force_offline(ai['id'])
    assert helpers.export_links(file_sim, HOST1) == []
    assert api.app_instances.get(
        ai['id'], tenant='/root')['admin_state'] == 'offline'


def test_exports_of_another_tenant(file_sim, api):
    api.tenants.create(name='project1')
    tenant = '/root/project1'
    helpers.register_host(api, HOST1, tenant=tenant)
    ai = helpers.create_ai(api, tenant=tenant)
    helpers.allow(api, ai['id'], HOST1, tenant=tenant)
    helpers.set_state(api, ai['id'], 'online', tenant=tenant)
    assert helpers.export_links(file_sim, HOST1) == helpers.expected_links(
        api, ai['id'], tenant=tenant)


def test_data_ips_option_names_the_portals(tmp_path):
    with fixture.running_simulator(
            str(tmp_path / 'sim'), data_ips=['127.0.0.7']) as sim:
        api = sdk_helpers.make_api(sim)
        helpers.register_host(api, HOST1)
        ai = helpers.create_ai(api)
        helpers.allow(api, ai['id'], HOST1)
        helpers.set_state(api, ai['id'], 'online')
        links = helpers.export_links(sim, HOST1)
        assert len(links) == 1
        assert links[0].startswith('ip-127.0.0.7:3260-iscsi-')


def test_status_of_the_state_shows_exports(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')
    [state_ai] = file_sim.state()['app_instances']
    assert state_ai['storage_instances'][0]['exported_to'] == [HOST1]


class TestBlockDevices(object):
    """With --block-devices (root), hosts see a real block device."""

    @pytest.fixture
    def bapi(self, block_sim):
        api = sdk_helpers.make_api(block_sim)
        helpers.register_host(api, HOST1)
        helpers.register_host(api, HOST2)
        return api

    def _online(self, sim, api, size=1, hosts=(HOST1,)):
        ai = helpers.create_ai(api, size=size)
        for host in hosts:
            helpers.allow(api, ai['id'], host)
        helpers.set_state(api, ai['id'], 'online')
        return ai

    def test_export_is_a_block_device_of_the_volume_size(self, block_sim,
                                                         bapi):
        self._online(block_sim, bapi, size=2)
        [name, _] = helpers.export_links(block_sim, HOST1)
        device = helpers.device_of(block_sim, HOST1, name)
        assert stat.S_ISBLK(os.stat(device).st_mode)
        assert helpers.device_size(device) == 2 * helpers.GiB

    def test_hosts_share_one_device(self, block_sim, bapi):
        self._online(block_sim, bapi, hosts=(HOST1, HOST2))
        devices = {helpers.device_of(block_sim, host, name)
                   for host in (HOST1, HOST2)
                   for name in helpers.export_links(block_sim, host)}
        assert len(devices) == 1

    def test_device_size_follows_a_grow(self, block_sim, bapi):
        ai = self._online(block_sim, bapi, size=1)
        [name, _] = helpers.export_links(block_sim, HOST1)
        device = helpers.device_of(block_sim, HOST1, name)
        volume = helpers.storage_instance(bapi, ai['id']).volumes.get(
            'volume-1', tenant='/root')
        volume.set(size=3, tenant='/root')
        assert helpers.device_size(device) == 3 * helpers.GiB

    def test_write_past_the_end_fails(self, block_sim, bapi):
        self._online(block_sim, bapi, size=1)
        [name, _] = helpers.export_links(block_sim, HOST1)
        fd = os.open(os.path.join(block_sim.export_dir, HOST1, name),
                     os.O_WRONLY)
        try:
            os.lseek(fd, helpers.GiB, os.SEEK_SET)
            with pytest.raises(OSError):
                os.write(fd, b'x' * 4096)
                os.fsync(fd)
        finally:
            os.close(fd)

    def test_offline_frees_the_loop_device(self, block_sim, bapi):
        ai = self._online(block_sim, bapi)
        helpers.set_state(bapi, ai['id'], 'offline')
        volumes = os.path.join(block_sim.data_dir, 'volumes')
        for name in os.listdir(volumes):
            out = subprocess.run(
                ['losetup', '--associated', os.path.join(volumes, name)],
                capture_output=True, text=True, check=True).stdout
            assert out == ''
