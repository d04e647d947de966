"""TLS material of the simulator and HTTPS verification against it."""

import os
import socket
import ssl

from cryptography import x509
import pytest
import requests

from datera_edf_sim import certs
from tests.functional.simulator import stubs


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def alt_names(cert_file):
    cert = x509.load_pem_x509_certificate(read(cert_file))
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return ({str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            | set(san.get_values_for_type(x509.DNSName)))


def test_server_certificate_covers_local_names_and_bind_address(tmp_path):
    files = certs.ensure_certificates(str(tmp_path), hosts=['10.1.2.3'])
    assert alt_names(files.cert_file) == {'127.0.0.1', 'localhost',
                                          '10.1.2.3'}


def test_wildcard_bind_address_is_not_a_name(tmp_path):
    files = certs.ensure_certificates(str(tmp_path), hosts=['0.0.0.0'])
    assert '0.0.0.0' not in alt_names(files.cert_file)


def test_certificates_are_reused(tmp_path):
    first = certs.ensure_certificates(str(tmp_path))
    ca, cert = read(first.ca_file), read(first.cert_file)
    second = certs.ensure_certificates(str(tmp_path))
    assert read(second.ca_file) == ca
    assert read(second.cert_file) == cert


def test_new_host_remakes_server_certificate_with_the_same_ca(tmp_path):
    first = certs.ensure_certificates(str(tmp_path))
    ca = read(first.ca_file)
    second = certs.ensure_certificates(str(tmp_path), hosts=['sim.example'])
    assert read(second.ca_file) == ca
    assert 'sim.example' in alt_names(second.cert_file)


def test_private_keys_are_private(tmp_path):
    files = certs.ensure_certificates(str(tmp_path))
    for key in (files.key_file, files.ca_key_file):
        assert os.stat(key).st_mode & 0o077 == 0


def handshake(client_ctx, server_ctx, server_hostname):
    """A TLS handshake through memory buffers; raises on failure."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out,
                                 server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {'client': False, 'server': False}
    for _ in range(10):
        for name, side in (('client', client), ('server', server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError('handshake did not finish')


def test_server_certificate_passes_strict_verification(tmp_path):
    files = certs.ensure_certificates(str(tmp_path))
    client = ssl.create_default_context(cafile=files.ca_file)
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert_file, files.key_file)
    handshake(client, server, '127.0.0.1')
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(client, server, 'other.example')


@pytest.fixture
def sim(tmp_path):
    s = stubs.start_stub_simulator(str(tmp_path / 'sim'))
    yield s
    s.stop()


def test_https_verifies_with_the_simulator_ca(sim):
    info = sim.ready_info()
    resp = requests.get(info['api_url'] + '/v2.2/system',
                        verify=info['ca_file'], timeout=30)
    assert resp.status_code == 200


def test_https_with_another_ca_fails_clearly(sim, tmp_path):
    other = certs.ensure_certificates(str(tmp_path / 'other'))
    info = sim.ready_info()
    with pytest.raises(requests.exceptions.SSLError,
                       match='CERTIFICATE_VERIFY_FAILED'):
        requests.get(info['api_url'] + '/v2.2/system',
                     verify=other.ca_file, timeout=30)


def test_https_by_name_localhost_verifies(sim):
    info = sim.ready_info()
    resp = requests.get('https://localhost:%d/v2.2/system' % info['port'],
                        verify=info['ca_file'], timeout=30)
    assert resp.status_code == 200


def test_silent_client_does_not_block_other_handshakes(sim):
    info = sim.ready_info()
    # A client that connects and never starts TLS must not stall the
    # accept loop for everyone else.
    with socket.create_connection((info['host'], info['port'])):
        resp = requests.get(info['api_url'] + '/v2.2/system',
                            verify=info['ca_file'], timeout=10)
        assert resp.status_code == 200
