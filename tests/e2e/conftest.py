"""A real glance-api with the Datera store, over the EDF simulator.

Starting glance-api takes a few seconds, so one glance-api per configuration
serves a whole test module: the ``deployment`` fixture is module-scoped and
parametrized over the two configurations operators use,

* ``multi-store``: ``enabled_backends = datera1:datera`` and
  ``default_backend = datera1``;
* ``single-store``: ``[glance_store] stores = file,datera`` and
  ``default_store = datera``, the original driver's layout, with
  glance_store unpatched.

Tests create their own images and check the simulator for their own app
instances only, so they do not depend on each other's leftovers.
"""

import os
import shutil
import urllib.request

import pytest

from datera_edf_sim import fixture as sim_fixture
from datera_glance_dev import glance_api
from datera_glance_dev import images
from datera_glance_dev import polling

MiB = 1024 * 1024
BACKEND = 'datera1'
CONFIGURATIONS = ('multi-store', 'single-store')


def use_block_devices():
    """Loop devices when root can make them (CI runs as root)."""
    return os.geteuid() == 0 and shutil.which('losetup') is not None


wait_for = polling.wait_for


ImageData = images.ImageData


class Deployment:
    """One glance-api with the Datera store and the simulator behind it."""

    def __init__(self, name, api, sim, files):
        self.name = name
        self.api = api
        self.sim = sim
        #: A folder served over HTTP for web-download imports.
        self.files = files
        self.source_url = None
        self.legacy = name == 'single-store'

    def client(self):
        return self.api.client()

    def app_instance(self, image_id):
        """The simulator's app instance of an image, or None."""
        for ai in self.sim.state().get('app_instances', []):
            if ai['id'] == image_id:
                return ai
        return None

    def export_links(self, image_id=None):
        """Export links present for this host (of one image's target)."""
        links = []
        for root, _dirs, files in os.walk(self.sim.export_dir):
            links.extend(os.path.join(root, f) for f in files)
        if image_id is None:
            return links
        ai = self.app_instance(image_id)
        if ai is None:
            return []
        iqns = [si['iqn'] for si in ai['storage_instances']]
        return [p for p in links if any(iqn in p for iqn in iqns)]

    def image(self, image_id):
        return self.client().images.get(image_id)

    def wait_for_status(self, image_id, status, timeout=60):
        try:
            return images.wait_for_status(self.image, image_id, status,
                                          timeout=timeout)
        except images.ImportFailed as e:
            raise AssertionError('%s\n%s' % (e, self.api.log_tail()))

    def download(self, image_id, **headers):
        """GET the image's data; returns (status, headers, body)."""
        request = urllib.request.Request(
            '%s/v2/images/%s/file' % (self.api.url, image_id),
            headers=dict(headers, **{'X-Auth-Token': 'no-keystone'}))
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers, response.read()

    def assert_ranges_read_back(self, image_id, data, firsts, span=2 * MiB):
        """Range downloads of ``span`` bytes from each of ``firsts`` match.

        :param data: the :class:`ImageData` that was uploaded
        """
        for first in firsts:
            last = min(first + span, data.size) - 1
            status, _headers, body = self.download(
                image_id, Range='bytes=%d-%d' % (first, last))
            assert status == 206
            assert body == data.read(first, last - first + 1)

    def target_iqns(self, image_id):
        """The iSCSI targets of an image's app instance (while it exists)."""
        ai = self.app_instance(image_id)
        assert ai is not None, 'no app instance for %s' % image_id
        return [si['iqn'] for si in ai['storage_instances']]

    def assert_no_trace(self, image_id, iqns, timeout=30):
        """No app instance and no export link of the image stays behind.

        :param iqns: the image's targets, from :meth:`target_iqns` while
            its app instance existed (export links are named after them).
        """
        wait_for(lambda: self.app_instance(image_id) is None,
                 timeout=timeout, message='app instance of %s removed'
                 % image_id)
        leftovers = [p for p in self.export_links()
                     if any(iqn in p for iqn in iqns)]
        assert leftovers == []


@pytest.fixture(scope='session')
def glance_db_template(tmp_path_factory):
    """A glance database made once by db_sync and copied by each test API.

    The migrations take seconds; the copy is instant and identical.
    """
    work = tmp_path_factory.mktemp('glance-db')
    api = glance_api.GlanceApi(
        str(work), [glance_api.file_backend(str(work / 'images'))])
    api.write_config()
    api.db_sync()
    return api.database_file


@pytest.fixture(scope='module')
def simulator(tmp_path_factory):
    """One simulator for a test module, HTTPS verified with its CA."""
    data_dir = str(tmp_path_factory.mktemp('edf-sim'))
    with sim_fixture.running_simulator(
            data_dir, block_devices=use_block_devices()) as sim:
        yield sim


@pytest.fixture(scope='module')
def file_server(tmp_path_factory):
    """A local HTTP server for web-download imports: (folder, base URL)."""
    folder = str(tmp_path_factory.mktemp('http-files'))
    with images.serve_folder(folder) as base_url:
        yield folder, base_url


def start_deployment(name, sim, work_dir, db_template, file_server=None,
                     **datera_options):
    """Configure and start glance-api for one configuration."""
    backend = glance_api.datera_backend(sim, name=BACKEND, **datera_options)
    extra = {}
    folder = url = None
    if file_server is not None:
        folder, url = file_server
        # web-download refuses loopback addresses unless allowed.
        extra['import_filtering_opts'] = {
            'allowed_hosts': '[127.0.0.1]',
            'allowed_ports': '[%s]' % url.rsplit(':', 1)[1]}
    backends = [backend]
    legacy = name == 'single-store'
    if legacy:
        # As the original driver's README suggested for keeping other
        # stores readable: stores = file,datera with datera the default.
        backends.insert(0, glance_api.file_backend(
            os.path.join(work_dir, 'images')))
    api = glance_api.GlanceApi(work_dir, backends, default=BACKEND,
                               legacy=legacy, extra_config=extra)
    api.write_config()
    api.db_sync(template=db_template)
    api.start()
    deployment = Deployment(name, api, sim, folder)
    deployment.source_url = url
    return deployment


@pytest.fixture(scope='module', params=CONFIGURATIONS)
def deployment(request, simulator, tmp_path_factory, glance_db_template,
               file_server):
    """glance-api in each configuration, one per test module."""
    work_dir = str(tmp_path_factory.mktemp('glance-' + request.param))
    dep = start_deployment(request.param, simulator, work_dir,
                           glance_db_template, file_server)
    try:
        yield dep
    finally:
        dep.api.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the end of glance-api's log under a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == 'call':
        for value in item.funcargs.values():
            api = getattr(value, 'api', None)
            if isinstance(api, glance_api.GlanceApi):
                report.sections.append(('glance-api log (%s)' % api.log_file,
                                        api.log_tail(60)))
