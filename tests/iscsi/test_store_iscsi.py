"""The store with ``datera_transport = iscsi``, end to end on the fake kernel.

glance_store's public API drives the Datera store, whose Attacher uses
os-brick's real ISCSIConnector (privsep in this process, as root) against
the simulator started with ``iscsi_target``: each exported storage
instance is a real tgt target with the IQN and portals the REST API
reports and the ACL the driver set. The fake kernel (fake_kernel.py)
stands in for open-iscsi, the SCSI midlayer and udev; the target judges
every login. A second host is a child process with a fake kernel of its
own (host_child.py).
"""

import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import uuid

from glance_store import exceptions
from glance_store import multi_backend
from oslo_config import cfg
import pytest

from datera_edf_sim import fixture as sim_fixture
from datera_edf_sim import iscsi_target as iscsi_target_mod
from datera_glance import attach
from datera_glance_dev import stores
from tests.iscsi import fake_kernel as fk

HERE = os.path.dirname(os.path.abspath(__file__))
BACKEND = 'iscsi1'
MiB = 1024 * 1024
GiB = 1024 * MiB
BLOCK = stores.IMAGE_BLOCK


@pytest.fixture(scope='module')
def iscsi_sim(private_mount_namespace, tmp_path_factory):
    """A simulator whose exports a real tgtd serves."""
    data_dir = str(tmp_path_factory.mktemp('edf-iscsi'))
    with sim_fixture.running_simulator(data_dir, iscsi_target=True) as sim:
        yield sim


def iscsi_options(sim, **overrides):
    options = stores.datera_options(sim, datera_transport='iscsi',
                                    datera_local_export_dir=None)
    options.update(overrides)
    return options


@pytest.fixture
def iscsi_store(fake_kernel, iscsi_sim, glance_conf):
    """The store as backend ``iscsi1``, attaching over iSCSI."""
    def make(**overrides):
        assert stores.configure_multi_store(
            glance_conf, {BACKEND: iscsi_options(iscsi_sim, **overrides)},
            BACKEND) == 1
        return multi_backend.get_store_from_store_identifier(BACKEND)
    return make


def add(image_id, image, size):
    return multi_backend.add_with_multihash(cfg.CONF, image_id, image, size,
                                            BACKEND, 'sha256')


def read_all(uri, offset=0, chunk_size=None):
    chunks, size = multi_backend.get(uri, BACKEND, offset=offset,
                                     chunk_size=chunk_size)
    digest = hashlib.sha256()
    count = 0
    for chunk in chunks:
        digest.update(chunk)
        count += len(chunk)
    return digest.hexdigest(), count


def app_instance(sim, image_id):
    for ai in sim.state().get('app_instances', []):
        if ai['id'] == image_id:
            return ai
    return None


def assert_nothing_left(kernel, sim, image_id=None):
    """Nothing stays on the host or exported to it.

    No session, device, link, node record or loop device on the host, and
    no ACL entry on the cluster.
    """
    assert kernel.leftovers() == {}
    for ai in sim.state().get('app_instances', []):
        if image_id is None or ai['id'] == image_id:
            for si in ai['storage_instances']:
                assert si['acl_policy']['initiators'] == []


def test_known_size_upload_reads_back_whole_and_in_part(iscsi_store,
                                                        iscsi_sim,
                                                        fake_kernel):
    iscsi_store()
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(5 * BLOCK + 4097)
    uri, size, checksum, multihash, _meta = add(image_id, image, image.size)
    assert (size, multihash) == (image.size, image.sha256)

    assert read_all(uri) == (image.sha256, image.size)
    chunks, _ = multi_backend.get(uri, BACKEND, offset=BLOCK - 3,
                                  chunk_size=BLOCK + 7)
    assert b''.join(chunks) == image.bytes_at(BLOCK - 3, BLOCK + 7)
    # every attach went through an iSCSI login to the target
    logins = [line for line in fake_kernel.calls() if '--login' in line]
    assert logins
    ai = app_instance(iscsi_sim, image_id)
    target_iqn = ai['storage_instances'][0]['iqn']
    assert all(target_iqn in line for line in logins)
    assert_nothing_left(fake_kernel, iscsi_sim, image_id)
    multi_backend.delete(uri, BACKEND)
    assert app_instance(iscsi_sim, image_id) is None


def test_unknown_size_upload_grows_through_extend_volume(iscsi_store,
                                                         iscsi_sim,
                                                         fake_kernel):
    """The host sees the grow through os-brick's extend_volume.

    The fake kernel's rescan reads the new capacity from the target.
    """
    iscsi_store(datera_default_image_size=1)
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(GiB + 3 * MiB + 11, track=True)
    uri, size, _checksum, multihash, _meta = add(image_id, image, 0)
    assert (size, multihash) == (image.size, image.sha256)
    volume = app_instance(iscsi_sim, image_id)['storage_instances'][0][
        'volumes'][0]
    assert volume['size'] == 2
    rescans = [line for line in fake_kernel.calls()
               if 'rescan' in line and 'write' in line]
    assert rescans, 'the host never rescanned the grown LUN'
    # the bytes past the first GiB, written after the grow
    chunks, _ = multi_backend.get(uri, BACKEND, offset=GiB - 5,
                                  chunk_size=2 * MiB)
    assert b''.join(chunks) == image.bytes_at(GiB - 5, 2 * MiB)
    assert_nothing_left(fake_kernel, iscsi_sim, image_id)
    multi_backend.delete(uri, BACKEND)


def test_concurrent_reads_of_one_image_share_one_attachment(iscsi_store,
                                                            iscsi_sim,
                                                            fake_kernel):
    iscsi_store()
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(3 * BLOCK)
    uri = add(image_id, image, image.size)[0]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: read_all(uri), range(4)))
    assert results == [(image.sha256, image.size)] * 4
    assert_nothing_left(fake_kernel, iscsi_sim, image_id)
    multi_backend.delete(uri, BACKEND)


@pytest.mark.fake_kernel(multipathd=True)
def test_multipath_over_both_portals(iscsi_store, iscsi_sim, fake_kernel):
    iscsi_store(datera_use_multipath=True)
    portals = set(iscsi_sim.info['iscsi_target']['portals'])
    assert len(portals) == 2
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(2 * BLOCK + 1)
    uri = add(image_id, image, image.size)[0]
    assert read_all(uri) == (image.sha256, image.size)
    logged_in = {line.split('-p ')[1].split()[0]
                 for line in fake_kernel.calls()
                 if '--login' in line and '-p ' in line}
    assert logged_in == portals
    multipath = [line for line in fake_kernel.calls()
                 if 'multipathd' in line and 'add' in line]
    assert multipath, 'os-brick never built a multipath device'
    assert_nothing_left(fake_kernel, iscsi_sim, image_id)
    multi_backend.delete(uri, BACKEND)


@pytest.mark.parametrize('corrupt', ['iqn', 'portal', 'lun'])
def test_wrong_connection_properties_fail_cleanly(iscsi_store, iscsi_sim,
                                                  fake_kernel, monkeypatch,
                                                  fast_brick_clock, corrupt):
    """Corrupted connection properties fail at the target, cleanly.

    The same upload as above fails, and leaves nothing: not on the host,
    not on the cluster.
    """
    real = attach.connection_properties

    def corrupted(*args, **kwargs):
        props = real(*args, **kwargs)
        if corrupt == 'iqn':
            props['target_iqn'] += '-wrong'
        elif corrupt == 'lun':
            props['target_lun'] = 1     # Datera's (and the driver's) is 0
        else:
            props['target_portal'] = props['target_portal'].replace(
                ':3260', ':3261')
        return props

    monkeypatch.setattr(attach, 'connection_properties', corrupted)
    iscsi_store()
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(BLOCK)
    with pytest.raises(exceptions.BackendException):
        add(image_id, image, image.size)
    assert app_instance(iscsi_sim, image_id) is None
    assert fake_kernel.leftovers() == {}


def test_a_host_outside_the_acl_is_refused_until_the_driver_exports_to_it(
        iscsi_store, iscsi_sim, fake_kernel, tmp_path):
    """A second host gets in only once its own store exports to it.

    Host 1 reads an image; host 2 (another process, another fake kernel,
    another initiator name) is refused by the target until its own store
    exports the image to it, then reads it while host 1 still holds it.
    """
    iscsi_store()
    image_id = str(uuid.uuid4())
    image = stores.PatternImage(3 * BLOCK + 5)
    uri = add(image_id, image, image.size)[0]
    host2 = 'iqn.1993-08.org.debian:01:glance-host2'

    chunks, _size = multi_backend.get(uri, BACKEND)
    first = next(chunks)        # host 1 holds the attachment
    ai = app_instance(iscsi_sim, image_id)
    portal = iscsi_sim.info['iscsi_target']['portals'][0]
    target = ai['storage_instances'][0]['iqn']
    with fk.IscsiLogin(fake_kernel.initiator_name, portal, target):
        pass                    # host 1 is in the ACL
    with pytest.raises(fk.IscsiError):
        with fk.IscsiLogin(host2, portal, target):
            pass

    request = tmp_path / 'host2.json'
    request.write_text(json.dumps({
        'initiator_name': host2, 'backend': BACKEND, 'uri': uri,
        'image_id': image_id, 'admin_url': iscsi_sim.admin_url,
        'options': iscsi_options(iscsi_sim)}))
    child = subprocess.run(
        [sys.executable, '-m', 'tests.iscsi.host_child', str(request)],
        capture_output=True, text=True, timeout=300,
        cwd=os.path.dirname(os.path.dirname(HERE)))
    assert child.returncode == 0, child.stderr[-4000:]
    result = json.loads(child.stdout.splitlines()[-1])
    assert (result['sha256'], result['size']) == (image.sha256, image.size)
    assert result['acl_while_reading'] == sorted(
        ['/initiators/' + fake_kernel.initiator_name,
         '/initiators/' + host2])
    assert result['leftovers'] == {}

    digest = hashlib.sha256(first)
    for chunk in chunks:
        digest.update(chunk)
    assert digest.hexdigest() == image.sha256
    assert_nothing_left(fake_kernel, iscsi_sim, image_id)
    multi_backend.delete(uri, BACKEND)


def test_an_ipv6_portal_is_bracketed_and_logged_in_to(
        private_mount_namespace, fake_kernel, glance_conf, tmp_path):
    """A cluster whose data IP is IPv6: the portal is ``[::1]:3260``."""
    if not iscsi_target_mod.portal_free('::1', 3260):
        pytest.skip('[::1]:3260 is taken by another target')
    with sim_fixture.running_simulator(str(tmp_path / 'sim6'),
                                       iscsi_target=True,
                                       data_ips=['::1']) as sim:
        assert sim.info['iscsi_target']['portals'] == ['[::1]:3260']
        assert stores.configure_multi_store(
            glance_conf, {BACKEND: iscsi_options(sim)}, BACKEND) == 1
        image_id = str(uuid.uuid4())
        image = stores.PatternImage(BLOCK + 3)
        uri = add(image_id, image, image.size)[0]
        assert read_all(uri) == (image.sha256, image.size)
        logins = [line for line in fake_kernel.calls() if '--login' in line]
        assert logins and all('-p [::1]:3260' in line for line in logins)
        assert_nothing_left(fake_kernel, sim, image_id)
        multi_backend.delete(uri, BACKEND)
