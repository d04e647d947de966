"""The leak, data and retry checks find what they are meant to find.

Leftovers are made by hand on a simulator (no driver involved), so that a
check that sees nothing is known to be able to see something.
"""

import os

from datera_glance_dev import stores
from tests.functional.reliability import checks
from tests.functional.simulator import helpers
from tests import sdk_helpers

HOST = helpers.HOST1
MiB = 1024 * 1024


def _volume_path(sim, ai_id):
    return checks.volume_file(sim, checks.app_instance(sim, ai_id))


def test_leaks_names_each_kind_of_leftover_and_restore_removes_them(
        edf_sim, tmp_path):
    sim = edf_sim
    lock_dir = tmp_path / 'locks'
    lock_dir.mkdir()
    (lock_dir / 'old-lock').write_text('')
    api = sdk_helpers.make_api(sim)
    kept = helpers.create_ai(api)['id']
    before = checks.snapshot(sim, str(lock_dir))
    assert checks.leaks(sim, before, str(lock_dir), {kept}) == []

    left = helpers.create_ai(api)['id']
    helpers.register_host(api, HOST)
    helpers.allow(api, kept, HOST)
    helpers.set_state(api, kept, 'online')
    (lock_dir / 'datera-attach-x').write_text('')

    found = '\n'.join(checks.leaks(sim, before, str(lock_dir), {kept}))
    assert 'app instance %s' % left in found
    assert 'ACL entry /initiators/%s on app instance %s' % (
        HOST, kept) in found
    assert 'export %s/ip-' % HOST in found
    assert 'initiator %s' % HOST in found
    assert 'lock file datera-attach-x' in found
    assert 'old-lock' not in found
    if sim.block_devices:
        assert 'loop device /dev/loop' in found

    admin = checks.ClusterAdmin(sim)
    try:
        admin.restore(before, {kept}, str(lock_dir))
    finally:
        admin.close()
    assert checks.leaks(sim, before, str(lock_dir), {kept}) == []
    assert (lock_dir / 'old-lock').exists()


def test_stored_image_is_compared_byte_for_byte_and_holes_count(edf_sim):
    sim = edf_sim
    api = sdk_helpers.make_api(sim)
    ai_id = helpers.create_ai(api)['id']
    image = stores.PatternImage(3 * MiB + 5, block=MiB, zero_blocks={1})
    with open(_volume_path(sim, ai_id), 'r+b') as f:
        for offset, length in ((0, MiB), (2 * MiB, MiB + 5)):
            f.seek(offset)               # block 1 stays a hole
            f.write(image.bytes_at(offset, length))
    assert checks.stored_bytes_problems(sim, ai_id, image, image.size) == []

    with open(_volume_path(sim, ai_id), 'r+b') as f:
        f.seek(2 * MiB + 3)
        f.write(b'\xff' if image.bytes_at(2 * MiB + 3, 1) != b'\xff'
                else b'\0')
    assert 'bytes differ in' in checks.stored_bytes_problems(
        sim, ai_id, image, image.size)[0]

    # Data where the volume has a hole (it was never written).
    other = stores.PatternImage(2 * MiB, block=MiB)
    other._random = image._random
    problems = checks.stored_bytes_problems(sim, ai_id, other, other.size)
    assert problems and 'zeros on the volume' in problems[0]


def test_metadata_of_a_complete_upload():
    state = {'app_instances': [{'id': 'a', 'metadata': {
        'upload_state': 'complete', 'length': '10', 'checksum': 'm'}}]}
    assert checks.metadata_problems(None, 'a', 10, 'm', state=state) == []
    assert len(checks.metadata_problems(None, 'a', 11, 'x',
                                        state=state)) == 2


def test_retry_bounds_scale_with_the_fault_free_count():
    def log(*calls):
        return [{'method': m, 'path': p} for m, p in calls]
    reference = log(('GET', '/v2.2/a/img-1'), ('GET', '/v2.2/a/img-1'),
                    ('PUT', '/v2.2/a/img-1'))
    ok = log(*[('GET', '/v2.2/a/img-2')] * 6 + [('PUT', '/v2.2/a/img-2')] * 3
             + [('DELETE', '/v2.2/a/img-2')] * 3)
    assert checks.retry_problems(ok, reference, 2, ['img-1', 'img-2']) == []
    too_many = log(*[('PUT', '/v2.2/a/img-2')] * 4)
    assert checks.retry_problems(too_many, reference, 2,
                                 ['img-1', 'img-2']) == [
        'PUT /v2.2/a/<image> sent 4 times (at most 3)']
    assert checks.retry_problems(too_many, reference, 2, ['img-1', 'img-2'],
                                 allowance=1) == []


def test_loop_devices_only_counts_the_simulators(edf_sim):
    assert all(os.path.realpath(edf_sim.data_dir) in back
               for back in checks.loop_devices(edf_sim).values())
