"""Two Datera backends (two tenants) and a file store in one glance-api.

Operators add the Datera store beside the stores they have; each backend
has its own option group, and images record the backend they live in.
"""

import pytest

from datera_glance_dev import glance_api
from tests.e2e import conftest

MiB = conftest.MiB


@pytest.fixture(scope='module')
def api(simulator, tmp_path_factory, glance_db_template):
    work = tmp_path_factory.mktemp('glance-backends')
    api = glance_api.GlanceApi(str(work), [
        glance_api.datera_backend(simulator, name='fast',
                                  datera_tenant_id='/root/fast'),
        glance_api.datera_backend(simulator, name='bulk',
                                  datera_tenant_id='/root/bulk'),
        glance_api.file_backend(str(work / 'images'), name='local'),
    ], default='fast')
    api.write_config()
    api.db_sync(template=glance_db_template)
    api.start()
    yield api
    api.stop()


def app_instances(sim):
    return {ai['id']: ai['tenant']
            for ai in sim.state().get('app_instances', [])}


def test_each_backend_keeps_its_own_images(api, simulator):
    client = api.client()
    stores = {s['id']: s for s in client.images.get_stores_info()['stores']}
    assert sorted(stores) == ['bulk', 'fast', 'local']
    assert stores['fast'].get('default') == 'true'

    images = {}
    for seed, backend in enumerate(('fast', 'bulk', 'local', None)):
        data = conftest.ImageData(2 * MiB + seed, seed=30 + seed)
        image = client.images.create(name=str(backend), disk_format='raw',
                                     container_format='bare')
        client.images.upload(image['id'], data.file(), image_size=data.size,
                             backend=backend)
        images[backend] = (image['id'], data)

    ais = app_instances(simulator)
    for backend, tenant in (('fast', '/root/fast'), ('bulk', '/root/bulk'),
                            (None, '/root/fast')):
        image_id, data = images[backend]
        assert client.images.get(image_id)['stores'] == (backend or 'fast')
        assert ais[image_id] == tenant
    assert images['local'][0] not in ais
    for image_id, data in images.values():
        assert b''.join(client.images.data(image_id)) == data.bytes()
    for image_id, _data in images.values():
        client.images.delete(image_id)
    assert not set(app_instances(simulator)) & {
        image_id for image_id, _data in images.values()}


def test_copy_image_moves_an_image_from_a_file_store_to_datera(
        api, simulator):
    """The migration path: copy-image into Datera, then drop the old copy."""
    client = api.client()
    data = conftest.ImageData(3 * MiB + 7, seed=40)
    image = client.images.create(name='migrated', disk_format='raw',
                                 container_format='bare')
    client.images.upload(image['id'], data.file(), image_size=data.size,
                         backend='local')

    client.images.image_import(image['id'], method='copy-image',
                               stores=['fast'])

    def copied():
        # Both stores listed, and glance's import task done with the image
        # (its last save would otherwise put the removed location back).
        current = client.images.get(image['id'])
        return (set(current['stores'].split(',')) == {'local', 'fast'} and
                not current.get('os_glance_importing_to_stores'))

    conftest.wait_for(copied, timeout=60, message='copy to fast')
    client.images.delete_from_store('local', image['id'])

    assert client.images.get(image['id'])['stores'] == 'fast'
    assert app_instances(simulator)[image['id']] == '/root/fast'
    assert b''.join(client.images.data(image['id'])) == data.bytes()
    client.images.delete(image['id'])
    assert image['id'] not in app_instances(simulator)


def test_copy_between_backends_of_one_cluster_is_refused_cleanly(
        api, simulator):
    """An app instance's id is the image id, unique in a cluster.

    So one image cannot live in two backends (tenants) of the same
    cluster; the copy fails, and the image stays whole where it was.
    """
    client = api.client()
    data = conftest.ImageData(MiB, seed=41)
    image = client.images.create(name='one-cluster', disk_format='raw',
                                 container_format='bare')
    client.images.upload(image['id'], data.file(), image_size=data.size,
                         backend='fast')

    client.images.image_import(image['id'], method='copy-image',
                               stores=['bulk'])
    conftest.wait_for(
        lambda: client.images.get(image['id']).get(
            'os_glance_failed_import') == 'bulk',
        timeout=60, message='copy to bulk refused')

    assert client.images.get(image['id'])['stores'] == 'fast'
    assert app_instances(simulator)[image['id']] == '/root/fast'
    assert b''.join(client.images.data(image['id'])) == data.bytes()
    client.images.delete(image['id'])
    assert image['id'] not in app_instances(simulator)
