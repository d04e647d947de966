"""datera_glance.attach against the EDF simulator's exports.

The ``local`` transport reads the by-path links the simulator makes for
each initiator in a volume's ACL (loop devices when running as root, so a
write past a volume's end fails as on a real LUN). Two Attachers with
different initiator names are two hosts.
"""

import os
import threading
import uuid

from glance_store import exceptions
import pytest

from datera_glance import attach
from datera_glance import edf

TENANT = '/root/glance'
GIB = 1024 ** 3


@pytest.fixture(scope='module', autouse=True)
def brick_in_process():
    """Run os-brick's privileged calls in this process (tests are root)."""
    if os.geteuid() != 0:
        pytest.skip('attaching volumes needs root (loop devices, privsep)')
    from os_brick.privileged import default
    default.set_client_mode(False)


def make_client(sim):
    return edf.EdfClient(edf.EdfSettings(
        san_ip=sim.host, san_port=sim.port, login=sim.username,
        password=sim.password, ca_file=sim.ca_file, tenant=TENANT,
        retry_attempts=2, retry_interval=0.05, operation_timeout=30.0))


def make_host(sim, tmp_path, name, client=None):
    return attach.Attacher(client or make_client(sim), attach.AttachSettings(
        transport='local', local_export_dir=sim.export_dir,
        initiator_name='iqn.2010-10.org.openstack:' + name,
        lock_path=str(tmp_path / 'locks'), root_helper='true',
        export_timeout=20.0))


def new_image(client, size_gib=1):
    image = str(uuid.uuid4())
    client.create_image_volume(image, size_gib, 3, 'hybrid', True)
    return image


def si_state(sim, image):
    ai = [a for a in sim.state()['app_instances'] if a['id'] == image][0]
    return ai['admin_state'], ai['storage_instances'][0]


def assert_not_exported(sim, image):
    admin_state, si = si_state(sim, image)
    assert admin_state == 'offline'
    assert si['acl_policy']['initiators'] == []
    assert si['exported_to'] == []
    links = [name for _, _, names in os.walk(sim.export_dir)
             for name in names]
    assert links == []


@pytest.fixture
def sim(edf_sim, tmp_path):
    os.makedirs(str(tmp_path / 'locks'))
    return edf_sim


def test_write_read_and_detach_leaves_nothing_exported(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    image = new_image(host.edf)
    with host.attached(image) as attachment:
        assert os.path.exists(attachment.device_path)
        with attachment.open('r+b') as f:
            f.seek(12345)
            f.write(b'datera')
            f.flush()
            os.fsync(f.fileno())
    with host.attached(image) as attachment:
        with attachment.open('rb') as f:
            f.seek(12345)
            assert f.read(6) == b'datera'
            f.seek(0, os.SEEK_END)
            assert f.tell() == GIB
    assert_not_exported(sim, image)


def test_two_hosts_attach_one_image_at_once(sim, tmp_path):
    host_a = make_host(sim, tmp_path, 'host-a')
    host_b = make_host(sim, tmp_path, 'host-b')
    image = new_image(host_a.edf)
    with host_a.attached(image) as attachment:
        with attachment.open('r+b') as f:
            f.write(b'shared image')

    both_in = threading.Barrier(2, timeout=30)
    a_out = threading.Event()
    seen = {}
    errors = []

    def reader(host, name, leave_first):
        try:
            with host.attached(image) as attachment:
                both_in.wait()
                with attachment.open('rb') as f:
                    seen[name] = f.read(12)
                if leave_first:
                    return
                # Still attached after the other host left.
                assert a_out.wait(30)
                assert os.path.exists(attachment.device_path)
                assert si_state(sim, image)[0] == 'online'
                with attachment.open('rb') as f:
                    seen[name + '-after'] = f.read(12)
        except BaseException as e:
            errors.append(e)
            both_in.abort()
        finally:
            if leave_first:
                a_out.set()
    threads = [threading.Thread(target=reader, args=(host_a, 'a', True)),
               threading.Thread(target=reader, args=(host_b, 'b', False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert seen == {'a': b'shared image', 'b': b'shared image',
                    'b-after': b'shared image'}
    assert_not_exported(sim, image)


def test_one_host_two_users_share_the_export(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    image = new_image(host.edf)
    with host.attached(image):
        with host.attached(image) as inner:
            path = inner.device_path
        assert os.path.exists(path), 'the outer user was cut off'
        assert si_state(sim, image)[0] == 'online'
    assert_not_exported(sim, image)


def test_abandoned_reader_leaves_no_export(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    image = new_image(host.edf)

    def chunks():
        with host.attached(image) as attachment:
            with attachment.open('rb') as f:
                while True:
                    yield f.read(4096)
    it = chunks()
    next(it)
    assert si_state(sim, image)[0] == 'online'
    it.close()
    assert_not_exported(sim, image)


def test_failed_export_leaves_nothing_behind(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    image = new_image(host.edf)
    host.edf.ensure_initiator(host.initiator_iqn, 'OpenStack-a')
    sim.fail_next('PUT', r'/app_instances/[^/]+$', kind='500')
    with pytest.raises(exceptions.BackendException, match=image):
        with host.attached(image):
            pytest.fail('attached despite a failed export')
    assert_not_exported(sim, image)


def test_failure_while_attached_still_detaches(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    image = new_image(host.edf)
    with pytest.raises(ZeroDivisionError):
        with host.attached(image):
            1 / 0
    assert_not_exported(sim, image)


def test_different_images_attach_in_parallel(sim, tmp_path):
    host = make_host(sim, tmp_path, 'host-a')
    images = [new_image(host.edf) for _ in range(3)]
    inside = threading.Barrier(len(images), timeout=30)
    errors = []

    def use(image):
        try:
            with host.attached(image) as attachment:
                inside.wait()    # all attached at the same time
                with attachment.open('rb') as f:
                    f.read(512)
        except BaseException as e:
            errors.append(e)
            inside.abort()
    threads = [threading.Thread(target=use, args=(i,)) for i in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for image in images:
        assert_not_exported(sim, image)


def test_grow_while_attached_is_seen_by_the_host(block_sim, tmp_path):
    os.makedirs(str(tmp_path / 'locks'))
    host = make_host(block_sim, tmp_path, 'host-a')
    image = new_image(host.edf)
    with host.attached(image) as attachment:
        with attachment.open('r+b') as f:
            f.seek(GIB)
            with pytest.raises(OSError):
                # A block device ends where the volume ends.
                f.write(b'x' * 4096)
                f.flush()
        host.edf.grow_image_volume(image, 2)
        assert attachment.extend() == 2 * GIB
        with attachment.open('r+b') as f:
            f.seek(GIB + 4096)
            f.write(b'beyond')
            f.flush()
            os.fsync(f.fileno())
        with attachment.open('rb') as f:
            f.seek(GIB + 4096)
            assert f.read(6) == b'beyond'
    assert_not_exported(block_sim, image)
