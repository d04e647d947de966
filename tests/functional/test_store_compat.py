"""Images laid out the way the original Datera glance driver wrote them stay
readable and deletable, whichever URI form the original wrote.

The original driver created app instance ``OS-IMAGE-<id>`` with ``uuid``
= image id, ``storage-1``/``volume-1`` and recorded only ``checksum``,
``length`` and ``type`` in the metadata. The image is laid out here with
the project's own EDF client and attacher, the same calls the original
made.
"""

import hashlib
import os
import uuid

from glance_store import exceptions
from glance_store import multi_backend
import pytest

from tests.functional import conftest as fx

BACKEND = fx.BACKEND


def _lay_out_like_the_original_driver(data):
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    image_id = str(uuid.uuid4())
    store.client.create_image_volume(image_id, 1, 3, 'hybrid')
    with store.attacher.attached(image_id) as attachment:
        with attachment.open('r+b') as device:
            device.write(data)
            device.flush()
            os.fsync(device.fileno())
    store.client.set_image_metadata(image_id, {
        'checksum': hashlib.md5(data).hexdigest(),
        'length': len(data),
        'type': 'image'})
    return image_id


@pytest.mark.parametrize('name_form', ['OS-IMAGE-%s', '%s'],
                         ids=['2019-uri', '2018-uri'])
def test_original_driver_image_is_read_and_deleted(multi_store, name_form):
    sim = multi_store
    data = os.urandom(3 * 1024 * 1024 + 17)
    image_id = _lay_out_like_the_original_driver(data)
    ai = fx.app_instances(sim)[image_id]
    assert ai['name'] == 'OS-IMAGE-' + image_id
    assert set(ai['metadata']) == {'checksum', 'length', 'type'}

    uri = 'datera://%s:%d/app_instances/%s' % (sim.host, sim.port,
                                               name_form % image_id)
    assert multi_backend.get_size_from_uri_and_backend(uri, BACKEND) == len(
        data)
    chunks, size = multi_backend.get(uri, BACKEND)
    assert (b''.join(chunks), size) == (data, len(data))
    chunks, size = multi_backend.get(uri, BACKEND, offset=5, chunk_size=7)
    assert b''.join(chunks) == data[5:12]

    multi_backend.delete(uri, BACKEND)
    assert image_id not in fx.app_instances(sim)
    assert fx.exports(sim) == []
    with pytest.raises(exceptions.NotFound):
        multi_backend.delete(uri, BACKEND)


def test_original_driver_image_with_bad_checksum_is_not_served(multi_store):
    data = os.urandom(4096)
    image_id = _lay_out_like_the_original_driver(data)
    store = multi_backend.get_store_from_store_identifier(BACKEND)
    store.client.set_image_metadata(image_id, {'checksum': '0' * 32})
    uri = 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
        multi_store.host, multi_store.port, image_id)
    with pytest.raises(exceptions.BackendException):
        chunks, _ = multi_backend.get(uri, BACKEND)
        b''.join(chunks)
    assert fx.exports(multi_store) == []
