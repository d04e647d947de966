"""glance-api started while the Datera cluster cannot be reached.

glance must still start; the store disables writes with a log line that
says why, and reads of existing images are still attempted, so they work
again as soon as the cluster is back, without restarting glance-api.
"""

import io
import os
import re
import urllib.error

from glanceclient import exc as glance_exc
import pytest

from tests.e2e import conftest

MiB = conftest.MiB

WRITES_DISABLED = re.compile(
    r'WARNING glance_store\.driver .*Failed to configure store correctly: '
    r'(?P<reason>.*) Disabling add method\.')


@pytest.fixture(params=conftest.CONFIGURATIONS)
def deployment(request, simulator, tmp_path, glance_db_template):
    # One retry, quickly: the cluster is down on purpose.
    dep = conftest.start_deployment(
        request.param, simulator, str(tmp_path / 'glance'),
        glance_db_template, datera_retry_attempts=1,
        datera_retry_interval=0.1)
    try:
        yield dep
    finally:
        dep.api.stop()
        if not simulator.running:
            simulator.start()


def test_unreachable_backend_disables_writes_but_not_reads(deployment):
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

    # glance-api runs, and its log says why writes are off.
    line = api.wait_for_log(WRITES_DISABLED, timeout=30, offset=offset)
    assert sim.host in line.group('reason'), line.group(0)

    client = deployment.client()
    refused = client.images.create(name='during-outage', disk_format='raw',
                                   container_format='bare')
    with pytest.raises(glance_exc.HTTPException):
        client.images.upload(refused['id'], io.BytesIO(b'x' * 1024),
                             image_size=1024)
    assert deployment.image(refused['id'])['status'] == 'queued'

    # A read is attempted and fails cleanly while the cluster is away...
    with pytest.raises(urllib.error.HTTPError) as caught:
        deployment.download(existing['id'])
    assert caught.value.code >= 500

    # ... and succeeds once it is back, with the same glance-api.
    sim.start()
    status, _headers, body = deployment.download(existing['id'])
    assert status == 200
    assert body == data.bytes()

    # Writes come back with a restart of glance-api.
    api.restart()
    client = deployment.client()
    client.images.upload(refused['id'], data.file(), image_size=data.size)
    assert deployment.image(refused['id'])['status'] == 'active'
    for image_id in (existing['id'], refused['id']):
        client.images.delete(image_id)
        assert deployment.app_instance(image_id) is None
