"""Fault injection, latency, request log and admin API of the simulator.

These run the real servers (HTTPS and HTTP, in-process) over a stand-in
REST application, so they test the transport and the middleware alone;
test_sdk_faults.py shows the same faults through the real API and SDK.
"""

import concurrent.futures
import time

import pytest
import requests

from datera_edf_sim import faults
from tests.functional.simulator import helpers
from tests.functional.simulator import stubs


@pytest.fixture
def sim(tmp_path):
    s = stubs.start_stub_simulator(str(tmp_path / 'sim'))
    yield s
    s.stop()


@pytest.fixture
def info(sim):
    return sim.ready_info()


@pytest.fixture
def https(info):
    # verify per request: a Session's own verify loses to the
    # REQUESTS_CA_BUNDLE environment variable.
    session = requests.Session()
    yield lambda method, path, **kw: session.request(
        method, info['api_url'] + path, verify=info['ca_file'], timeout=30,
        **kw)
    session.close()


@pytest.fixture
def admin(info):
    def call(method, path, **kw):
        resp = requests.request(method, info['admin_url'] + path,
                                timeout=30, **kw)
        return resp
    return call


def hits(sim, path):
    return sim.model.app.config['hits'].get(path, 0)


def test_503_answers_json_with_a_message_then_recovers(https, admin):
    assert admin('POST', '/faults', json={
        'method': 'GET', 'path_pattern': '/system$', 'kind': '503',
        'count': 2}).status_code == 201
    for _ in range(2):
        resp = https('GET', '/v2.2/system')
        assert resp.status_code == 503
        assert resp.json()['message']
    assert https('GET', '/v2.2/system').status_code == 200


def test_500_is_not_the_message_the_sdk_retries(https, sim):
    sim.injector.fail_next('PUT', 'app_instances', kind='500')
    resp = https('PUT', '/v2.2/app_instances/x')
    assert resp.status_code == 500
    assert 'still initializing' not in resp.json()['message']
    assert hits(sim, 'app_instances/x') == 0


def test_fault_applies_to_its_method_only(https, sim):
    sim.injector.fail_next('POST', 'app_instances', kind='503')
    assert https('GET', '/v2.2/app_instances').status_code == 200
    assert https('POST', '/v2.2/app_instances').status_code == 503
    assert https('POST', '/v2.2/app_instances').status_code == 200


def test_any_method_fault(https, sim):
    sim.injector.fail_next('*', 'tenants', kind='503')
    assert https('DELETE', '/v2.1/tenants/a').status_code == 503


@pytest.mark.parametrize('scheme', ['https', 'http'])
def test_drop_closes_the_connection_before_the_api_sees_it(sim, info,
                                                           scheme):
    sim.injector.fail_next('GET', '/system', kind='drop')
    url = info['api_url' if scheme == 'https' else 'http_url']
    with pytest.raises(requests.ConnectionError):
        requests.get(url + '/v2.2/system', verify=info['ca_file'],
                     timeout=30)
    assert hits(sim, 'system') == 0
    assert requests.get(url + '/v2.2/system', verify=info['ca_file'],
                        timeout=30).status_code == 200


def test_drop_after_performs_the_request_but_loses_the_answer(sim, info):
    sim.injector.fail_next('POST', 'app_instances$', kind='drop_after')
    with pytest.raises(requests.ConnectionError):
        requests.post(info['api_url'] + '/v2.2/app_instances', json={},
                      verify=info['ca_file'], timeout=30)
    assert hits(sim, 'app_instances') == 1


def test_latency_delays_matching_requests_only(https, admin):
    assert admin('POST', '/latency', json={
        'seconds': 0.6, 'method': 'GET',
        'path_pattern': '/app_instances'}).status_code == 201
    start = time.monotonic()
    assert https('GET', '/v2.2/app_instances').status_code == 200
    assert time.monotonic() - start >= 0.6
    start = time.monotonic()
    assert https('GET', '/v2.2/system').status_code == 200
    assert time.monotonic() - start < 0.6


def test_clear_faults_removes_pending_failures_and_latency(https, admin):
    admin('POST', '/faults', json={'method': 'GET', 'path_pattern': '',
                                   'count': 5})
    admin('POST', '/latency', json={'seconds': 5})
    assert len(admin('GET', '/faults').json()['failures']) == 1
    assert admin('DELETE', '/faults').status_code == 200
    assert admin('GET', '/faults').json() == {'failures': [], 'latency': []}
    start = time.monotonic()
    assert https('GET', '/v2.2/system').status_code == 200
    assert time.monotonic() - start < 5


def test_request_log_records_method_path_tenant_status(https, admin, sim):
    sim.injector.fail_next('PUT', 'login', kind='503')
    https('PUT', '/v2.2/login', json={})
    https('GET', '/v2.2/app_instances?limit=2',
          headers={'tenant': '/root/t1'})
    log = admin('GET', '/requests').json()
    assert [(r['method'], r['path'], r['api_path'], r['version'],
             r['tenant'], r['status'], r['fault']) for r in log] == [
        ('PUT', '/v2.2/login', '/login', 'v2.2', None, 503, '503'),
        ('GET', '/v2.2/app_instances', '/app_instances', 'v2.2',
         '/root/t1', 200, None),
    ]


def test_admin_calls_are_neither_logged_nor_faulted(https, admin, sim):
    sim.injector.fail_next(None, '', count=100, kind='500')
    assert admin('GET', '/state').status_code == 200
    assert admin('GET', '/requests').json() == []
    assert len(sim.injector.faults()['failures']) == 1


def test_clear_requests_empties_the_log(https, admin):
    https('GET', '/v2.2/system')
    assert len(admin('GET', '/requests').json()) == 1
    assert admin('DELETE', '/requests').status_code == 200
    assert admin('GET', '/requests').json() == []


def test_request_log_is_bounded():
    injector = faults.FaultInjector(stubs.make_stub_app(
        stubs.StubModel(), None, {}), log_size=3)
    env = {'REQUEST_METHOD': 'GET', 'SERVER_NAME': 'x', 'SERVER_PORT': '1',
           'wsgi.url_scheme': 'http'}
    for i in range(5):
        injector(dict(env, PATH_INFO='/v2.2/p%d' % i),
                 lambda status, headers, exc_info=None: None)
    assert [r['path'] for r in injector.requests()] == [
        '/v2.2/p2', '/v2.2/p3', '/v2.2/p4']


def test_admin_model_calls(admin, sim):
    assert admin('POST', '/expire_keys').status_code == 200
    assert admin('POST', '/force_offline', json={
        'tenant': '/root', 'ai_id': 'ai-1'}).status_code == 200
    assert admin('PUT', '/capacity', json={'gib': 10}).status_code == 200
    assert admin('PUT', '/capacity', json={'gib': None}).status_code == 200
    assert sim.model.calls == [
        ('expire_all_keys',), ('force_offline', '/root', 'ai-1'),
        ('set_capacity', 10), ('set_capacity', None)]
    assert admin('GET', '/state').json()['tenants'] == ['/root']


def test_force_offline_of_a_missing_app_instance_is_404(admin):
    resp = admin('POST', '/force_offline', json={'ai_id': 'nope'})
    assert resp.status_code == 404
    assert 'nope' in resp.json()['message']


@pytest.mark.parametrize('method,path,body', [
    ('POST', '/faults', {'path_pattern': 'x', 'kind': '418'}),
    ('POST', '/faults', {'path_pattern': '(', 'kind': '503'}),
    ('POST', '/faults', {'path_pattern': 'x', 'count': 0}),
    ('POST', '/faults', {'kind': '503'}),
    ('POST', '/latency', {'seconds': -1}),
    ('PUT', '/capacity', {'gib': 'lots'}),
    ('POST', '/force_offline', {'tenant': '/root'}),
])
def test_bad_admin_requests_are_400(admin, method, path, body):
    resp = admin(method, path, json=body)
    assert resp.status_code == 400
    assert resp.json()['message']


def test_unknown_admin_path_is_a_json_404(admin):
    resp = admin('GET', '/nothing')
    assert resp.status_code == 404
    assert resp.json()['message']


def test_stop_lets_requests_in_flight_finish(sim, info):
    sim.injector.add_latency(1.0, 'GET', '/system')
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, info['api_url'] + '/v2.2/system',
                              verify=info['ca_file'], timeout=30)
        helpers.wait_for(lambda: sim.injector.in_flight == 1,
                         message='request in flight')
        sim.stop()
        assert pending.result().status_code == 200
    assert sim.injector.in_flight == 0


def test_wait_idle_times_out_while_a_request_runs(sim, info):
    sim.injector.add_latency(1.0)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, info['http_url'] + '/v2.2/x',
                              timeout=30)
        helpers.wait_for(lambda: sim.injector.in_flight == 1,
                         message='request in flight')
        assert sim.injector.wait_idle(0.05) is False
        assert sim.injector.wait_idle(30) is True
        assert pending.result().status_code == 200


def test_skip_lets_the_first_matching_requests_through(https, sim):
    sim.injector.fail_next('GET', '/system$', kind='503', skip=2, count=2)
    assert [https('GET', '/v2.2/system').status_code
            for _ in range(5)] == [200, 200, 503, 503, 200]


def test_skip_counts_only_matching_requests(https, admin):
    assert admin('POST', '/faults', json={
        'method': 'PUT', 'path_pattern': '/a$', 'kind': '500',
        'skip': 1}).status_code == 201
    assert https('PUT', '/v2.2/b').status_code == 200
    assert https('GET', '/v2.2/a').status_code == 200
    assert https('PUT', '/v2.2/a').status_code == 200
    assert https('PUT', '/v2.2/a').status_code == 500
    assert admin('GET', '/faults').json()['failures'] == []


def test_a_skipping_rule_lets_a_later_rule_apply(https, sim):
    sim.injector.fail_next('GET', '/system$', kind='500', skip=1)
    sim.injector.fail_next('GET', '/system$', kind='503')
    assert [https('GET', '/v2.2/system').status_code
            for _ in range(3)] == [503, 500, 200]


def test_counted_latency_delays_only_the_chosen_request(https, admin, sim):
    assert admin('POST', '/latency', json={
        'seconds': 0.5, 'method': 'GET', 'path_pattern': '/system$',
        'count': 1, 'skip': 1}).status_code == 201
    took = []
    for _ in range(3):
        start = time.monotonic()
        assert https('GET', '/v2.2/system').status_code == 200
        took.append(time.monotonic() - start)
    assert took[1] >= 0.5
    assert took[0] < 0.5 and took[2] < 0.5
    assert sim.injector.faults()['latency'] == []


@pytest.mark.parametrize('kind,call', [
    ('expire_keys', ('expire_all_keys',)),
    ('full', ('fill_capacity',)),
])
def test_action_runs_before_the_request_which_then_runs(
        https, sim, kind, call):
    sim.injector.fail_next('GET', '/system$', kind=kind, skip=1)
    assert https('GET', '/v2.2/system').status_code == 200
    assert sim.model.calls == []
    assert https('GET', '/v2.2/system').status_code == 200
    assert sim.model.calls == [call]
    assert hits(sim, 'system') == 2
    log = sim.injector.requests()
    assert [(r['status'], r['fault']) for r in log] == [
        (200, None), (200, kind)]


def test_force_offline_action_takes_the_app_instance_in_the_path(https, sim):
    sim.injector.fail_next('PUT', 'app_instances', kind='force_offline')
    resp = https('PUT', '/v2.2/app_instances/ai-1/storage_instances/s',
                 headers={'tenant': '/root'})
    assert resp.status_code == 200
    assert sim.model.calls == [('force_offline', '/root', 'ai-1')]


def test_force_offline_action_of_a_named_app_instance(https, admin, sim):
    assert admin('POST', '/faults', json={
        'method': 'GET', 'path_pattern': '/system$',
        'kind': 'force_offline', 'ai_id': 'ai-1',
        'tenant': '/root'}).status_code == 201
    assert https('GET', '/v2.2/system').status_code == 200
    assert sim.model.calls == [('force_offline', '/root', 'ai-1')]


def test_force_offline_action_of_a_missing_app_instance_does_nothing(
        https, sim):
    sim.injector.fail_next('GET', 'app_instances', kind='force_offline')
    assert https('GET', '/v2.2/app_instances/nope').status_code == 200
    assert sim.model.calls == []


def test_wait_idle_admin_call_waits_for_a_late_request(sim, info, admin):
    sim.injector.add_latency(0.5, count=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(requests.get, info['http_url'] + '/v2.2/x',
                              timeout=30)
        helpers.wait_for(lambda: sim.injector.in_flight == 1,
                         message='request in flight')
        assert admin('POST', '/wait_idle',
                     json={'timeout': 0.05}).json() == {'idle': False}
        assert admin('POST', '/wait_idle',
                     json={'timeout': 30}).json() == {'idle': True}
        # Handled (hence logged) before the wait returned.
        assert [r['path'] for r in sim.injector.requests()] == ['/v2.2/x']
        assert pending.result().status_code == 200


@pytest.mark.parametrize('method,path,body', [
    ('POST', '/faults', {'path_pattern': 'x', 'skip': -1}),
    ('POST', '/faults', {'path_pattern': 'x', 'skip': 'many'}),
    ('POST', '/latency', {'seconds': 1, 'count': 0}),
    ('POST', '/wait_idle', {'timeout': 'long'}),
])
def test_bad_new_admin_requests_are_400(admin, method, path, body):
    resp = admin(method, path, json=body)
    assert resp.status_code == 400
    assert resp.json()['message']
