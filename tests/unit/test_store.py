"""Store behaviour with the EDF client and the attacher replaced by fakes:
configuration, the add/get/get_size/delete flows and their error mapping.

Only the network (EdfClient) and host (Attacher) boundaries are faked; the
data path is real, on sparse temporary files.
"""

import contextlib
import errno
import hashlib
import io
import os
from unittest import mock

from glance_store import capabilities
from glance_store import exceptions
from glance_store import location
from oslo_config import cfg
from oslo_utils import units
import pytest

from datera_glance import store
from datera_glance import stream

IMAGE_ID = '6bd58dbb-6b4b-4f5e-8a1f-6b5e1b3c1f7e'
OTHER_ID = '0f3c8a1e-2d5b-4c7a-9e6f-1b2c3d4e5f60'
GIB = 64   # a "GiB" in these tests, so that grows happen with tiny data


class FakeEdf(object):
    """EdfClient's contract over a dict; volumes are sparse files."""

    def __init__(self, folder):
        self.folder = folder
        self.volumes = {}
        self.calls = []
        self.fail = {}
        self.settings = None
        self.given_up = {}

    def _maybe_fail(self, name, image_id=None):
        self.calls.append((name, image_id))
        exc = self.fail.pop(name, None)
        if exc is not None:
            raise exc

    def path(self, image_id):
        return os.path.join(self.folder, image_id)

    def check_connection(self, timeout=None):
        self._maybe_fail('check_connection')

    @contextlib.contextmanager
    def operation(self, timeout=None, retries=True):
        yield

    def create_image_volume(self, image_id, size_gib, replica_count,
                            placement_mode, thin=True, marker=None):
        self._maybe_fail('create', image_id)
        if image_id in self.volumes:
            raise exceptions.Duplicate(image=image_id)
        self.volumes[image_id] = {'size': size_gib, 'metadata': {},
                                  'replicas': replica_count,
                                  'placement': placement_mode,
                                  'descr': marker}
        with open(self.path(image_id), 'wb') as f:
            f.truncate(size_gib * units.Gi)

    def _volume(self, image_id):
        try:
            return self.volumes[image_id]
        except KeyError:
            raise exceptions.NotFound(image=image_id)

    def grow_image_volume(self, image_id, size_gib):
        self._maybe_fail('grow', image_id)
        volume = self._volume(image_id)
        assert size_gib > volume['size']
        volume['size'] = size_gib
        with open(self.path(image_id), 'r+b') as f:
            f.truncate(size_gib * units.Gi)

    def delete_image_volume(self, image_id, force=False):
        self._maybe_fail('delete', image_id)
        self._volume(image_id)
        del self.volumes[image_id]
        os.unlink(self.path(image_id))
        return True

    def delete_image(self, image_id):
        return self.delete_image_volume(image_id)

    def image_record(self, image_id):
        self._maybe_fail('image_record', image_id)
        volume = self._volume(image_id)
        return {'descr': volume['descr']}, dict(volume['metadata'])

    def give_up(self, image_id, marker):
        self.given_up[image_id] = marker

    def given_up_marker(self, image_id):
        return self.given_up.get(image_id)

    def forget_given_up(self, image_id):
        self.given_up.pop(image_id, None)

    def reap_given_up(self):
        pass

    def reap_deleted(self):
        pass

    def is_deleted(self, image_id):
        return False

    def get_image_metadata(self, image_id):
        self._maybe_fail('get_metadata', image_id)
        return dict(self._volume(image_id)['metadata'])

    def set_image_metadata(self, image_id, metadata):
        self._maybe_fail('set_metadata', image_id)
        assert all(isinstance(v, str) for v in metadata.values())
        self._volume(image_id)['metadata'].update(metadata)

    def volume_size_gib(self, image_id):
        self._maybe_fail('volume_size', image_id)
        return self._volume(image_id)['size']


class FakeAttachment(object):
    def __init__(self, path):
        self.device_path = path

    def open(self, mode):
        assert mode in ('rb', 'r+b')
        return open(self.device_path, mode)

    def extend(self):
        return os.stat(self.device_path).st_size


class FakeAttacher(object):
    def __init__(self, edf_client, settings):
        self.edf = edf_client
        self.settings = settings
        self.attached_now = set()
        self.attach_count = 0
        self.fail_attach = None
        self.initiator_iqn = 'iqn.2010-10.org.openstack:unit'

    def finish_pending(self):
        pass

    @contextlib.contextmanager
    def attached(self, image_id):
        if self.fail_attach is not None:
            raise self.fail_attach
        self.edf._volume(image_id)
        self.attach_count += 1
        self.attached_now.add(image_id)
        try:
            yield FakeAttachment(self.edf.path(image_id))
        finally:
            self.attached_now.discard(image_id)


@pytest.fixture
def small_gib(monkeypatch):
    monkeypatch.setattr(units, 'Gi', GIB)


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    edf_client = FakeEdf(str(tmp_path))
    made = {}

    def make_client(settings):
        edf_client.settings = settings
        return edf_client

    def make_attacher(client, settings):
        made['attacher'] = FakeAttacher(client, settings)
        return made['attacher']

    monkeypatch.setattr(store.edf, 'EdfClient', make_client)
    monkeypatch.setattr(store.attach, 'Attacher', make_attacher)
    return edf_client, made


REQUIRED = {'datera_san_ip': '10.0.0.5', 'datera_san_login': 'admin',
            'datera_san_password': 'secret'}


def _conf(group='glance_store', **overrides):
    conf = cfg.ConfigOpts()
    conf(args=[])
    conf.register_opts(store.Store.OPTIONS, group=group)
    for name, value in dict(REQUIRED, **overrides).items():
        conf.set_override(name, value, group=group)
    return conf


def _store(fakes, backend=None, **overrides):
    conf = _conf(group=backend or 'glance_store', **overrides)
    s = store.Store(conf, backend=backend)
    s.configure(re_raise_bsc=True)
    return s


def _loc(s, uri):
    loc = location.Location('datera', store.StoreLocation, s.conf, uri=uri,
                            backend=s.backend_group)
    return loc


def _add(s, data, size=None, image_id=IMAGE_ID, **kwargs):
    size = len(data) if size is None else size
    return s.add(image_id, io.BytesIO(data), size, 'sha512', **kwargs)


# -- configuration ----------------------------------------------------------

def test_capabilities_are_declared_honestly(fakes):
    s = _store(fakes)
    bits = capabilities.BitMasks
    assert s.is_capable(bits.READ_ACCESS, bits.WRITE_ACCESS,
                        bits.READ_OFFSET, bits.READ_CHUNK,
                        bits.DRIVER_REUSABLE)
    assert not s.is_capable(bits.WRITE_OFFSET)
    assert s.get_schemes() == ('datera',)


@pytest.mark.parametrize('missing', sorted(REQUIRED))
def test_missing_required_option_names_it(fakes, missing):
    with pytest.raises(exceptions.BadStoreConfiguration) as exc:
        _store(fakes, **{missing: ''})
    assert missing in str(exc.value)


def test_local_transport_needs_export_dir(fakes):
    with pytest.raises(exceptions.BadStoreConfiguration) as exc:
        _store(fakes, datera_transport='local')
    assert 'datera_local_export_dir' in str(exc.value)


def _store_from_file(tmp_path, line):
    """A store read from a glance-api.conf with the options plus ``line``.

    Values in a file reach the store as glance-api reads them (a
    set_override would be refused by oslo.config itself).
    """
    conf_file = tmp_path / 'glance-api.conf'
    conf_file.write_text('[glance_store]\ndatera_san_ip = 10.0.0.5\n'
                         'datera_san_login = a\ndatera_san_password = b\n'
                         '%s\n' % line)
    conf = cfg.ConfigOpts()
    conf.register_opts(store.Store.OPTIONS, group='glance_store')
    conf(args=[], default_config_files=[str(conf_file)])
    return store.Store(conf)


def test_invalid_option_value_in_config_file_disables_writes(fakes,
                                                             tmp_path):
    s = _store_from_file(tmp_path, 'datera_placement_mode = fastest')
    s.configure()
    assert not s.is_capable(capabilities.BitMasks.WRITE_ACCESS)
    with pytest.raises(exceptions.BadStoreConfiguration) as exc:
        s.configure_add()
    assert 'datera_placement_mode' in str(exc.value)


def test_unreachable_cluster_disables_writes(fakes):
    edf_client, _ = fakes
    edf_client.fail['check_connection'] = (
        exceptions.BadStoreConfiguration(
            store_name='datera', reason='cannot reach 10.0.0.5:7718'))
    conf = _conf()
    s = store.Store(conf)
    s.configure()
    assert not s.is_capable(capabilities.BitMasks.WRITE_ACCESS)
    with pytest.raises(exceptions.StoreAddDisabled):
        _add(s, b'data')


def test_options_reach_the_client_and_attacher(fakes, tmp_path):
    edf_client, made = fakes
    ca_file = tmp_path / 'ca.pem'
    ca_file.write_text('not checked here')
    _store(fakes, datera_san_port=7717, datera_tenant_id='images',
           datera_api_version='2.1', datera_ldap_server='corp',
           datera_ca_certificates_file=str(ca_file),
           datera_retry_attempts=2, datera_retry_interval=0.5,
           datera_operation_max_timeout=30, datera_transport='local',
           datera_local_export_dir=str(tmp_path),
           datera_initiator_name='iqn.2000-01.test:host1',
           datera_use_multipath=True,
           datera_glance_rootwrap_path='/usr/bin/glance-rootwrap',
           datera_glance_rootwrap_config='/etc/glance/rw.conf')
    s = edf_client.settings
    assert (s.san_ip, s.san_port, s.login, s.password) == (
        '10.0.0.5', 7717, 'admin', 'secret')
    assert (s.tenant, s.api_version, s.ldap_server, s.ca_file,
            s.insecure) == ('images', '2.1', 'corp', str(ca_file), False)
    assert (s.retry_attempts, s.retry_interval, s.operation_timeout) == (
        2, 0.5, 30)
    a = made['attacher'].settings
    assert (a.transport, a.local_export_dir, a.initiator_name,
            a.use_multipath) == ('local', str(tmp_path),
                                 'iqn.2000-01.test:host1', True)
    assert a.root_helper == '/usr/bin/glance-rootwrap /etc/glance/rw.conf'


def test_multi_store_options_come_from_the_backend_group(fakes):
    edf_client, _ = fakes
    _store(fakes, backend='fast', datera_san_ip='10.9.9.9')
    assert edf_client.settings.san_ip == '10.9.9.9'


# -- add --------------------------------------------------------------------

def test_add_known_size(fakes, small_gib):
    edf_client, made = fakes
    s = _store(fakes, datera_replica_count=2,
               datera_placement_mode='all_flash')
    data = os.urandom(GIB + 1)
    uri, size, md5, multihash, meta = _add(s, data)
    assert uri == 'datera://10.0.0.5:7718/app_instances/OS-IMAGE-' + IMAGE_ID
    assert size == len(data)
    assert md5 == hashlib.md5(data).hexdigest()
    assert multihash == hashlib.sha512(data).hexdigest()
    assert meta == {}
    volume = edf_client.volumes[IMAGE_ID]
    assert (volume['size'], volume['replicas'], volume['placement']) == (
        2, 2, 'all_flash')
    metadata = dict(volume['metadata'])
    assert metadata.pop('upload_heartbeat').isdigit()
    assert metadata == {
        'checksum': md5, 'length': str(len(data)), 'type': 'image',
        'multihash': multihash, 'hash_algo': 'sha512',
        'upload_state': 'complete',
        # one digest per datera_chunk_size (8 MiB) chunk
        'chunk_digests': stream.ChunkDigests.decode(
            metadata['chunk_digests'], len(data)).encode(),
        # who wrote it, for telling an abandoned upload from a live one
        'upload_host': made['attacher'].initiator_iqn,
        'upload_pid': str(os.getpid()), 'upload_boot': mock.ANY,
        'upload_token': mock.ANY}
    assert made['attacher'].attach_count == 1
    assert not made['attacher'].attached_now
    assert ('grow', IMAGE_ID) not in edf_client.calls
    with open(edf_client.path(IMAGE_ID), 'rb') as f:
        assert f.read(len(data)) == data


def test_add_without_hashing_algo_returns_the_old_four_tuple(fakes):
    s = _store(fakes)
    result = s.add(IMAGE_ID, io.BytesIO(b'abc'), 3)
    assert len(result) == 4
    assert result[2] == hashlib.md5(b'abc').hexdigest()


def test_add_in_multi_store_records_the_backend(fakes):
    s = _store(fakes, backend='fast')
    uri, _, _, _, meta = _add(s, b'abc')
    assert meta == {'store': 'fast'}
    assert uri.startswith(s.url_prefix)


def test_add_unknown_size_grows_while_attached(fakes, small_gib):
    edf_client, made = fakes
    s = _store(fakes, datera_chunk_size=16)
    data = os.urandom(5 * GIB + 3)
    uri, size, md5, _, _ = _add(s, data, size=0)
    assert size == len(data)
    grows = [c for c in edf_client.calls if c[0] == 'grow']
    # 1 -> 2 -> 4 -> 8 "GiB"
    assert len(grows) == 3
    assert edf_client.volumes[IMAGE_ID]['size'] == 8
    assert edf_client.volumes[IMAGE_ID]['metadata']['length'] == str(
        len(data))
    assert made['attacher'].attach_count == 1
    with open(edf_client.path(IMAGE_ID), 'rb') as f:
        assert f.read(len(data)) == data


def test_add_unknown_size_starts_at_default_image_size(fakes, small_gib):
    edf_client, _ = fakes
    s = _store(fakes, datera_default_image_size=3)
    _add(s, b'x' * 10, size=0)
    assert edf_client.volumes[IMAGE_ID]['size'] == 3


def test_thin_provisioning_does_not_write_zeros(fakes, small_gib):
    edf_client, _ = fakes
    s = _store(fakes, datera_thin_provisioning=True, datera_chunk_size=16)
    data = b'a' * 16 + bytes(32) + b'b' * 16
    _, size, md5, _, _ = _add(s, data)
    assert md5 == hashlib.md5(data).hexdigest()
    with open(edf_client.path(IMAGE_ID), 'rb') as f:
        assert f.read(len(data)) == data


def test_duplicate_keeps_the_existing_image(fakes):
    edf_client, _ = fakes
    s = _store(fakes)
    _add(s, b'first')
    with pytest.raises(exceptions.Duplicate):
        _add(s, b'second')
    assert ('delete', IMAGE_ID) not in edf_client.calls
    assert edf_client.volumes[IMAGE_ID]['metadata']['length'] == '5'


@pytest.mark.parametrize('data,size', [(b'x' * 10, 11), (b'x' * 12, 11)])
def test_size_mismatch_is_invalid_and_removes_the_volume(fakes, data, size):
    edf_client, made = fakes
    s = _store(fakes)
    with pytest.raises(exceptions.Invalid):
        _add(s, data, size=size)
    assert IMAGE_ID not in edf_client.volumes
    assert not made['attacher'].attached_now


@pytest.mark.parametrize('step,exc', [
    ('set_metadata', exceptions.BackendException('metadata PUT failed')),
    ('grow', exceptions.StorageFull()),
    ('grow', exceptions.BackendException('grow failed')),
])
def test_failure_after_create_removes_the_volume(fakes, small_gib, step,
                                                 exc):
    edf_client, made = fakes
    s = _store(fakes)
    edf_client.fail[step] = exc
    with pytest.raises(type(exc)):
        _add(s, b'y' * (2 * GIB), size=0)
    assert IMAGE_ID not in edf_client.volumes
    assert not made['attacher'].attached_now


def test_failure_of_the_final_metadata_write_removes_the_volume(fakes):
    edf_client, made = fakes
    s = _store(fakes)
    real = edf_client.set_image_metadata

    def fail_on_complete(image_id, metadata):
        if metadata.get('upload_state') == 'complete':
            raise exceptions.BackendException('lost')
        return real(image_id, metadata)

    edf_client.set_image_metadata = fail_on_complete
    with pytest.raises(exceptions.BackendException):
        _add(s, b'abc')
    assert IMAGE_ID not in edf_client.volumes


def test_storage_full_on_create_creates_nothing(fakes):
    edf_client, _ = fakes
    s = _store(fakes)
    edf_client.fail['create'] = exceptions.StorageFull()
    with pytest.raises(exceptions.StorageFull):
        _add(s, b'abc')
    assert ('delete', IMAGE_ID) not in edf_client.calls


def test_enospc_while_writing_is_storage_full(fakes, monkeypatch):
    edf_client, made = fakes
    s = _store(fakes)

    class FullDevice(io.BytesIO):
        def write(self, buf):
            raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(FakeAttachment, 'open',
                        lambda self, mode: FullDevice())
    with pytest.raises(exceptions.StorageFull):
        _add(s, b'abc')
    assert IMAGE_ID not in edf_client.volumes


def test_source_error_removes_the_volume(fakes):
    edf_client, made = fakes
    s = _store(fakes)

    class Broken(object):
        def read(self, size):
            raise IOError(errno.ECONNRESET, 'client went away')

    with pytest.raises(IOError) as caught:
        s.add(IMAGE_ID, Broken(), 0, 'sha512')
    assert caught.value.errno == errno.ECONNRESET
    assert IMAGE_ID not in edf_client.volumes
    assert not made['attacher'].attached_now


def test_exceptions_of_the_source_pass_through_unchanged(fakes):
    # glance's LimitingReader raises its own exceptions, which glance maps
    # to HTTP 413 only when they reach it as they are.
    edf_client, made = fakes
    s = _store(fakes)
    raised = type('ImageSizeLimitExceeded', (Exception,), {})()

    class Limiting(object):
        def __init__(self):
            self.calls = 0

        def read(self, size):
            self.calls += 1
            if self.calls > 2:
                raise raised
            return b'x' * size

    with pytest.raises(type(raised)) as caught:
        s.add(IMAGE_ID, Limiting(), 0, 'sha512')
    assert caught.value is raised
    assert IMAGE_ID not in edf_client.volumes
    assert not made['attacher'].attached_now


def test_unexpected_attach_error_is_a_backend_exception(fakes):
    edf_client, made = fakes
    s = _store(fakes)
    made['attacher'].fail_attach = RuntimeError('iscsiadm not found')
    with pytest.raises(exceptions.BackendException) as exc:
        _add(s, b'abc')
    assert IMAGE_ID in str(exc.value)
    assert IMAGE_ID not in edf_client.volumes


def test_cleanup_failure_does_not_hide_the_upload_error(fakes):
    edf_client, _ = fakes
    s = _store(fakes)
    edf_client.fail['delete'] = exceptions.BackendException('delete failed')
    with pytest.raises(exceptions.Invalid):
        _add(s, b'abc', size=4)


@pytest.mark.parametrize('image_id,algo,exc', [
    ('not-a-uuid', 'sha512', exceptions.Invalid),
    (IMAGE_ID, 'no-such-hash', exceptions.UnknownHashingAlgo),
])
def test_bad_arguments_are_refused_before_creating(fakes, image_id, algo,
                                                   exc):
    edf_client, _ = fakes
    s = _store(fakes)
    with pytest.raises(exc):
        s.add(image_id, io.BytesIO(b'abc'), 3, algo)
    assert not [c for c in edf_client.calls if c[0] == 'create']


def test_verifier_gets_every_byte(fakes):
    s = _store(fakes)
    seen = []

    class Verifier(object):
        def update(self, buf):
            seen.append(bytes(buf))

    _add(s, b'signed data', verifier=Verifier())
    assert b''.join(seen) == b'signed data'


# -- get, get_size ----------------------------------------------------------

def _stored(fakes, data, **overrides):
    s = _store(fakes, **overrides)
    uri = _add(s, data)[0]
    return s, _loc(s, uri)


def test_get_whole_image(fakes):
    data = os.urandom(100)
    s, loc = _stored(fakes, data, datera_chunk_size=16)
    chunks, size = s.get(loc)
    got = list(chunks)
    assert size == 100
    assert b''.join(got) == data
    assert all(len(c) <= 16 for c in got)
    assert not fakes[1]['attacher'].attached_now


@pytest.mark.parametrize('offset,length,expected', [
    (0, 10, 10), (7, 13, 13), (99, None, 1), (33, 1000, 67), (100, 5, 0)])
def test_get_with_offset_and_length(fakes, offset, length, expected):
    data = os.urandom(100)
    s, loc = _stored(fakes, data, datera_chunk_size=16)
    chunks, size = s.get(loc, offset=offset, chunk_size=length)
    assert size == expected
    assert b''.join(chunks) == data[offset:offset + expected]


def test_get_offset_past_the_end_is_invalid(fakes):
    s, loc = _stored(fakes, b'abc')
    with pytest.raises(exceptions.Invalid):
        s.get(loc, offset=4)


def _read_until_it_fails(store_, loc):
    """(the chunks handed out, the BackendException that ended the read)"""
    chunks, _ = store_.get(loc)
    delivered = []
    with pytest.raises(exceptions.BackendException) as exc:
        for chunk in chunks:
            delivered.append(chunk)
    return delivered, exc


def test_get_never_hands_out_a_chunk_that_changed_since_upload(fakes):
    edf_client, made = fakes
    data = os.urandom(64)
    s, loc = _stored(fakes, data, datera_chunk_size=16)
    digests = edf_client.volumes[IMAGE_ID]['metadata']['chunk_digests']
    assert stream.ChunkDigests.decode(digests, 64).covers(64)
    with open(edf_client.path(IMAGE_ID), 'r+b') as f:
        f.seek(40)
        f.write(bytes([data[40] ^ 1]))
    delivered, exc = _read_until_it_fails(s, loc)
    assert IMAGE_ID in str(exc.value)
    assert 'Chunk 2 (bytes 32 to 48)' in str(exc.value)
    # the chunks before it, and nothing of it
    assert b''.join(delivered) == data[:32]
    assert not made['attacher'].attached_now
    # partial reads are checked too: the corrupt chunk never leaves (its
    # first chunk is read, and checked, before get returns)
    with pytest.raises(exceptions.BackendException):
        s.get(loc, offset=41, chunk_size=2)
    assert not made['attacher'].attached_now
    chunks, _ = s.get(loc, offset=5, chunk_size=27)
    assert b''.join(chunks) == data[5:32]


def test_get_of_corrupt_image_without_digests_raises_at_the_end(fakes):
    """Images uploaded before chunk digests are checked by their md5."""
    edf_client, made = fakes
    s, loc = _stored(fakes, b'a' * 64, datera_chunk_size=16)
    del edf_client.volumes[IMAGE_ID]['metadata']['chunk_digests']
    with open(edf_client.path(IMAGE_ID), 'r+b') as f:
        f.write(b'b')
    delivered, exc = _read_until_it_fails(s, loc)
    assert IMAGE_ID in str(exc.value)
    assert 'Checksum mismatch' in str(exc.value)
    # the last chunk was held back
    assert len(b''.join(delivered)) == 48
    assert not made['attacher'].attached_now
    # A partial read cannot be checked and is served as stored.
    chunks, _ = s.get(loc, offset=0, chunk_size=10)
    assert b''.join(chunks) == b'b' + b'a' * 9


@pytest.mark.parametrize('value', [
    'sha256-64:16:AAAA', 'md5:16:' + 'A' * 44, 'sha256-64:0:', 'nonsense',
    'sha256-64:16:!!!'])
def test_unusable_chunk_digests_fall_back_to_the_md5(fakes, value, caplog):
    edf_client, _made = fakes
    data = os.urandom(64)
    s, loc = _stored(fakes, data, datera_chunk_size=16)
    edf_client.volumes[IMAGE_ID]['metadata']['chunk_digests'] = value
    chunks, _ = s.get(loc)
    assert b''.join(chunks) == data
    assert 'unusable chunk digests' in caplog.text
    assert IMAGE_ID in caplog.text


def test_get_attaches_before_returning_and_releases_on_close(fakes):
    edf_client, made = fakes
    s, loc = _stored(fakes, os.urandom(64), datera_chunk_size=16)
    chunks, _ = s.get(loc)
    assert IMAGE_ID in made['attacher'].attached_now
    next(chunks)
    chunks.close()
    assert not made['attacher'].attached_now


def test_get_releases_an_iterator_never_consumed(fakes):
    edf_client, made = fakes
    s, loc = _stored(fakes, os.urandom(64), datera_chunk_size=16)
    chunks, _ = s.get(loc)
    del chunks
    assert not made['attacher'].attached_now


def test_get_attach_failure_surfaces_from_get(fakes):
    edf_client, made = fakes
    s, loc = _stored(fakes, b'abc')
    made['attacher'].fail_attach = exceptions.BackendException('no export')
    with pytest.raises(exceptions.BackendException):
        s.get(loc)


def test_get_and_get_size_of_missing_image_raise_not_found(fakes):
    s = _store(fakes)
    loc = _loc(s, 'datera://10.0.0.5:7718/app_instances/OS-IMAGE-' +
               OTHER_ID)
    with pytest.raises(exceptions.NotFound):
        s.get(loc)
    with pytest.raises(exceptions.NotFound):
        s.get_size(loc)
    with pytest.raises(exceptions.NotFound):
        s.delete(loc)


def test_get_size_reads_metadata_without_attaching(fakes):
    edf_client, made = fakes
    s, loc = _stored(fakes, b'x' * 1234)
    before = made['attacher'].attach_count
    assert s.get_size(loc) == 1234
    assert made['attacher'].attach_count == before


def test_incomplete_upload_is_not_served(fakes):
    edf_client, _ = fakes
    s, loc = _stored(fakes, b'abc')
    edf_client.volumes[IMAGE_ID]['metadata']['upload_state'] = 'writing'
    with pytest.raises(exceptions.NotFound):
        s.get_size(loc)
    with pytest.raises(exceptions.NotFound):
        s.get(loc)


def test_original_driver_image_is_read_and_checked(fakes):
    edf_client, _ = fakes
    s = _store(fakes)
    data = os.urandom(300)
    edf_client.create_image_volume(IMAGE_ID, 1, 3, 'hybrid')
    with open(edf_client.path(IMAGE_ID), 'r+b') as f:
        f.write(data)
    # What the original driver recorded, with an int length turned into a
    # string by the API.
    edf_client.volumes[IMAGE_ID]['metadata'] = {
        'checksum': hashlib.md5(data).hexdigest(), 'length': '300',
        'type': 'image'}
    loc = _loc(s, 'datera://10.0.0.5:7718/app_instances/' + IMAGE_ID)
    assert s.get_size(loc) == 300
    chunks, size = s.get(loc)
    assert b''.join(chunks) == data
    s.delete(loc)
    assert IMAGE_ID not in edf_client.volumes


def test_image_without_recorded_length_falls_back_to_volume_size(fakes):
    edf_client, _ = fakes
    s = _store(fakes)
    edf_client.create_image_volume(IMAGE_ID, 2, 3, 'hybrid')
    loc = _loc(s, 'datera://10.0.0.5:7718/app_instances/OS-IMAGE-' +
               IMAGE_ID)
    assert s.get_size(loc) == 2 * units.Gi


def test_reads_go_to_the_configured_cluster_not_the_uri_host(fakes):
    edf_client, _ = fakes
    s, _ = _stored(fakes, b'abc')
    # The management address changed since the image was stored.
    loc = _loc(s, 'datera://old-address:7718/app_instances/OS-IMAGE-' +
               IMAGE_ID)
    assert s.get_size(loc) == 3


# -- delete -----------------------------------------------------------------

def test_delete(fakes):
    edf_client, _ = fakes
    s, loc = _stored(fakes, b'abc')
    s.delete(loc)
    assert IMAGE_ID not in edf_client.volumes
    with pytest.raises(exceptions.NotFound):
        s.delete(loc)


@pytest.mark.parametrize('exc,expected', [
    (exceptions.BackendException('cluster error'),
     exceptions.BackendException),
    (exceptions.InUseByStore(), exceptions.InUseByStore),
    (RuntimeError('surprise'), exceptions.BackendException),
])
def test_delete_failures_are_raised(fakes, exc, expected):
    edf_client, _ = fakes
    s, loc = _stored(fakes, b'abc')
    edf_client.fail['delete'] = exc
    with pytest.raises(expected):
        s.delete(loc)
    assert IMAGE_ID in edf_client.volumes


def test_operations_on_an_unconfigured_store_fail_clearly(fakes):
    s = store.Store(_conf(datera_san_ip=''))
    s.configure()
    loc = _loc(s, 'datera://10.0.0.5:7718/app_instances/OS-IMAGE-' +
               IMAGE_ID)
    with pytest.raises(exceptions.BackendException) as exc:
        s.get_size(loc)
    assert 'not configured' in str(exc.value)


@pytest.mark.parametrize('name', ['OS-IMAGE-' + IMAGE_ID, IMAGE_ID,
                                  'OS-' + IMAGE_ID])
def test_url_prefix_matches_locations_of_the_original_driver(fakes, name):
    # glance assigns legacy (single-store) locations to a multi-store
    # backend by this prefix when a deployment moves to multi-store.
    s = _store(fakes, backend='fast')
    assert ('datera://10.0.0.5:7718/app_instances/' + name).startswith(
        s.url_prefix)


@pytest.mark.parametrize('name,value', [
    ('datera_replica_count', '1000'),
    ('datera_replica_count', '0'),
    ('datera_operation_max_timeout', 'nan'),
    ('datera_operation_max_timeout', 'inf'),
    ('datera_operation_max_timeout', '0.5'),
    ('datera_retry_interval', 'nan'),
    ('datera_initiator_name', 'iqn.2010-10.org.example:a/b'),
    ('datera_initiator_name', 'glance host 1'),
    ('datera_ca_certificates_file', '/nonexistent/ca.pem'),
    ('datera_san_port', '0'),
    ('datera_chunk_size', '1073741825'),
])
def test_bad_values_in_the_config_file_disable_the_store_naming_them(
        fakes, tmp_path, name, value):
    s = _store_from_file(tmp_path, '%s = %s' % (name, value))
    s.configure()       # as glance-api does: it starts regardless
    assert not s.is_capable(capabilities.BitMasks.WRITE_ACCESS)
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        s.configure_add()
    assert name in str(caught.value)
    assert value in str(caught.value)


def test_port_out_of_range_is_refused_naming_the_option(fakes, tmp_path):
    s = _store_from_file(tmp_path, 'datera_san_port = 70000')
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        s.configure_add()
    assert 'datera_san_port' in str(caught.value)


def test_missing_local_export_dir_is_refused_at_start(fakes, tmp_path):
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        _store(fakes, datera_transport='local',
               datera_local_export_dir=str(tmp_path / 'missing'))
    assert 'datera_local_export_dir' in str(caught.value)
    assert 'no such folder' in str(caught.value)


@pytest.mark.parametrize('name', [
    'iqn.1993-08.org.debian:01:glance1', 'iqn.2004-10.com.example',
    'eui.02004567A425678D', 'naa.52004567BA64678D'])
def test_valid_initiator_names_are_accepted(fakes, name):
    _store(fakes, datera_initiator_name=name)
