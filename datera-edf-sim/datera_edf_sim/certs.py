#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""TLS material for the simulator: a private CA and a server certificate.

Made once in the data directory and reused, so clients that trusted the CA
file keep working across restarts. The server certificate is remade (by
the same CA) when it does not cover a host name or address the simulator
is asked to serve on.
"""

import datetime
import ipaddress
import os

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

CA_FILE = 'ca.pem'
CA_KEY_FILE = 'ca-key.pem'
CERT_FILE = 'server.pem'
KEY_FILE = 'server-key.pem'

_DEFAULT_HOSTS = ('127.0.0.1', 'localhost')
_VALIDITY = datetime.timedelta(days=3650)


class TlsFiles(object):
    """Paths of the simulator's CA and server certificate files."""

    def __init__(self, directory):
        self.directory = directory
        self.ca_file = os.path.join(directory, CA_FILE)
        self.ca_key_file = os.path.join(directory, CA_KEY_FILE)
        self.cert_file = os.path.join(directory, CERT_FILE)
        self.key_file = os.path.join(directory, KEY_FILE)


def ensure_certificates(directory, hosts=()):
    """Make (or reuse) a CA and a server certificate in ``directory``.

    :param hosts: names and IP addresses the server certificate must be
        valid for, on top of 127.0.0.1 and localhost. Wildcard binds
        (0.0.0.0, ::) are not names a client connects to and are skipped.
    :returns: a :class:`TlsFiles`.
    """
    os.makedirs(directory, exist_ok=True)
    files = TlsFiles(directory)
    wanted = _subject_alt_names(list(_DEFAULT_HOSTS) + list(hosts))

    if os.path.exists(files.ca_file) and os.path.exists(files.ca_key_file):
        ca_cert, ca_key = _load_pair(files.ca_file, files.ca_key_file)
    else:
        ca_cert, ca_key = _make_ca()
        _write_pair(files.ca_file, files.ca_key_file, ca_cert, ca_key)

    if not _server_cert_usable(files, ca_cert, wanted):
        cert, key = _make_server_cert(ca_cert, ca_key, wanted)
        _write_pair(files.cert_file, files.key_file, cert, key)
    return files


def _subject_alt_names(hosts):
    names = []
    for host in hosts:
        if not host:
            continue
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            entry = x509.DNSName(host)
        else:
            if ip.is_unspecified:
                continue
            entry = x509.IPAddress(ip)
        if entry not in names:
            names.append(entry)
    return names


def _server_cert_usable(files, ca_cert, wanted):
    if not (os.path.exists(files.cert_file)
            and os.path.exists(files.key_file)):
        return False
    with open(files.cert_file, 'rb') as f:
        cert = x509.load_pem_x509_certificate(f.read())
    if cert.issuer != ca_cert.subject:
        return False
    if _not_valid_after(cert) < _now() + datetime.timedelta(days=1):
        return False
    try:
        san = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return all(name in san for name in wanted)


def _not_valid_after(cert):
    # cryptography < 42 (the requirements allow 41) only has the naive
    # UTC attribute.
    if hasattr(cert, 'not_valid_after_utc'):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key():
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca():
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'datera-glance'),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           'Datera EDF simulator CA'),
    ])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_server_cert(ca_cert, ca_key, alt_names):
    key = _new_key()
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                   'datera-glance'),
                x509.NameAttribute(NameOID.COMMON_NAME,
                                   'Datera EDF simulator')]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(alt_names),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _load_pair(cert_file, key_file):
    with open(cert_file, 'rb') as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_file, 'rb') as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def _write_pair(cert_file, key_file, cert, key):
    # Key first, private from the start; each file is renamed into place so
    # a concurrent reader never sees half a file.
    _write_atomic(key_file, key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    _write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM),
                  0o644)


def _write_atomic(path, data, mode):
    tmp = '%s.tmp-%d' % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
