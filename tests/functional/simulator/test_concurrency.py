"""Many clients at once: the threaded servers, model and data plane agree."""

import concurrent.futures
import os

from tests.functional.simulator import helpers
from tests import sdk_helpers

HOSTS = ['iqn.1993-08.org.debian:01:node%d' % i for i in range(6)]


def test_edf_sim_uses_loop_devices_exactly_when_root(edf_sim):
    assert edf_sim.info['block_devices'] == (os.geteuid() == 0)


def test_hosts_adding_themselves_at_once_all_get_exported(edf_sim):
    api = sdk_helpers.make_api(edf_sim)
    for host in HOSTS:
        helpers.register_host(api, host)
    ai = helpers.create_ai(api)
    helpers.set_state(api, ai['id'], 'online')

    def attach(host):
        # Each host has its own API object, as separate glance nodes do.
        own = sdk_helpers.make_api(edf_sim)
        helpers.allow(own, ai['id'], host)
        return host

    with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
        assert sorted(pool.map(attach, HOSTS)) == sorted(HOSTS)

    expected = helpers.expected_links(api, ai['id'])
    for host in HOSTS:
        assert helpers.export_links(edf_sim, host) == expected
    acl = helpers.storage_instance(api, ai['id'])['acl_policy']
    assert sorted(i['path'].rsplit('/', 1)[-1]
                  for i in acl['initiators']) == sorted(HOSTS)
    if edf_sim.info['block_devices']:
        devices = {helpers.device_of(edf_sim, host, name)
                   for host in HOSTS
                   for name in helpers.export_links(edf_sim, host)}
        assert len(devices) == 1


def test_parallel_lifecycles_leave_a_consistent_state(edf_sim):
    api = sdk_helpers.make_api(edf_sim)
    helpers.register_host(api, HOSTS[0])

    def lifecycle(i):
        own = sdk_helpers.make_api(edf_sim)
        ai = helpers.create_ai(own)
        helpers.allow(own, ai['id'], HOSTS[0])
        helpers.set_state(own, ai['id'], 'online')
        if i % 2:
            helpers.set_state(own, ai['id'], 'offline')
            own.app_instances.get(ai['id'], tenant='/root').delete(
                tenant='/root')
            return None
        return ai['id']

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        kept = [ai_id for ai_id in pool.map(lifecycle, range(12)) if ai_id]

    state = edf_sim.state()
    assert sorted(a['id'] for a in state['app_instances']) == sorted(kept)
    expected = sorted(name for ai_id in kept
                      for name in helpers.expected_links(api, ai_id))
    assert helpers.export_links(edf_sim, HOSTS[0]) == expected
    volumes = os.listdir(os.path.join(edf_sim.data_dir, 'volumes'))
    assert len(volumes) == len(kept)
