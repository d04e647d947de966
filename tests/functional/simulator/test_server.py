"""The simulator process: ready line, TLS, SDK logins, clean stops."""

import os
import signal
import socket

import pytest
import requests

from datera_edf_sim import certs
from datera_edf_sim import fixture
from datera_glance.sdk_compat import exceptions
from tests.functional.simulator import helpers
from tests import sdk_helpers

CONTRACT_FIELDS = {'api_url', 'http_url', 'host', 'port', 'http_port',
                   'ca_file', 'export_dir', 'data_dir', 'username',
                   'password', 'admin_url'}


def test_ready_line_has_the_contract_fields(file_sim):
    info = file_sim.info
    assert CONTRACT_FIELDS <= set(info)
    assert info['api_url'] == 'https://127.0.0.1:%d' % info['port']
    assert info['http_url'] == 'http://127.0.0.1:%d' % info['http_port']
    assert info['admin_url'] == info['http_url'] + '/__sim__'
    assert info['data_dir'] == file_sim.data_dir
    assert info['export_dir'].startswith(file_sim.data_dir)
    for field in CONTRACT_FIELDS:
        assert getattr(file_sim, field) == info[field]


def test_free_ports_differ_between_simulators(file_sim, tmp_path):
    with fixture.running_simulator(str(tmp_path / 'second')) as second:
        ports = {file_sim.port, file_sim.http_port, second.port,
                 second.http_port}
        assert len(ports) == 4


@pytest.mark.parametrize('version', ['v2.1', 'v2.2'])
def test_sdk_logs_in_over_verified_https(file_sim, version):
    api = sdk_helpers.make_api(file_sim, version=version)
    assert api.system.get()['sw_version'] == '3.3.5.0'
    logins = [r for r in file_sim.requests()
              if r['method'] == 'PUT' and r['api_path'] == '/login']
    assert [r['version'] for r in logins] == [version]
    assert logins[0]['status'] == 200


def test_sdk_logs_in_over_plain_http(file_sim):
    api = sdk_helpers.make_api(file_sim, secure=False)
    assert api.system.get()['sw_version']


def test_sdk_with_a_wrong_ca_fails_clearly(file_sim, tmp_path):
    other = certs.ensure_certificates(str(tmp_path / 'other-ca'))
    with pytest.raises(exceptions.ApiConnectionError,
                       match='CERTIFICATE_VERIFY_FAILED'):
        sdk_helpers.make_api(file_sim, ca_file=other.ca_file,
                             retry_connection_type=None)
    assert file_sim.requests() == []


def test_wrong_password_is_an_auth_error(file_sim):
    with pytest.raises(exceptions.ApiAuthError):
        sdk_helpers.make_api(file_sim, password='wrong')


def test_serve_options_reach_the_api(tmp_path):
    with fixture.running_simulator(
            str(tmp_path / 'sim'), username='operator', password='s3cret',
            sw_version='3.2.1.0') as sim:
        assert (sim.username, sim.password) == ('operator', 's3cret')
        api = sdk_helpers.make_api(sim)
        assert api.system.get()['sw_version'] == '3.2.1.0'


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_signal(tmp_path, signum):
    sim = fixture.SimulatorProcess(str(tmp_path / 'sim')).start()
    sim.process.send_signal(signum)
    assert sim.process.wait(timeout=30) == 0
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.http_url + '/__sim__/state', timeout=5)


def test_start_failure_reports_the_log(tmp_path):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        sim = fixture.SimulatorProcess(str(tmp_path / 'sim'), port=port)
        with pytest.raises(fixture.SimulatorError, match='in use'):
            sim.start()
    assert not sim.running


def test_admin_client_refuses_when_stopped(tmp_path):
    sim = fixture.SimulatorProcess(str(tmp_path / 'sim'))
    with pytest.raises(fixture.SimulatorError, match='not running'):
        sim.requests()


def test_running_simulator_without_dir_cleans_up():
    with fixture.running_simulator() as sim:
        data_dir = sim.data_dir
        assert os.path.isdir(data_dir)
    assert not os.path.exists(data_dir)


def test_stops_when_its_parent_goes_away(tmp_path):
    sim = fixture.SimulatorProcess(str(tmp_path / 'sim')).start()
    # What the kernel does for a parent that dies: its end of the pipe
    # closes.
    sim.process.stdin.close()
    assert sim.process.wait(timeout=30) == 0
    sim.stop()


@pytest.mark.parametrize('bind,host', [('0.0.0.0', '127.0.0.1'),
                                       ('localhost', 'localhost')])
def test_bind_address_and_verified_https(tmp_path, bind, host):
    with fixture.running_simulator(str(tmp_path / 'sim'), bind=bind) as sim:
        assert sim.host == host
        assert sim.api_url == 'https://%s:%d' % (host, sim.port)
        api = sdk_helpers.make_api(sim)
        assert api.system.get()['sw_version']


def test_key_ttl_option_expires_keys(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   key_ttl=1) as sim:
        url = sim.api_url + '/v2.2'
        key = requests.put(url + '/login', json={
            'name': sim.username, 'password': sim.password},
            verify=sim.ca_file, timeout=30).json()['key']

        def status():
            return requests.get(
                url + '/app_instances', verify=sim.ca_file, timeout=30,
                headers={'Auth-Token': key, 'tenant': '/root'}).status_code

        assert status() == 200
        helpers.wait_for(lambda: status() == 401, timeout=15,
                         message='key expiry')


def test_resize_seconds_option_keeps_a_grown_volume_resizing(tmp_path):
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   resize_seconds=600) as sim:
        api = sdk_helpers.make_api(sim)
        ai = helpers.create_ai(api)
        volume = helpers.storage_instance(api, ai['id']).volumes.get(
            'volume-1', tenant='/root')
        assert volume['op_state'] == 'available'
        volume.set(size=2, tenant='/root')
        volume = helpers.storage_instance(api, ai['id']).volumes.get(
            'volume-1', tenant='/root')
        assert volume['size'] == 2
        assert volume['op_state'] != 'available'


@pytest.mark.parametrize('sw_version,endpoint', [
    ('3.3.5.0', '/int_ecosystem_data'), ('3.2.0.0', '/metadata')])
def test_sw_version_selects_the_sdk_metadata_endpoint(tmp_path, sw_version,
                                                      endpoint):
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   sw_version=sw_version) as sim:
        api = sdk_helpers.make_api(sim)
        ai = helpers.create_ai(api)
        entity = api.app_instances.get(ai['id'], tenant='/root')
        entity.metadata.set(tenant='/root', checksum='c0ffee')
        assert dict(entity.metadata.get(tenant='/root')) == {
            'checksum': 'c0ffee'}
        used = {r['api_path'][len('/app_instances/' + ai['id']):]
                for r in sim.requests()
                if r['api_path'].startswith('/app_instances/' + ai['id'] +
                                            '/')}
        assert used == {endpoint}


def test_running_simulator_reports_only_the_start_failure(tmp_path):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        with pytest.raises(fixture.SimulatorError) as caught:
            with fixture.running_simulator(str(tmp_path / 'sim'),
                                           http_port=busy.getsockname()[1]):
                pass
    assert 'before it was ready' in str(caught.value)
    assert caught.value.__context__ is None
