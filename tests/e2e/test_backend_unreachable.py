"""glance-api started while the Datera cluster cannot be reached.

An outage is not a configuration error: glance-api starts after one short
check per backend, logs a warning naming the address and the options, and
keeps the store enabled, so uploads, downloads and deletes fail cleanly
while the cluster is away and work again as soon as it is back, without
restarting glance-api.
"""

import io
import os
import re
import urllib.error

from glanceclient import exc as glance_exc
import pytest

from tests.e2e import conftest

MiB = conftest.MiB

UNREACHABLE = re.compile(
    r'WARNING datera_glance\.store .*the cluster at (?P<where>\S+) did not '
    r'answer within (?P<t>\d+)s at start-up.*stays enabled.*'
    r'datera_san_ip and datera_san_port')
WRITES_DISABLED = re.compile(r'Disabling add method')


@pytest.fixture(params=conftest.CONFIGURATIONS)
def deployment(request, simulator, tmp_path, glance_db_template):
    # Retries as an operator would leave them.
    dep = conftest.start_deployment(
        request.param, simulator, str(tmp_path / 'glance'),
        glance_db_template, datera_retry_attempts=1,
        datera_retry_interval=0.1, datera_operation_max_timeout=5)
    try:
        yield dep
    finally:
        dep.api.stop()
        if not simulator.running:
            simulator.start()


def test_unreachable_backend_at_start_up_keeps_the_store_enabled(deployment):
    api, sim = deployment.api, deployment.sim
    client = deployment.client()
    data = conftest.ImageData(3 * MiB + 1, seed=20)
    existing = client.images.create(name='before-outage', disk_format='raw',
                                    container_format='bare')
    client.images.upload(existing['id'], data.file(), image_size=data.size)
    assert deployment.image(existing['id'])['status'] == 'active'

    api.stop()
    sim.stop()
    offset = os.path.getsize(api.log_file)
    api.start()

    # glance-api runs after one short check, and its log says why the
    # cluster is not used yet, naming the address and the options.
    line = api.wait_for_log(UNREACHABLE, timeout=30, offset=offset)
    assert line.group('where') == '%s:%d' % (sim.host, sim.port)
    assert int(line.group('t')) <= 5
    log = api.read_log(offset)
    assert not WRITES_DISABLED.search(log), 'an outage disabled writes'
    assert 'Datera API call failed' not in log, 'start-up retried'

    # While it is away, uploads and reads fail cleanly...
    client = deployment.client()
    during = client.images.create(name='during-outage', disk_format='raw',
                                  container_format='bare')
    with pytest.raises(glance_exc.HTTPException):
        client.images.upload(during['id'], io.BytesIO(b'x' * 1024),
                             image_size=1024)
    with pytest.raises(urllib.error.HTTPError) as caught:
        deployment.download(existing['id'])
    assert caught.value.code >= 500

    # ... and once it is back, all of them work with the same glance-api.
    sim.start()
    status, _headers, body = deployment.download(existing['id'])
    assert status == 200
    assert body == data.bytes()
    later = client.images.create(name='after-outage', disk_format='raw',
                                 container_format='bare')
    client.images.upload(later['id'], data.file(), image_size=data.size)
    assert deployment.image(later['id'])['status'] == 'active'
    for image_id in (existing['id'], later['id']):
        client.images.delete(image_id)
        assert deployment.app_instance(image_id) is None
