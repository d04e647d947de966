"""The harness's image contents, file server and status wait, shared by
the demo and the end-to-end tests."""

import os
import urllib.request

import pytest

from datera_glance_dev import images


def test_image_data_reads_back_any_range_and_differs_per_mib():
    data = images.ImageData(3 * images.MiB + 17, seed=5)
    whole = data.bytes()
    assert len(whole) == data.size
    assert data.read(images.MiB - 3, 10) == whole[images.MiB - 3:
                                                  images.MiB + 7]
    assert data.read(data.size - 5, 100) == whole[-5:]
    assert whole[:images.MiB] != whole[images.MiB:2 * images.MiB]
    assert data.file().read() == whole
    assert data.digests == images.digests_of([whole])


def test_files_are_served_and_digested(tmp_path):
    path = images.ImageData(1000, seed=1).write_to(str(tmp_path / 'a.raw'))
    with images.serve_folder(str(tmp_path)) as base_url:
        with urllib.request.urlopen(base_url + '/a.raw', timeout=30) as r:
            served = r.read()
    assert served == open(path, 'rb').read()
    assert images.file_digests(path) == images.digests_of([served])
    assert os.path.getsize(path) == 1000


def test_status_wait_returns_the_image_once_it_is_wanted():
    states = iter(['queued', 'importing', 'active'])
    image = images.wait_for_status(
        lambda image_id: {'id': image_id, 'status': next(states)}, 'i1',
        'active', timeout=30)
    assert image == {'id': 'i1', 'status': 'active'}


@pytest.mark.parametrize('image', [
    {'status': 'killed'},
    {'status': 'queued', 'os_glance_failed_import': 'datera1'}])
def test_status_wait_stops_at_a_failed_import(image):
    with pytest.raises(images.ImportFailed, match='i1'):
        images.wait_for_status(lambda image_id: image, 'i1', 'active',
                               timeout=30)
