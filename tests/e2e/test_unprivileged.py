"""glance-api as it is deployed: an unprivileged user, sudo and rootwrap.

The test makes a service user, the README's sudoers rule and rootwrap
files (:mod:`datera_glance_dev.unprivileged`), and runs a real
glance-api as that user with the Datera store's default root helper
layout: ``datera_glance_rootwrap_path = sudo <venv>/bin/glance-rootwrap``
and a ``rootwrap.conf`` whose filters are the project's ``datera.filters``.
The simulator hands its loop devices to the service user, as udev rules
or the store's privsep step do for iSCSI disks on a real host. An upload
of unknown size that outgrows its first volume makes os-brick read the
grown device's size as root, through a privsep daemon that glance-api
starts with ``sudo glance-rootwrap``: the production privilege path, run.

The third layout the README describes, glance-api as root in a container
without sudo (``datera_glance_rootwrap_path`` naming glance-rootwrap
alone), runs the same upload at the end.

Creating a user needs root; CI runs as root.
"""

import contextlib
import os
import re
import shutil
import tempfile
import uuid

from glanceclient import exc as glance_exc
import pytest

from datera_edf_sim import fixture as sim_fixture
from datera_glance_dev import glance_api
from datera_glance_dev import unprivileged
from tests.e2e import conftest

MiB = conftest.MiB
SERVICE_USER = 'datera-glance-e2e'

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('losetup'),
    reason='creating a service user and loop devices needs root (CI runs '
           'as root)')


def process_ids(pid):
    """(real uid, effective uid) of a process."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Uid:'):
                real, effective = line.split()[1:3]
                return int(real), int(effective)
    raise AssertionError('no Uid line for %d' % pid)


def processes():
    """{pid: argv} of every process of this host."""
    found = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        found[int(name)] = [a.decode('utf-8', 'replace') for a in argv if a]
    return found


def children(pid):
    """Every descendant of ``pid``."""
    parents = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(')', 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def privsep_command(log):
    """The command oslo.privsep logged it ran to start its daemon."""
    started = re.search(r"Running privsep helper: \[([^\]]*)\]", log)
    assert started, log[-3000:]
    return [a.strip(" '") for a in started.group(1).split(',')]


def privsep_daemons(etc_dir):
    """Processes running privsep-helper for this host's configuration."""
    return {pid: argv for pid, argv in processes().items()
            if any(a.endswith('privsep-helper') for a in argv[:3])
            and any(a.startswith(etc_dir + '/') for a in argv)}


@pytest.fixture(scope='module')
def host():
    """The service user, sudoers rule and rootwrap files; removed after."""
    etc_dir = '/etc/datera-glance-e2e-%s' % uuid.uuid4().hex[:8]
    with unprivileged.ServiceHost(SERVICE_USER, etc_dir) as service_host:
        python = os.path.join(service_host.bindir, 'python')
        check = service_host.run_as_user(
            [python, '-c', 'import glance, datera_glance.store'])
        if check.returncode:
            pytest.fail(
                '%s cannot run %s and import glance and the driver: the '
                'virtualenv and its interpreter must be readable by other '
                'users, as glance\'s are on a glance-api host (make test '
                'builds it from /usr/bin/python3 for that reason):\n%s'
                % (SERVICE_USER, python, check.stderr[-2000:]))
        yield service_host


@contextlib.contextmanager
def service_user_deployment(host, db_template, name, **datera_options):
    """glance-api as the service user over a simulator handing it exports.

    ``datera_options`` override the store's (the root helper's by default
    the recipe's).
    """
    # Folders the service user can pass through: pytest's own are 0700.
    base = tempfile.mkdtemp(prefix='datera-glance-%s-' % name)
    os.chmod(base, 0o711)
    options = dict(host.root_helper_options(), **datera_options)
    try:
        with sim_fixture.running_simulator(
                os.path.join(base, 'sim'), block_devices=True,
                export_owner=host.user) as sim:
            backend = glance_api.datera_backend(
                sim, name=conftest.BACKEND, **options)
            api = glance_api.GlanceApi(
                os.path.join(base, 'api'), [backend], user=host.user,
                config_dir=os.path.join(host.etc_dir, name))
            api.write_config()
            api.db_sync(template=db_template)
            api.start()
            try:
                yield conftest.Deployment(name, api, sim, None)
            finally:
                api.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='module')
def deployment(host, glance_db_template):
    with service_user_deployment(host, glance_db_template,
                                 'unprivileged') as dep:
        yield dep


def test_glance_api_runs_as_the_service_user(deployment, host):
    uid = host.passwd.pw_uid
    master = deployment.api.process.pid
    assert process_ids(master) == (uid, uid)
    workers = children(master)
    assert workers
    for pid in workers:
        if pid in privsep_daemons(host.etc_dir):
            continue
        assert process_ids(pid)[1] == uid


def test_the_configuration_is_the_readmes(deployment, host):
    conf = deployment.api.config()[conftest.BACKEND]
    assert conf['datera_glance_rootwrap_path'] == 'sudo ' + host.rootwrap
    assert conf['datera_glance_rootwrap_config'] == host.rootwrap_config
    # privsep is started through the root helper, not by a helper_command
    assert 'privsep_osbrick' not in deployment.api.config()
    with open(host.sudoers_file) as f:
        assert f.read().strip() == unprivileged.sudoers_line(
            host.user, host.rootwrap, host.rootwrap_config)


def test_upload_and_download_of_known_size(deployment):
    client = deployment.client()
    data = conftest.ImageData(24 * MiB + 513, seed=31)
    image = client.images.create(name='unprivileged-known',
                                 disk_format='raw', container_format='bare')
    client.images.upload(image['id'], data.file(), image_size=data.size)

    stored = deployment.image(image['id'])
    assert stored['status'] == 'active'
    assert stored['checksum'] == data.digests[0]
    assert b''.join(client.images.data(image['id'])) == data.bytes()
    iqns = deployment.target_iqns(image['id'])
    client.images.delete(image['id'])
    deployment.assert_no_trace(image['id'], iqns)


def test_upload_of_unknown_size_grows_through_privsep_started_by_sudo(
        deployment, host):
    """The grow's size read runs as root in os-brick's privsep daemon."""
    client = deployment.client()
    offset = os.path.getsize(deployment.api.log_file)
    data = conftest.ImageData(1024 * MiB + 2 * MiB + 7, seed=32)
    image = client.images.create(name='unprivileged-unknown',
                                 disk_format='raw', container_format='bare')
    client.images.upload(image['id'], data.file())

    stored = deployment.image(image['id'])
    assert stored['status'] == 'active'
    assert stored['size'] == data.size
    assert (stored['checksum'], stored['os_hash_value']) == data.digests
    volume = deployment.app_instance(image['id'])[
        'storage_instances'][0]['volumes'][0]
    assert volume['size'] >= 2
    log = deployment.api.read_log(offset)
    # oslo.privsep logs the command it ran: sudo, then this rootwrap.
    argv = privsep_command(log)
    assert argv[:4] == ['sudo', host.rootwrap, host.rootwrap_config,
                        'privsep-helper']
    assert 'os_brick.privileged.default' in argv
    assert 'Spawned new privsep daemon via rootwrap' in log
    daemons = privsep_daemons(host.etc_dir)
    assert daemons, 'no privsep daemon is running'
    assert all(process_ids(pid)[1] == 0 for pid in daemons)

    # the data around the first GiB, where the volume grew, and the end
    deployment.assert_ranges_read_back(
        image['id'], data, (1024 * MiB - 4096, data.size - 100))
    iqns = deployment.target_iqns(image['id'])
    client.images.delete(image['id'])
    deployment.assert_no_trace(image['id'], iqns)


def test_the_service_user_cannot_take_a_disk_through_sudo(host):
    """Neither sudo nor rootwrap lets the service user chown a device."""
    uid = str(host.passwd.pw_uid)
    for device in ('/dev/sda', '/dev/loop0', '/dev/dm-0', '/dev/null'):
        for command in (['chown', uid, device], ['chmod', '666', device]):
            wrapped = host.run_as_user(
                ['sudo', '-n', host.rootwrap, host.rootwrap_config]
                + command)
            # rootwrap's "Unauthorized command" exit status
            assert wrapped.returncode == 99, wrapped.stderr
            assert 'Unauthorized command' in wrapped.stderr
            direct = host.run_as_user(['sudo', '-n'] + command)
            assert direct.returncode == 1
            assert 'password is required' in direct.stderr
    # and another rootwrap configuration is not the one sudo allows
    other = host.run_as_user(['sudo', '-n', host.rootwrap, '/tmp/x.conf',
                              'chown', uid, '/dev/sda'])
    assert 'password is required' in other.stderr


def test_nothing_is_left_handed_over_or_running(deployment, host):
    """No export or device of the user's stays; no privsep daemon either.

    The daemons go when glance-api stops.
    """
    uid = host.passwd.pw_uid
    assert deployment.export_links() == []
    owned = [os.path.join('/dev', name) for name in os.listdir('/dev')
             if os.lstat(os.path.join('/dev', name)).st_uid == uid]
    assert owned == []
    deployment.api.stop()
    conftest.wait_for(lambda: not privsep_daemons(host.etc_dir),
                      timeout=30, message='privsep daemons gone')


@pytest.fixture(scope='module')
def root_deployment(host, glance_db_template, tmp_path_factory):
    """glance-api as root whose root helper is glance-rootwrap, no sudo."""
    work = tmp_path_factory.mktemp('glance-root')
    config_dir = os.path.join(host.etc_dir, 'root-glance-api')
    with sim_fixture.running_simulator(str(work / 'sim'),
                                       block_devices=True) as sim:
        backend = glance_api.datera_backend(
            sim, name=conftest.BACKEND,
            datera_glance_rootwrap_path=host.rootwrap,
            datera_glance_rootwrap_config=host.rootwrap_config)
        api = glance_api.GlanceApi(str(work / 'api'), [backend],
                                   config_dir=config_dir,
                                   direct_privsep=False)
        api.write_config()
        api.db_sync(template=glance_db_template)
        api.start()
        try:
            yield conftest.Deployment('root-without-sudo', api, sim, None)
        finally:
            api.stop()


def test_root_without_sudo_grows_through_rootwrap_alone(root_deployment,
                                                        host):
    deployment = root_deployment
    client = deployment.client()
    data = conftest.ImageData(1024 * MiB + MiB + 9, seed=33)
    image = client.images.create(name='root-unknown', disk_format='raw',
                                 container_format='bare')
    client.images.upload(image['id'], data.file())

    stored = deployment.image(image['id'])
    assert stored['status'] == 'active'
    assert (stored['checksum'], stored['os_hash_value']) == data.digests
    log = deployment.api.read_log()
    argv = privsep_command(log)
    assert argv[:3] == [host.rootwrap, host.rootwrap_config,
                        'privsep-helper']
    iqns = deployment.target_iqns(image['id'])
    client.images.delete(image['id'])
    deployment.assert_no_trace(image['id'], iqns)


@pytest.fixture(scope='module')
def misconfigured_deployment(host, glance_db_template):
    """The service user's glance-api with the old README's root helper.

    ``sudo glance-rootwrap``: sudo finds no rule for a relative
    command, so it asks for a password and privsep cannot start.
    """
    with service_user_deployment(
            host, glance_db_template, 'misconfigured',
            datera_glance_rootwrap_path='sudo glance-rootwrap') as dep:
        yield dep


def test_a_root_helper_that_cannot_start_is_named_in_the_error(
        misconfigured_deployment):
    deployment = misconfigured_deployment
    client = deployment.client()
    data = conftest.ImageData(1024 * MiB + MiB, seed=34)
    image = client.images.create(name='no-root-helper', disk_format='raw',
                                 container_format='bare')
    with pytest.raises(glance_exc.HTTPInternalServerError):
        client.images.upload(image['id'], data.file())

    log = deployment.api.read_log()
    assert ('Could not start the privileged helper with the root helper '
            '"sudo glance-rootwrap %s"' % deployment.api.config()[
                conftest.BACKEND]['datera_glance_rootwrap_config']) in log
    assert 'check datera_glance_rootwrap_path' in log
    # nothing of the failed upload stays
    assert deployment.image(image['id'])['status'] == 'queued'
    conftest.wait_for(lambda: deployment.app_instance(image['id']) is None,
                      timeout=30, message='app instance removed')
    assert deployment.export_links() == []
