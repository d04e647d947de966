"""datera_glance.edf against the EDF simulator.

Each test starts a fresh simulator (``file_sim``: the REST side is all
these tests need) and checks the cluster's state and request log, not
just what the client says.
"""

import logging
import os
import socket
import uuid

from glance_store import exceptions
import pytest

from datera_edf_sim import certs
from datera_edf_sim import fixture
from datera_glance import edf

TENANT = '/root/glance'


def new_image():
    return str(uuid.uuid4())


def settings(sim, **overrides):
    values = dict(san_ip=sim.host, san_port=sim.port, login=sim.username,
                  password=sim.password, ca_file=sim.ca_file, tenant=TENANT,
                  retry_attempts=2, retry_interval=0.05,
                  operation_timeout=20.0, request_timeout=10.0,
                  # Its own schema cache: the per-user one outlives a
                  # simulator whose port a later one reuses.
                  schema_cache_dir=os.path.join(sim.data_dir, 'schema'))
    values.update(overrides)
    return edf.EdfSettings(**values)


@pytest.fixture
def client(file_sim):
    c = edf.EdfClient(settings(file_sim))
    yield c
    c.close()


def app_instances(sim):
    return {ai['id']: ai for ai in sim.state()['app_instances']}


def calls(sim, method=None, path=None):
    return [r for r in sim.requests()
            if (method is None or r['method'] == method) and
            (path is None or r['api_path'] == path)]


def test_create_grow_delete(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    ai = app_instances(file_sim)[image]
    assert ai['name'] == 'OS-IMAGE-' + image
    assert ai['tenant'] == TENANT
    assert ai['storage_instances'][0]['volumes'][0]['size'] == 1
    assert client.volume_size_gib(image) == 1

    client.grow_image_volume(image, 3)
    assert client.volume_size_gib(image) == 3
    assert (app_instances(file_sim)[image]['storage_instances'][0]
            ['volumes'][0]['op_state']) == 'available'

    client.delete_image_volume(image)
    assert image not in app_instances(file_sim)


def test_metadata_round_trips_as_strings(client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    assert client.get_image_metadata(image) == {}
    client.set_image_metadata(image, {'checksum': 'ab12', 'length': 7,
                                      'type': 'image'})
    client.set_image_metadata(image, {'upload_state': 'complete'})
    assert client.get_image_metadata(image) == {
        'checksum': 'ab12', 'length': '7', 'type': 'image',
        'upload_state': 'complete'}


def test_second_create_is_duplicate(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    with pytest.raises(exceptions.Duplicate, match=image):
        client.create_image_volume(image, 1, 3, 'hybrid', True)
    assert len(app_instances(file_sim)) == 1


@pytest.mark.parametrize('call', [
    lambda c, i: c.volume_size_gib(i),
    lambda c, i: c.get_image_metadata(i),
    lambda c, i: c.set_image_metadata(i, {'type': 'image'}),
    lambda c, i: c.grow_image_volume(i, 2),
    lambda c, i: c.delete_image_volume(i),
    lambda c, i: c.export_to(i, 'iqn.2010-10.org.openstack:h'),
], ids=['size', 'get_metadata', 'set_metadata', 'grow', 'delete',
        'export'])
def test_missing_image_is_notfound_naming_it(client, call):
    image = new_image()
    with pytest.raises(exceptions.NotFound, match=image):
        call(client, image)


def test_image_in_another_tenant_is_not_found(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    other = edf.EdfClient(settings(file_sim, tenant='other'))
    with pytest.raises(exceptions.NotFound):
        other.volume_size_gib(image)


def test_out_of_capacity_is_storage_full(file_sim, client):
    file_sim.set_capacity(2)
    image = new_image()
    with pytest.raises(exceptions.StorageFull, match=image):
        client.create_image_volume(image, 3, 3, 'hybrid', True)
    assert app_instances(file_sim) == {}
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    with pytest.raises(exceptions.StorageFull, match=image):
        client.grow_image_volume(image, 4)
    assert client.volume_size_gib(image) == 1


@pytest.mark.parametrize('kind', ['drop_after', 'drop'])
def test_create_survives_a_dropped_connection(file_sim, client, kind):
    """A create whose connection dropped succeeds with one AI.

    Whether or not the cluster acted before the connection dropped, the
    upload gets exactly one app instance and no error.
    """
    client.check_connection()
    image = new_image()
    file_sim.fail_next('POST', r'/app_instances$', kind=kind)
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    assert list(app_instances(file_sim)) == [image]
    assert len(calls(file_sim, 'POST', '/app_instances')) == 2


def test_create_after_drop_still_refuses_a_real_duplicate(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.fail_next('POST', r'/app_instances$', kind='drop')
    with pytest.raises(exceptions.Duplicate):
        client.create_image_volume(image, 1, 3, 'hybrid', True)


def test_delete_survives_a_dropped_answer(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.fail_next('DELETE', r'/app_instances/', kind='drop_after')
    client.delete_image_volume(image)
    assert app_instances(file_sim) == {}


def test_503s_are_retried_within_bounds(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.clear_requests()
    file_sim.fail_next('GET', r'/volume-1$', count=2, kind='503')
    assert client.volume_size_gib(image) == 1
    assert [r['status'] for r in calls(file_sim, 'GET')] == [503, 503, 200]


def test_503s_beyond_retry_attempts_fail_with_a_clear_error(
        file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.clear_requests()
    file_sim.fail_next('GET', r'/volume-1$', count=10, kind='503')
    with pytest.raises(exceptions.BackendException, match=image):
        client.volume_size_gib(image)
    assert len(calls(file_sim, 'GET')) == 3     # 1 try + 2 retries


def test_plain_500_is_not_retried(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.clear_requests()
    file_sim.fail_next('PUT', r'/volume-1$', kind='500')
    with pytest.raises(exceptions.BackendException, match=image):
        client.grow_image_volume(image, 2)
    assert len(calls(file_sim, 'PUT')) == 1


def test_slow_cluster_hits_the_request_timeout(file_sim):
    client = edf.EdfClient(settings(file_sim, request_timeout=0.5,
                                    retry_attempts=1,
                                    operation_timeout=5.0))
    client.check_connection()
    file_sim.add_latency(2.0, 'GET', r'/volume-1$')
    with pytest.raises(exceptions.BackendException, match='did not answer'):
        client.volume_size_gib(new_image())


def test_expired_keys_log_in_again(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.expire_keys()
    assert client.volume_size_gib(image) == 1
    assert len(calls(file_sim, 'PUT', '/login')) == 2
    assert len(calls(file_sim, 'GET', '/api')) == 1


def test_tenant_is_created_once(file_sim, client):
    for _ in range(3):
        client.create_image_volume(new_image(), 1, 3, 'hybrid', True)
    assert TENANT in file_sim.state()['tenants']
    assert len(calls(file_sim, 'POST', '/tenants')) == 1
    assert len([r for r in file_sim.requests()
                if r['api_path'].startswith('/tenants')]) == 2


def test_calls_per_operation_do_not_grow_with_the_cluster(file_sim, client):
    """Images are addressed by id: no list, no filter, no tenant lookup."""
    def cost(image):
        file_sim.clear_requests()
        client.volume_size_gib(image)
        client.get_image_metadata(image)
        client.export_to(image, 'iqn.2010-10.org.openstack:h')
        client.wait_export_ready(image, 10)
        client.unexport_from(image, 'iqn.2010-10.org.openstack:h')
        return [(r['method'], r['api_path'].replace(image, 'ID'))
                for r in file_sim.requests()]
    client.ensure_initiator('iqn.2010-10.org.openstack:h', 'OpenStack-h')
    first = new_image()
    client.create_image_volume(first, 1, 3, 'hybrid', True)
    before = cost(first)
    for _ in range(15):
        client.create_image_volume(new_image(), 1, 3, 'hybrid', True)
    assert cost(first) == before
    assert not [c for c in before if c[1] == '/app_instances']


def test_wrong_ca_names_the_ca_option(file_sim, tmp_path):
    # A CA of its own, as good as the simulator's but not the one that
    # signed its certificate.
    other = certs.ensure_certificates(str(tmp_path / 'other-ca'))
    client = edf.EdfClient(settings(file_sim, ca_file=other.ca_file))
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_ca_certificates_file'):
        client.check_connection()
    assert calls(file_sim) == [], 'nothing is sent unverified'


def test_system_trust_store_does_not_trust_the_simulator(file_sim):
    client = edf.EdfClient(settings(file_sim, ca_file=None))
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_ca_certificates_file'):
        client.check_connection()


def test_insecure_skips_verification(file_sim):
    client = edf.EdfClient(settings(file_sim, ca_file=None, insecure=True))
    client.check_connection()


def test_wrong_password_is_a_configuration_error_and_not_logged(
        file_sim, caplog):
    secret = 'Not-the-' + file_sim.password
    client = edf.EdfClient(settings(file_sim, password=secret))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(exceptions.BadStoreConfiguration,
                           match='datera_san_password') as e:
            client.check_connection()
    assert secret not in str(e.value)
    assert secret not in caplog.text
    assert file_sim.password not in caplog.text


def test_unreachable_cluster_names_the_address(file_sim):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]     # nothing listens here
    client = edf.EdfClient(settings(file_sim, san_port=port,
                                    retry_attempts=1))
    # An outage, not a configuration error.
    with pytest.raises(edf.ClusterUnreachable,
                       match='127.0.0.1:%d.*datera_san_ip' % port):
        client.check_connection()


def test_port_7717_is_plain_http(tmp_path):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(('127.0.0.1', edf.HTTP_PORT))
        except OSError:
            pytest.skip('port 7717 is in use')
    with fixture.running_simulator(str(tmp_path / 'sim'),
                                   http_port=edf.HTTP_PORT) as sim:
        client = edf.EdfClient(settings(sim, san_port=edf.HTTP_PORT))
        image = new_image()
        client.create_image_volume(image, 1, 3, 'hybrid', True)
        assert image in app_instances(sim)


def test_api_v21_keeps_initiators_at_the_root(file_sim):
    client = edf.EdfClient(settings(file_sim, api_version='2.1'))
    client.ensure_initiator('iqn.2010-10.org.openstack:v21', 'OpenStack-1')
    assert client.api_version == 'v2.1'
    initiators = file_sim.state()['initiators']
    assert [(i['id'], i['tenant']) for i in initiators] == [
        ('iqn.2010-10.org.openstack:v21', '/root')]


def test_api_v22_keeps_initiators_in_the_tenant(file_sim, client):
    client.ensure_initiator('iqn.2010-10.org.openstack:v22', 'OpenStack-2')
    client.ensure_initiator('iqn.2010-10.org.openstack:v22', 'OpenStack-2')
    assert client.api_version == 'v2.2'
    assert [(i['id'], i['tenant']) for i in file_sim.state()['initiators']
            ] == [('iqn.2010-10.org.openstack:v22', TENANT)]
    assert len(calls(file_sim, 'POST', '/initiators')) == 1


def test_initiator_registered_by_another_host_is_fine(file_sim):
    a = edf.EdfClient(settings(file_sim))
    b = edf.EdfClient(settings(file_sim))
    a.ensure_initiator('iqn.2010-10.org.openstack:same', 'OpenStack-1')
    b.ensure_initiator('iqn.2010-10.org.openstack:same', 'OpenStack-1')
    assert len(file_sim.state()['initiators']) == 1


def test_export_and_unexport_leave_other_hosts_alone(file_sim, client):
    image = new_image()
    a = 'iqn.2010-10.org.openstack:host-a'
    b = 'iqn.2010-10.org.openstack:host-b'
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    client.ensure_initiator(a, 'OpenStack-a')
    client.ensure_initiator(b, 'OpenStack-b')
    access = client.export_to(image, a)
    assert access['iqn'].startswith('iqn.2013-05.com.daterainc:')
    assert access['ips']
    client.export_to(image, b)
    client.wait_export_ready(image, 10)

    def acl():
        si = app_instances(file_sim)[image]['storage_instances'][0]
        return sorted(si['acl_policy']['initiators'])
    assert acl() == ['/initiators/' + a, '/initiators/' + b]
    assert not calls(file_sim, 'PUT', '/app_instances/%s/storage_instances/'
                     'storage-1/acl_policy' % image), 'no full replace'

    client.unexport_from(image, a)
    assert acl() == ['/initiators/' + b]
    assert app_instances(file_sim)[image]['admin_state'] == 'online'

    client.unexport_from(image, b)
    assert acl() == []
    assert app_instances(file_sim)[image]['admin_state'] == 'offline'


def test_export_after_another_host_took_it_offline(file_sim, client):
    image = new_image()
    iqn = 'iqn.2010-10.org.openstack:host-a'
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    client.ensure_initiator(iqn, 'OpenStack-a')
    client.export_to(image, iqn)
    file_sim.force_offline(image, tenant=TENANT)
    client.wait_export_ready(image, 10)
    assert app_instances(file_sim)[image]['admin_state'] == 'online'


def test_grow_survives_a_dropped_answer(file_sim, client):
    image = new_image()
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    file_sim.fail_next('PUT', r'/volume-1$', kind='drop_after')
    client.grow_image_volume(image, 2)
    assert client.volume_size_gib(image) == 2


@pytest.mark.parametrize('path', [r'/acl_policy/initiators$',
                                  r'/app_instances/[^/]+$'])
def test_export_and_unexport_survive_dropped_answers(file_sim, client, path):
    image = new_image()
    iqn = 'iqn.2010-10.org.openstack:host-a'
    client.create_image_volume(image, 1, 3, 'hybrid', True)
    client.ensure_initiator(iqn, 'OpenStack-a')
    file_sim.fail_next('PUT', path, kind='drop_after')
    client.export_to(image, iqn)
    client.wait_export_ready(image, 10)
    admin_state = app_instances(file_sim)[image]['admin_state']
    assert admin_state == 'online'
    file_sim.fail_next('PUT', path, kind='drop_after')
    client.unexport_from(image, iqn)
    ai = app_instances(file_sim)[image]
    assert ai['admin_state'] == 'offline'
    assert ai['storage_instances'][0]['acl_policy']['initiators'] == []


def test_debug_logs_hold_neither_password_nor_token(file_sim, client, caplog):
    with caplog.at_level(logging.DEBUG):
        image = new_image()
        client.create_image_volume(image, 1, 3, 'hybrid', True)
        file_sim.expire_keys()      # a re-login, logged as well
        client.set_image_metadata(image, {'type': 'image'})
        client.delete_image_volume(image)
    assert 'Datera API POST /app_instances' in caplog.text
    assert client._conn._key not in caplog.text
    assert file_sim.password not in caplog.text


def test_https_to_the_plain_http_port_names_the_port_option(file_sim):
    # The simulator's plain-HTTP port, configured as if it spoke HTTPS.
    client = edf.EdfClient(settings(file_sim, san_port=file_sim.http_port))
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        client.check_connection()
    assert 'datera_san_port' in str(caught.value)
    assert 'datera_ca_certificates_file' not in str(caught.value)


def test_refused_login_request_names_the_login_option(file_sim):
    # A user name the API's login schema refuses (422): not a sign that
    # the API version is not served.
    client = edf.EdfClient(settings(file_sim, login='x' * 4096))
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        client.check_connection()
    assert 'datera_san_login' in str(caught.value)
    assert 'datera_api_version' not in str(caught.value)
