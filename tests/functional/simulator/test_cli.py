"""The ``datera-edf-sim`` console script, as a person would run it."""

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import pytest
import requests

from datera_edf_sim import cli
from tests.functional.simulator import helpers
from tests.functional.simulator.helpers import HOST1
from tests import sdk_helpers


def script():
    path = os.path.join(os.path.dirname(sys.executable), 'datera-edf-sim')
    if not os.path.exists(path):
        pytest.skip('datera-edf-sim is not installed next to %s (install '
                    'the project, e.g. pip install -e .)' % sys.executable)
    return path


def read_line(stream, timeout):
    deadline = time.monotonic() + timeout
    data = b''
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while b'\n' not in data:
            remaining = deadline - time.monotonic()
            assert remaining > 0, 'no ready line within %ss' % timeout
            if sel.select(remaining):
                chunk = os.read(stream.fileno(), 4096)
                assert chunk, 'serve exited before its ready line'
                data += chunk
    return data


def run(*args):
    return subprocess.run([script()] + list(args), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def served(tmp_path):
    """``datera-edf-sim serve`` started by hand; yields (process, info)."""
    data_dir = str(tmp_path / 'sim')
    proc = subprocess.Popen(
        [script(), 'serve', '--data-dir', data_dir, '--port', '0',
         '--http-port', '0'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_line(proc.stdout, 60)
        yield proc, line
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_prints_one_json_ready_line(served):
    proc, line = served
    assert line.endswith(b'\n') and line.count(b'\n') == 1
    info = json.loads(line)
    assert {'api_url', 'http_url', 'ca_file', 'export_dir', 'username',
            'password', 'admin_url', 'data_dir', 'port',
            'http_port'} <= set(info)
    resp = requests.get(info['api_url'] + '/v2.2/system',
                        verify=info['ca_file'], timeout=30)
    assert resp.status_code == 200
    assert resp.json()['data']['sw_version'] == '3.3.5.0'


def test_serve_stops_on_sigterm_and_prints_nothing_else(served):
    proc, line = served
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read() == b''
    assert b'stopped' in proc.stderr.read()


def test_status_shows_what_a_test_created(edf_sim):
    api = sdk_helpers.make_api(edf_sim)
    helpers.register_host(api, HOST1)
    ai = helpers.create_ai(api, size=3, name='status-demo')
    helpers.allow(api, ai['id'], HOST1)
    helpers.set_state(api, ai['id'], 'online')

    out = run('status', '--data-dir', edf_sim.data_dir)
    assert out.returncode == 0, out.stderr
    [row] = [line for line in out.stdout.splitlines() if ai['id'] in line]
    cells = row.split()
    assert cells[:8] == ['/root', ai['id'], 'status-demo', 'online',
                         'storage-1', 'volume-1', '3', 'available']
    assert cells[-1] == HOST1
    assert 'Tenants: /root' in out.stdout


def test_status_works_after_the_simulator_stopped(edf_sim):
    api = sdk_helpers.make_api(edf_sim)
    ai = helpers.create_ai(api)
    edf_sim.stop()
    out = run('status', '--data-dir', edf_sim.data_dir, '--json')
    assert out.returncode == 0, out.stderr
    snapshot = json.loads(out.stdout)
    assert [a['id'] for a in snapshot['app_instances']] == [ai['id']]
    assert snapshot['app_instances'][0]['admin_state'] == 'offline'


def test_status_of_a_folder_without_state_fails_clearly(tmp_path):
    out = run('status', '--data-dir', str(tmp_path))
    assert out.returncode == 1
    assert 'no simulator state' in out.stderr


def test_serve_requires_a_data_dir():
    out = run('serve')
    assert out.returncode == 2
    assert '--data-dir' in out.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason='only refused without root')
def test_block_devices_without_root_fail_clearly(tmp_path):
    out = run('serve', '--data-dir', str(tmp_path), '--port', '0',
              '--http-port', '0', '--block-devices')
    assert out.returncode == 1
    assert 'need root' in out.stderr
    assert out.stdout == ''


def test_status_table_names_groups_and_empty_state():
    snapshot = {
        'system': {'name': 'sim', 'sw_version': '3.3.5.0'},
        'capacity_gib': 10,
        'tenants': ['/root', '/root/p'],
        'app_instances': [{
            'tenant': '/root/p', 'id': 'ai-1', 'name': 'image-1',
            'admin_state': 'offline',
            'storage_instances': [{
                'name': 'storage-1', 'iqn': 'iqn.x',
                'acl_policy': {
                    'initiators': [{'path': '/initiators/' + HOST1}],
                    'initiator_groups': [{'path': '/initiator_groups/g1'}]},
                'exported_to': [],
                'volumes': [{'name': 'volume-1', 'size': 4,
                             'op_state': 'available'}]}]}],
    }
    text = cli.format_snapshot(snapshot)
    assert 'capacity 10 GiB  provisioned 4 GiB' in text
    [row] = [line for line in text.splitlines() if 'ai-1' in line]
    assert row.split()[-2:] == [HOST1 + ',group:g1', '-']
    empty = cli.format_snapshot({'tenants': ['/root'], 'app_instances': []})
    assert 'No app instances.' in empty
