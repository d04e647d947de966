"""Unit tests for datera_glance.attach.

The Datera side is a recording stand-in for ``edf.EdfClient``; the host
side is real os-brick with its LOCAL connector over files in a temporary
folder (no privileges needed), or os-brick's connector factory stubbed
where a test is about which connector is built.
"""

import contextlib
import json
import os
import threading
import types
from unittest import mock

from glance_store import exceptions
import pytest

from datera_glance import attach

IMAGE = '6a5c4e3b-0f7f-4b8e-9a55-0c1a2b3c4d5e'
TARGET = 'iqn.2013-05.com.daterainc:tc:01:sn:9b8e220259a8a79f'
ACCESS = {'iqn': TARGET, 'ips': ['172.28.41.43', '172.29.41.56']}


# -- connection properties ----------------------------------------------------

def test_iscsi_properties_are_what_cinder_hands_os_brick():
    assert attach.connection_properties(ACCESS, 'iscsi', False) == {
        'target_discovered': False,
        'target_portal': '172.28.41.43:3260',
        'target_iqn': TARGET,
        'target_lun': 0,
        'discard': False,
    }


def test_multipath_properties_list_every_portal():
    props = attach.connection_properties(ACCESS, 'iscsi', True)
    assert props['target_portal'] == '172.28.41.43:3260'
    assert props['target_portals'] == ['172.28.41.43:3260',
                                       '172.29.41.56:3260']
    assert props['target_iqns'] == [TARGET, TARGET]
    assert props['target_luns'] == [0, 0]


def test_ipv6_portal_is_bracketed():
    props = attach.connection_properties(
        {'iqn': TARGET, 'ips': ['fd00::1']}, 'iscsi', False)
    assert props['target_portal'] == '[fd00::1]:3260'


def test_local_properties_point_at_the_simulator_export_link():
    props = attach.connection_properties(
        ACCESS, 'local', False, 'iqn.host-a', '/srv/exports')
    assert props['device_path'] == (
        '/srv/exports/iqn.host-a/ip-172.28.41.43:3260-iscsi-%s-lun-0'
        % TARGET)
    assert props['target_portal'] == '172.28.41.43:3260'


def test_local_transport_needs_an_export_dir():
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_local_export_dir'):
        attach.connection_properties(ACCESS, 'local', False, 'iqn.a', None)


@pytest.mark.parametrize('access', [{}, {'iqn': TARGET, 'ips': []},
                                    {'ips': ['10.0.0.1']}])
def test_missing_access_is_a_backend_error(access):
    with pytest.raises(exceptions.BackendException):
        attach.connection_properties(access, 'iscsi', False)


def test_unknown_transport_is_a_configuration_error():
    with pytest.raises(exceptions.BadStoreConfiguration,
                       match='datera_transport'):
        attach.transport_factory(attach.AttachSettings(transport='fc'))


# -- initiator names ------------------------------------------------------

def test_derived_initiator_name_is_stable_and_per_host():
    a = attach.derived_initiator_name('host-a')
    assert a == attach.derived_initiator_name('host-a')
    assert a != attach.derived_initiator_name('host-b')
    assert a.startswith('iqn.2010-10.org.openstack:datera-glance:')


def test_registered_name_is_openstack_and_8_hex():
    name = attach.initiator_display_name('iqn.1994-05.com.redhat:abc')
    assert name.startswith('OpenStack-') and len(name) == 18
    int(name[len('OpenStack-'):], 16)


@pytest.fixture
def lock_dir(tmp_path):
    return str(tmp_path / 'locks')


def _settings(lock_dir, export_dir=None, **kw):
    values = dict(transport='local', local_export_dir=export_dir,
                  initiator_name='iqn.2010-10.org.openstack:host-a',
                  lock_path=lock_dir, export_timeout=2.0,
                  root_helper='true')
    if kw.get('transport') == 'iscsi':
        values['initiator_name'] = None     # the host's own, from os-brick
    values.update(kw)
    return attach.AttachSettings(**values)


@pytest.fixture
def host_initiator():
    """The host's iSCSI initiator name, as os-brick reads it."""
    with mock.patch.object(attach.brick_connector,
                           'get_connector_properties',
                           return_value={'initiator': 'iqn.host:brick'}):
        yield 'iqn.host:brick'


def test_initiator_name_comes_from_os_brick_when_the_host_has_one(lock_dir):
    os.makedirs(lock_dir)
    with mock.patch.object(attach.brick_connector,
                           'get_connector_properties',
                           return_value={'initiator': 'iqn.host:brick'}):
        attacher = attach.Attacher(FakeEdf(), _settings(
            lock_dir, transport='iscsi', initiator_name=None))
    assert attacher.initiator_iqn == 'iqn.host:brick'


def test_iscsi_host_without_an_initiator_name_is_a_configuration_error(
        lock_dir):
    os.makedirs(lock_dir)
    with mock.patch.object(attach.brick_connector,
                           'get_connector_properties', return_value={}):
        with pytest.raises(exceptions.BadStoreConfiguration) as caught:
            attach.Attacher(FakeEdf(), _settings(
                lock_dir, transport='iscsi', initiator_name=None))
    assert '/etc/iscsi/initiatorname.iscsi' in str(caught.value)
    assert 'datera_transport' in str(caught.value)


def test_iscsi_initiator_name_os_brick_cannot_read_names_why(lock_dir):
    os.makedirs(lock_dir)
    with mock.patch.object(attach.brick_connector,
                           'get_connector_properties',
                           side_effect=FileNotFoundError('sudo')):
        with pytest.raises(exceptions.BadStoreConfiguration) as caught:
            attach.Attacher(FakeEdf(), _settings(
                lock_dir, transport='iscsi', initiator_name=None))
    assert 'sudo' in str(caught.value)
    assert 'datera_glance_rootwrap_path' in str(caught.value)


def test_initiator_name_option_is_refused_under_iscsi(lock_dir):
    # iscsiadm logs in with the host's own name: the option cannot apply.
    os.makedirs(lock_dir)
    with pytest.raises(exceptions.BadStoreConfiguration) as caught:
        attach.Attacher(FakeEdf(), _settings(
            lock_dir, transport='iscsi', initiator_name='iqn.2010-10.x:a'))
    assert 'datera_initiator_name' in str(caught.value)


def test_local_transport_derives_a_name_without_the_option(lock_dir):
    os.makedirs(lock_dir)
    attacher = attach.Attacher(FakeEdf(), _settings(
        lock_dir, transport='local', initiator_name=None))
    assert attacher.initiator_iqn == attach.derived_initiator_name()


@pytest.mark.usefixtures('host_initiator')
def test_iscsi_transport_uses_os_brick_iscsi_connector(lock_dir):
    os.makedirs(lock_dir)
    with mock.patch.object(attach.brick_connector.InitiatorConnector,
                           'factory') as factory:
        attach.Attacher(FakeEdf(), _settings(
            lock_dir, transport='iscsi', use_multipath=True,
            root_helper='sudo glance-rootwrap /etc/glance/rootwrap.conf'))
    factory.assert_called_once_with(
        'ISCSI', 'sudo glance-rootwrap /etc/glance/rootwrap.conf',
        use_multipath=True)


# -- the attach / detach sequence --------------------------------------------


class FakeEdf:
    """Records the EdfClient calls and plays the simulator's exports."""

    def __init__(self, export_dir=None, backing=None):
        self.calls = []
        self.export_dir = export_dir
        self.backing = backing
        self.fail = {}
        self.lock = threading.Lock()
        self.settings = types.SimpleNamespace(san_ip='192.0.2.1',
                                              san_port=7718)
        self.tenant = '/root'

    @contextlib.contextmanager
    def operation(self, timeout=None, retries=True):
        yield

    def _record(self, name, *args):
        with self.lock:
            self.calls.append((name,) + args)
        if name in self.fail:
            raise self.fail[name]

    def ensure_initiator(self, iqn, name):
        self._record('ensure_initiator', iqn)

    def export_to(self, image_id, iqn, name=None):
        self._record('export_to', image_id, iqn)
        if self.export_dir:
            link = attach.local_device_path(self.export_dir, iqn,
                                            ACCESS['ips'][0], TARGET)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(self.backing, link)
        return dict(ACCESS)

    def wait_export_ready(self, image_id, timeout):
        self._record('wait_export_ready', image_id)

    def unexport_from(self, image_id, iqn):
        self._record('unexport_from', image_id, iqn)

    def names(self):
        return [c[0] for c in self.calls]


@pytest.fixture
def volume(tmp_path):
    path = tmp_path / 'volume'
    path.write_bytes(b'0123456789')
    return str(path)


@pytest.fixture
def host(tmp_path, lock_dir, volume):
    os.makedirs(lock_dir)
    edf = FakeEdf(str(tmp_path / 'exports'), volume)
    return edf, attach.Attacher(edf, _settings(lock_dir,
                                               str(tmp_path / 'exports')))


def test_attach_exports_waits_connects_and_detach_unexports(host):
    edf, attacher = host
    with attacher.attached(IMAGE) as attachment:
        assert edf.names() == ['ensure_initiator', 'export_to',
                               'wait_export_ready']
        with attachment.open('rb') as f:
            assert f.read() == b'0123456789'
    assert edf.names()[-1] == 'unexport_from'
    assert edf.calls[-1] == ('unexport_from', IMAGE, attacher.initiator_iqn)


def test_initiator_is_registered_once(host):
    edf, attacher = host
    for _ in range(2):
        with attacher.attached(IMAGE):
            pass
    assert edf.names().count('ensure_initiator') == 1


def test_exception_in_the_block_still_detaches(host):
    edf, attacher = host
    with pytest.raises(RuntimeError):
        with attacher.attached(IMAGE):
            raise RuntimeError('write failed')
    assert edf.names()[-1] == 'unexport_from'


def test_closing_a_generator_mid_read_detaches(host):
    edf, attacher = host

    def reader():
        with attacher.attached(IMAGE) as attachment:
            with attachment.open('rb') as f:
                while True:
                    yield f.read(1)
    it = reader()
    assert next(it) == b'0'
    assert 'unexport_from' not in edf.names()
    it.close()
    assert edf.names()[-1] == 'unexport_from'


def test_failed_export_wait_unexports_and_raises(host):
    edf, attacher = host
    edf.fail['wait_export_ready'] = exceptions.BackendException('slow')
    with pytest.raises(exceptions.BackendException, match='slow'):
        with attacher.attached(IMAGE):
            pytest.fail('must not get here')
    assert edf.names()[-1] == 'unexport_from'


def test_failed_release_does_not_fail_the_transfer(host, lock_dir):
    edf, attacher = host
    edf.fail['unexport_from'] = exceptions.BackendException('acl')
    with attacher.attached(IMAGE):
        pass    # the data is complete: leaving must not raise
    assert edf.names().count('unexport_from') == 1
    # The next operation against the cluster finishes the release.
    del edf.fail['unexport_from']
    attacher.finish_pending()
    assert edf.names().count('unexport_from') == 2
    assert os.listdir(lock_dir) == []
    attacher.finish_pending()
    assert edf.names().count('unexport_from') == 2, 'nothing left to do'


def test_release_leaves_no_lock_or_holders_file(host, lock_dir):
    edf, attacher = host
    with attacher.attached(IMAGE):
        assert sorted(f.rsplit('.', 1)[1] for f in os.listdir(lock_dir)) == [
            'holders', 'lock']
    assert os.listdir(lock_dir) == []


def test_what_a_crashed_process_left_is_released(host, lock_dir):
    edf, attacher = host
    with attacher.attached(IMAGE):
        holders = [f for f in os.listdir(lock_dir) if f.endswith('.holders')]
        path = os.path.join(lock_dir, holders[0])
        with open(path) as f:
            record = json.load(f)
    # As left by a process killed while attached (pid 2**22+1 is unused).
    record['holders'] = ['4194305:dead']
    with open(path, 'w') as f:
        json.dump(record, f)
    assert attacher.stale_images() == [IMAGE]
    attacher.finish_pending()
    assert edf.names().count('unexport_from') == 2
    assert os.listdir(lock_dir) == []


def test_two_clusters_do_not_share_attach_state(tmp_path, lock_dir, volume):
    os.makedirs(lock_dir)
    one, two = (FakeEdf(str(tmp_path / 'exports'), volume)
                for _ in range(2))
    two.settings = types.SimpleNamespace(san_ip='192.0.2.2', san_port=7718)
    a = attach.Attacher(one, _settings(lock_dir, str(tmp_path / 'exports')))
    b = attach.Attacher(two, _settings(lock_dir, str(tmp_path / 'exports')))
    with a.attached(IMAGE):
        with b.attached(IMAGE):
            # Same image id, same host, other cluster: its own export.
            assert two.names().count('wait_export_ready') == 1
        assert two.names().count('unexport_from') == 1
    assert one.names().count('unexport_from') == 1
    assert os.listdir(lock_dir) == []


def test_unexport_failure_does_not_hide_the_original_error(host):
    edf, attacher = host
    edf.fail['unexport_from'] = exceptions.BackendException('acl')
    with pytest.raises(RuntimeError, match='original'):
        with attacher.attached(IMAGE):
            raise RuntimeError('original')


def test_same_host_users_share_one_export(host):
    edf, attacher = host
    with attacher.attached(IMAGE):
        with attacher.attached(IMAGE):
            pass
        assert 'unexport_from' not in edf.names(), (
            'the first user must not be cut off')
    assert edf.names().count('unexport_from') == 1
    assert edf.names().count('wait_export_ready') == 1


def test_holders_of_dead_processes_do_not_pin_the_export(host, lock_dir):
    edf, attacher = host
    with attacher.attached(IMAGE):
        holders = [f for f in os.listdir(lock_dir) if f.endswith('.holders')]
        assert len(holders) == 1
        path = os.path.join(lock_dir, holders[0])
    # A process that died while attached (pid 2**22+1 does not exist).
    with open(path, 'w') as f:
        f.write('["4194305:dead"]')
    with attacher.attached(IMAGE):
        pass
    assert edf.names().count('unexport_from') == 2
    assert not os.path.exists(path)


def test_two_hosts_do_not_share_holders(tmp_path, lock_dir, volume):
    os.makedirs(lock_dir)
    edf = FakeEdf(str(tmp_path / 'exports'), volume)
    a = attach.Attacher(edf, _settings(lock_dir, str(tmp_path / 'exports'),
                                       initiator_name='iqn.2010-10.x:a'))
    b = attach.Attacher(edf, _settings(lock_dir, str(tmp_path / 'exports'),
                                       initiator_name='iqn.2010-10.x:b'))
    with a.attached(IMAGE):
        with b.attached(IMAGE):
            pass
        assert ('unexport_from', IMAGE, 'iqn.2010-10.x:b') in edf.calls
    assert ('unexport_from', IMAGE, 'iqn.2010-10.x:a') in edf.calls


def test_attach_of_one_image_does_not_block_another(host):
    edf, attacher = host
    inside = threading.Event()
    release = threading.Event()
    other_done = threading.Event()

    def slow_wait(image_id, timeout):
        if image_id == IMAGE:
            inside.set()
            assert release.wait(5)
    edf.wait_export_ready = slow_wait

    def first():
        with attacher.attached(IMAGE):
            pass
    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(5)
    other = IMAGE[:-1] + 'f'

    def second():
        with attacher.attached(other):
            other_done.set()
    t2 = threading.Thread(target=second)
    t2.start()
    try:
        assert other_done.wait(5), 'another image waited for the lock'
    finally:
        release.set()
        t.join(5)
        t2.join(5)


def test_same_image_attach_is_serialized(host):
    edf, attacher = host
    inside = threading.Event()
    release = threading.Event()
    second_done = threading.Event()

    def slow_wait(image_id, timeout):
        inside.set()
        assert release.wait(5)
    edf.wait_export_ready = slow_wait

    def first():
        with attacher.attached(IMAGE):
            pass

    def second():
        with attacher.attached(IMAGE):
            second_done.set()
    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(5)
    t2 = threading.Thread(target=second)
    t2.start()
    try:
        assert not second_done.wait(0.3), 'attach ran inside another attach'
    finally:
        release.set()
        t.join(5)
        t2.join(5)
    assert second_done.is_set()


@pytest.mark.usefixtures('host_initiator')
def test_iscsi_attach_hands_os_brick_its_own_device_info_back(lock_dir):
    os.makedirs(lock_dir)
    brick = mock.Mock()
    info = {'type': 'block', 'path': '/dev/sdz', 'scsi_wwn': '36e00'}
    brick.connect_volume.return_value = info
    brick.extend_volume.return_value = 5 * 1024 ** 3
    edf = FakeEdf()
    with mock.patch.object(attach.brick_connector.InitiatorConnector,
                           'factory', return_value=brick):
        attacher = attach.Attacher(edf, _settings(
            lock_dir, transport='iscsi', use_multipath=True))
    with attacher.attached(IMAGE) as attachment:
        assert attachment.device_path == '/dev/sdz'
        assert attachment.extend() == 5 * 1024 ** 3
        assert not brick.disconnect_volume.called
    props = brick.connect_volume.call_args[0][0]
    assert props['target_portals'] == ['172.28.41.43:3260',
                                       '172.29.41.56:3260']
    brick.disconnect_volume.assert_called_once_with(props, info, force=True)
    brick.extend_volume.assert_called_once_with(props)
    assert edf.names()[-1] == 'unexport_from'


@pytest.mark.usefixtures('host_initiator')
def test_iscsi_connect_failure_unexports_and_names_the_image(lock_dir):
    os.makedirs(lock_dir)
    brick = mock.Mock()
    brick.connect_volume.side_effect = OSError('iscsiadm: not found')
    edf = FakeEdf()
    with mock.patch.object(attach.brick_connector.InitiatorConnector,
                           'factory', return_value=brick):
        attacher = attach.Attacher(edf, _settings(lock_dir,
                                                  transport='iscsi'))
    with pytest.raises(exceptions.BackendException, match=IMAGE):
        with attacher.attached(IMAGE):
            pytest.fail('attached without a device')
    assert edf.names()[-1] == 'unexport_from'


# -- the attachment -------------------------------------------------------

def test_open_for_writing_never_truncates(host, volume):
    edf, attacher = host
    with attacher.attached(IMAGE) as attachment:
        with attachment.open('r+b') as f:
            f.seek(2)
            f.write(b'xy')
    with open(volume, 'rb') as f:
        assert f.read() == b'01xy456789'


def test_open_refuses_truncating_modes(host):
    edf, attacher = host
    with attacher.attached(IMAGE) as attachment:
        for mode in ('wb', 'w+b', 'ab'):
            with pytest.raises(ValueError):
                attachment.open(mode)


def test_extend_of_a_regular_file_reports_its_new_size(host, volume):
    edf, attacher = host
    with attacher.attached(IMAGE) as attachment:
        with open(volume, 'ab') as f:
            f.truncate(4096)
        assert attachment.extend() == 4096


def test_local_connect_waits_for_the_link_then_gives_up(lock_dir, tmp_path):
    os.makedirs(lock_dir)
    edf = FakeEdf()     # never creates the export link
    attacher = attach.Attacher(edf, _settings(
        lock_dir, str(tmp_path / 'exports'), export_timeout=0.2))
    with pytest.raises(exceptions.BackendException, match='did not appear'):
        with attacher.attached(IMAGE):
            pass
    assert edf.names()[-1] == 'unexport_from'


def test_lock_path_defaults_to_a_private_folder(tmp_path):
    conf = attach.cfg.CONF
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(
            attach.tempfile, 'gettempdir', return_value=str(tmp_path)))
        stack.enter_context(mock.patch.object(attach, '_private_lock_dir',
                                              None))
        conf.set_override('lock_path', None, 'oslo_concurrency')
        try:
            path = attach._setup_brick(attach.AttachSettings(
                transport='local', root_helper='true'))
            assert conf.oslo_concurrency.lock_path == path
        finally:
            conf.clear_override('lock_path', 'oslo_concurrency')
    assert path.startswith(str(tmp_path))
    assert os.stat(path).st_mode & 0o077 == 0


# -- rootwrap filters -----------------------------------------------------

FILTERS_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'etc',
                           'glance', 'rootwrap.d')


def _allowed(cmd):
    from oslo_rootwrap import wrapper
    # load_filters always adds a bare privsep-helper filter of its own;
    # judge only the lines of datera.filters.
    ours = [f for f in wrapper.load_filters([FILTERS_DIR])
            if f.name.startswith('datera-')]
    return any(f.match(cmd) for f in ours)


@pytest.mark.parametrize('cmd', [
    ['privsep-helper', '--config-file', '/etc/glance/glance-api.conf',
     '--privsep_context', 'os_brick.privileged.default',
     '--privsep_sock_path', '/tmp/tmpa1b2/privsep.sock'],
    ['privsep-helper', '--config-file', '/etc/glance/glance-api.conf',
     '--privsep_context', 'datera_glance.privileged.device_access',
     '--privsep_sock_path', '/tmp/tmpa1b2/privsep.sock'],
])
def test_rootwrap_allows_what_the_driver_needs(cmd):
    assert _allowed(cmd)


@pytest.mark.parametrize('cmd', [
    ['privsep-helper', '--config-file', '/etc/glance/glance-api.conf',
     '--privsep_context', 'some.other.context',
     '--privsep_sock_path', '/tmp/x'],
    # The host's own disks (root-equivalent): no chown of any device.
    ['chown', '1000', '/dev/sda'],
    ['chown', '1000', '/dev/sdb'],
    ['chown', '0', '/dev/dm-3'],
    ['chown', '1000', '/dev/loop0'],
    ['chown', '1000', '/dev/../etc/shadow'],
    ['chown', '1000', '/etc/shadow'],
    ['chown', 'glance', '/dev/sdb'],
    ['chmod', '0777', '/dev/sdb'],
    ['tee', '/dev/sdb'],
    ['dd', 'if=/dev/zero', 'of=/dev/sdb'],
    ['sh', '-c', 'id'],
])
def test_rootwrap_refuses_everything_else(cmd):
    assert not _allowed(cmd)
