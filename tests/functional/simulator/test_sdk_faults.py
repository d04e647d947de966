"""Every injected fault, as Datera's SDK experiences it.

The real API behind the fault injector, the real dfs_sdk in front of it:
these show what a driver built on the SDK will face.
"""

import time

import pytest

from datera_edf_sim import fixture
from datera_glance.sdk_compat import exceptions
from tests.functional.simulator import helpers
from tests import sdk_helpers


@pytest.fixture
def api(file_sim):
    return sdk_helpers.make_api(file_sim)


def calls(sim, method, api_path):
    return [r for r in sim.requests()
            if r['method'] == method and r['api_path'] == api_path]


def test_request_log_counts_calls(file_sim, api):
    file_sim.clear_requests()
    helpers.create_ai(api)
    helpers.create_ai(api)
    api.app_instances.list(tenant='/root')
    posts = calls(file_sim, 'POST', '/app_instances')
    assert [(r['status'], r['tenant']) for r in posts] == [
        (201, '/root'), (201, '/root')]
    assert len(calls(file_sim, 'GET', '/app_instances')) == 1


def test_503_is_retried_by_the_sdk(file_sim, api):
    file_sim.fail_next('POST', '/app_instances$', kind='503')
    ai = helpers.create_ai(api)
    assert api.app_instances.get(ai['id'], tenant='/root')['id'] == ai['id']
    assert [r['status'] for r in calls(
        file_sim, 'POST', '/app_instances')] == [503, 201]


def test_503_without_sdk_retries_raises(file_sim):
    api = sdk_helpers.make_api(file_sim, retry_503_type=None)
    file_sim.fail_next('GET', '/app_instances$', kind='503')
    with pytest.raises(exceptions.ApiError) as caught:
        api.app_instances.list(tenant='/root')
    assert caught.value.__class__.__name__ == 'Api503RetryError'


def test_500_is_an_internal_error(file_sim, api):
    file_sim.fail_next('POST', '/app_instances$', kind='500')
    with pytest.raises(exceptions.ApiInternalError):
        helpers.create_ai(api)
    assert file_sim.state()['app_instances'] == []


def test_dropped_connection_is_retried_by_the_sdk(file_sim, api):
    ai = helpers.create_ai(api)
    file_sim.fail_next('GET', '/app_instances/', kind='drop')
    assert api.app_instances.get(ai['id'], tenant='/root')['id'] == ai['id']
    gets = calls(file_sim, 'GET', '/app_instances/' + ai['id'])
    assert [(r['status'], r['fault']) for r in gets] == [
        (None, 'drop'), (200, None)]


def test_dropped_connection_without_retries_raises(file_sim):
    api = sdk_helpers.make_api(file_sim, retry_connection_type=None)
    file_sim.fail_next('GET', '/system$', kind='drop')
    with pytest.raises(exceptions.ApiConnectionError):
        api.system.get()


def test_lost_answer_to_a_create_leaves_one_app_instance(file_sim, api):
    # The SDK posts again, gets 409 and looks the AI up by name, which an
    # openstack-mode AI (found by its uuid) does not answer to: a driver
    # must check by id itself.
    file_sim.fail_next('POST', '/app_instances$', kind='drop_after')
    with pytest.raises(exceptions.ApiNotFoundError):
        helpers.create_ai(api)
    assert [r['status'] for r in calls(
        file_sim, 'POST', '/app_instances')] == [None, 409]
    assert len(file_sim.state()['app_instances']) == 1


def test_latency_slows_matching_calls(file_sim, api):
    ai = helpers.create_ai(api)
    file_sim.add_latency(0.5, 'GET', '/app_instances/')
    start = time.monotonic()
    api.app_instances.get(ai['id'], tenant='/root')
    assert time.monotonic() - start >= 0.5
    file_sim.clear_faults()
    assert file_sim.faults() == {'failures': [], 'latency': []}


def test_expired_keys_make_the_sdk_log_in_again(file_sim, api):
    helpers.create_ai(api)
    file_sim.expire_keys()
    file_sim.clear_requests()
    assert len(api.app_instances.list(tenant='/root')) == 1
    log = [(r['method'], r['api_path'], r['status'])
           for r in file_sim.requests()]
    assert log[0] == ('GET', '/app_instances', 401)
    assert ('PUT', '/login', 200) in log
    assert log[-1] == ('GET', '/app_instances', 200)


def test_force_offline_is_seen_by_the_owner(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.set_state(api, ai['id'], 'online')
    result = file_sim.force_offline(ai['id'])
    assert result['admin_state'] == 'offline'
    assert api.app_instances.get(
        ai['id'], tenant='/root')['admin_state'] == 'offline'


def test_force_offline_of_an_unknown_app_instance_fails(file_sim):
    with pytest.raises(fixture.SimulatorError, match='404'):
        file_sim.force_offline('00000000-0000-0000-0000-000000000000')


def test_capacity_limits_creates_and_grows(file_sim, api):
    file_sim.set_capacity(3)
    ai = helpers.create_ai(api, size=2)
    with pytest.raises(exceptions.ApiValidationFailedError,
                       match='Insufficient capacity'):
        helpers.create_ai(api, size=2)
    volume = helpers.storage_instance(api, ai['id']).volumes.get(
        'volume-1', tenant='/root')
    with pytest.raises(exceptions.ApiValidationFailedError,
                       match='Insufficient capacity'):
        volume.set(size=4, tenant='/root')
    volume.set(size=3, tenant='/root')
    file_sim.set_capacity(None)
    helpers.create_ai(api, size=2)
    assert file_sim.state()['capacity_gib'] is None


def test_full_action_fails_the_create_it_precedes(file_sim, api):
    helpers.create_ai(api, size=2)
    file_sim.fail_next('POST', '/app_instances$', kind='full', skip=1)
    helpers.create_ai(api, size=1)
    with pytest.raises(exceptions.ApiValidationFailedError,
                       match='Insufficient capacity'):
        helpers.create_ai(api, size=1)
    assert file_sim.state()['capacity_gib'] == 3


def test_expire_keys_action_makes_that_request_log_in_again(file_sim, api):
    helpers.create_ai(api)
    file_sim.fail_next('GET', '/app_instances$', kind='expire_keys', skip=1)
    file_sim.clear_requests()
    api.app_instances.list(tenant='/root')
    api.app_instances.list(tenant='/root')
    log = [(r['method'], r['api_path'], r['status'], r['fault'])
           for r in file_sim.requests()]
    assert log[0] == ('GET', '/app_instances', 200, None)
    assert log[1] == ('GET', '/app_instances', 401, 'expire_keys')
    assert ('PUT', '/login', 200, None) in log
    assert log[-1] == ('GET', '/app_instances', 200, None)


def test_force_offline_action_through_the_fixture(file_sim, api):
    ai = helpers.create_ai(api)
    helpers.set_state(api, ai['id'], 'online')
    file_sim.fail_next('GET', '/system$', kind='force_offline',
                       ai_id=ai['id'], tenant='/root')
    api.system.get()
    assert api.app_instances.get(
        ai['id'], tenant='/root')['admin_state'] == 'offline'


def test_one_delayed_call_and_waiting_for_it(file_sim, api):
    ai = helpers.create_ai(api)
    file_sim.add_latency(0.5, 'GET', '/app_instances/', count=1, skip=1)
    start = time.monotonic()
    api.app_instances.get(ai['id'], tenant='/root')
    assert time.monotonic() - start < 0.5
    api.app_instances.get(ai['id'], tenant='/root')
    assert time.monotonic() - start >= 0.5
    assert file_sim.faults()['latency'] == []
    assert file_sim.wait_idle(5) is True
