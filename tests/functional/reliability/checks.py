"""Checks of what a store operation left behind, against a simulator.

Reusable by any test that drives the Datera store against a
:class:`~datera_edf_sim.fixture.SimulatorProcess`: take a
:func:`snapshot` before, run the operations, then ask :func:`leaks` what is
left that should not be (app instances, ACL entries, initiators, export
links, loop devices, lock files), :func:`stored_image_problems` whether an
image's bytes and metadata on the cluster are what was uploaded, and
:func:`retry_problems` whether the requests stayed within the retry bounds.
:class:`ClusterAdmin` removes leftovers through the REST API, so that one
leak is reported once and not again by every later check.

Every check returns a list of human-readable problems; empty means fine.
"""

import collections
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import time

import requests

from datera_edf_sim import fixture

ROOT_TENANT = '/root'
_ZERO_BLOCK = bytes(1024 * 1024)


# -- what the cluster and this host hold -----------------------------------

def loop_devices(sim):
    """Loop devices backed by a file of the simulator (deleted ones too).

    :returns: {device: backing file}
    """
    if os.geteuid() != 0:
        return {}
    try:
        out = subprocess.run(
            ['losetup', '--list', '--json', '--output', 'NAME,BACK-FILE'],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    prefix = os.path.realpath(sim.data_dir).rstrip('/') + '/'
    found = {}
    for dev in (json.loads(out).get('loopdevices', []) if out.strip()
                else []):
        back = dev.get('back-file') or ''
        if back.startswith(prefix):
            found[dev['name']] = back
    return found


def _settled_loop_devices(sim, expected, timeout=3.0):
    """loop_devices(), once those not in ``expected`` went away.

    The kernel releases a loop device detached while still open (auto
    clear) shortly after its last close, not at once: give it a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = loop_devices(sim)
        if set(now) <= set(expected) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def lock_files(lock_dir):
    """Names of the files in a lock folder (empty if there is none)."""
    if not lock_dir or not os.path.isdir(lock_dir):
        return set()
    return set(os.listdir(lock_dir))


def export_links(sim):
    """Every export link (and link folder) under the simulator's exports."""
    found = []
    for root, dirs, files in os.walk(sim.export_dir):
        found.extend(os.path.join(root, f) for f in files)
        found.extend(os.path.join(root, d) for d in dirs
                     if os.path.islink(os.path.join(root, d)))
    return sorted(found)


def _ref_path(ref):
    return ref.get('path') if isinstance(ref, dict) else ref


def acl_entries(state):
    """[(ai id, initiator or group path)] of every ACL entry."""
    entries = []
    for ai in state['app_instances']:
        for si in ai['storage_instances']:
            acl = si.get('acl_policy') or {}
            for kind in ('initiators', 'initiator_groups'):
                for ref in acl.get(kind) or []:
                    entries.append((ai['id'], _ref_path(ref)))
    return entries


def initiators(state):
    """{(tenant, initiator id)} the cluster knows."""
    return {(i.get('tenant'), i.get('id')) for i in state['initiators']}


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What exists before an operation: later only new things are leaks."""

    app_instances: frozenset
    initiators: frozenset
    loops: frozenset
    lock_files: frozenset


def snapshot(sim, lock_dir):
    state = sim.state()
    return Snapshot(
        app_instances=frozenset(ai['id'] for ai in state['app_instances']),
        initiators=frozenset(initiators(state)),
        loops=frozenset(loop_devices(sim)),
        lock_files=frozenset(lock_files(lock_dir)))


def leaks(sim, before, lock_dir, expected_app_instances, state=None):
    """What is left that should not be.

    :param before: a :class:`Snapshot` taken before the operations.
    :param expected_app_instances: ids of the app instances that should
        exist now (the images that should be stored).
    :returns: a list of problems: unexpected app instances, any ACL entry
        (nobody should be attached now), any export link, initiators, loop
        devices and lock files that were not there before.
    :param state: ``sim.state()`` if the caller has it already.
    """
    state = state or sim.state()
    problems = []
    for ai in state['app_instances']:
        if ai['id'] not in expected_app_instances:
            problems.append('app instance %s (%s, %s) left' % (
                ai['id'], ai['tenant'], ai['admin_state']))
    for ai_id, ref in acl_entries(state):
        problems.append('ACL entry %s on app instance %s left' % (
            ref, ai_id))
    for link in export_links(sim):
        problems.append('export %s left' % os.path.relpath(
            link, sim.export_dir))
    for tenant, iqn in sorted(initiators(state) - before.initiators):
        problems.append('initiator %s (%s) left' % (iqn, tenant))
    now = _settled_loop_devices(sim, before.loops)
    for dev in sorted(set(now) - before.loops):
        problems.append('loop device %s (%s) left attached' % (
            dev, now[dev]))
    for name in sorted(lock_files(lock_dir) - before.lock_files):
        problems.append('lock file %s left' % name)
    return problems


# -- images on the cluster ---------------------------------------------------

def app_instance(sim, image_id, state=None):
    """The simulator's snapshot of an image's app instance, or None."""
    state = state or sim.state()
    for ai in state['app_instances']:
        if ai['id'] == image_id:
            return ai
    return None


def volume_file(sim, ai):
    """The backing file of an app instance's (first) volume."""
    volume = ai['storage_instances'][0]['volumes'][0]
    return os.path.join(sim.data_dir, 'volumes', volume['uuid'] + '.img')


def _data_extents(f, size):
    """(start, end) of the ranges of ``f`` below ``size`` that hold data.

    Holes of a sparse file read as zeros; only the rest needs reading.
    """
    fd = f.fileno()
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:         # ENXIO: only a hole is left
            return
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def _expected_zero(image, start, end):
    """Whether ``image`` holds only zeros in [start, end)."""
    block = getattr(image, 'block', len(_ZERO_BLOCK))
    zero_blocks = getattr(image, 'zero_blocks', ())
    offset = start
    while offset < end:
        n = min(block - offset % block, end - offset)
        if offset // block not in zero_blocks:
            if image.bytes_at(offset, n).count(0) != n:
                return False
        offset += n
    return True


def stored_bytes_problems(sim, image_id, image, size, piece=1024 * 1024,
                          state=None):
    """Compare the first ``size`` bytes of an image's volume with ``image``.

    Reads the simulator's backing file directly (only its data extents:
    an image of mostly zeros is checked in a fraction of its size).
    ``image`` has ``bytes_at(offset, length)``, as PatternImage does.
    """
    ai = app_instance(sim, image_id, state)
    if ai is None:
        return ['image %s has no app instance' % image_id]
    path = volume_file(sim, ai)
    try:
        f = open(path, 'rb')
    except OSError as e:
        return ['cannot read the volume of image %s: %s' % (image_id, e)]
    with f:
        if os.fstat(f.fileno()).st_size < size:
            return ['volume of image %s is smaller than the image' %
                    image_id]
        position = 0
        for start, end in _data_extents(f, size):
            if not _expected_zero(image, position, start):
                return ['image %s: bytes %d..%d are zeros on the volume' %
                        (image_id, position, start)]
            f.seek(start)
            offset = start
            while offset < end:
                n = min(piece, end - offset)
                if f.read(n) != image.bytes_at(offset, n):
                    return ['image %s: bytes differ in %d..%d' % (
                        image_id, offset, offset + n)]
                offset += n
            position = end
        if not _expected_zero(image, position, size):
            return ['image %s: bytes %d..%d are zeros on the volume' % (
                image_id, position, size)]
    return []


def metadata_problems(sim, image_id, size, md5, multihash=None, state=None):
    """The image's app instance metadata must describe a complete upload."""
    ai = app_instance(sim, image_id, state)
    if ai is None:
        return ['image %s has no app instance' % image_id]
    meta = ai['metadata']
    problems = []
    if meta.get('upload_state', 'complete') != 'complete':
        problems.append('image %s: upload_state %s' % (
            image_id, meta.get('upload_state')))
    if meta.get('length') != str(size):
        problems.append('image %s: recorded length %s, not %d' % (
            image_id, meta.get('length'), size))
    if meta.get('checksum') != md5:
        problems.append('image %s: recorded checksum %s, not %s' % (
            image_id, meta.get('checksum'), md5))
    if multihash is not None and meta.get('multihash') != multihash:
        problems.append('image %s: recorded multihash differs' % image_id)
    return problems


def stored_image_problems(sim, image_id, image, size, md5, multihash=None,
                          state=None):
    """Bytes and metadata of a stored image, compared with the original."""
    state = state or sim.state()
    return (metadata_problems(sim, image_id, size, md5, multihash, state) or
            stored_bytes_problems(sim, image_id, image, size, state=state))


def digests(image, size, algo='sha256', piece=8 * 1024 * 1024):
    """(md5, ``algo``) hex digests of the first ``size`` bytes of image."""
    md5 = hashlib.md5(usedforsecurity=False)
    other = hashlib.new(algo)
    offset = 0
    while offset < size:
        data = image.bytes_at(offset, min(piece, size - offset))
        md5.update(data)
        other.update(data)
        offset += len(data)
    return md5.hexdigest(), other.hexdigest()


# -- requests ----------------------------------------------------------------

def call_key(request, image_ids=()):
    """(method, path) of a logged request, image ids replaced by <image>."""
    path = request['path']
    for image_id in image_ids:
        path = path.replace(image_id, '<image>')
    return request['method'], path


def call_counts(requests_log, image_ids=()):
    return collections.Counter(call_key(r, image_ids) for r in requests_log)


def retry_problems(requests_log, reference_log, retry_attempts,
                   image_ids=(), allowance=0):
    """Requests beyond the configured retry bounds.

    Every distinct call (method and path, image ids generalized) may be
    sent at most ``(1 + retry_attempts)`` times as often as in a
    fault-free ``reference_log`` of the same operation (once, for a call
    the reference does not make, such as the clean-up of a failed upload),
    plus ``allowance`` (e.g. the log-in and the repeated request after
    expired keys).
    """
    reference = call_counts(reference_log, image_ids)
    problems = []
    for key, count in sorted(call_counts(requests_log, image_ids).items()):
        limit = (1 + retry_attempts) * max(reference.get(key, 0), 1)
        limit += allowance
        if count > limit:
            problems.append('%s %s sent %d times (at most %d)' % (
                key[0], key[1], count, limit))
    return problems


# -- removing leftovers ------------------------------------------------------

class ClusterAdmin:
    """The simulator's REST API as an administrator, to clean up.

    Independent of the driver: after a test reported a leak, this removes
    it so that the next test starts clean.
    """

    def __init__(self, sim):
        self.sim = sim
        self._session = requests.Session()
        self._key = None

    def close(self):
        self._session.close()

    def _url(self, path):
        return 'https://%s:%s/v2.2%s' % (self.sim.host, self.sim.port, path)

    def _login(self):
        resp = self._session.put(
            self._url('/login'), json={'name': self.sim.username,
                                       'password': self.sim.password},
            verify=self.sim.ca_file, timeout=30)
        resp.raise_for_status()
        self._key = resp.json()['key']

    def call(self, method, path, tenant=ROOT_TENANT, body=None):
        """One request; returns the HTTP status (re-logs in on 401)."""
        for _ in range(2):
            if self._key is None:
                self._login()
            resp = self._session.request(
                method, self._url(path), json=body, verify=self.sim.ca_file,
                timeout=30, headers={'Auth-Token': self._key,
                                     'tenant': tenant})
            if resp.status_code != 401:
                return resp.status_code
            self._key = None
        return resp.status_code

    def delete_app_instance(self, ai_id, tenant):
        self.call('PUT', '/app_instances/%s' % ai_id, tenant,
                  {'admin_state': 'offline', 'force': True})
        return self.call('DELETE', '/app_instances/%s' % ai_id, tenant,
                         {'force': True})

    def remove_acl_entry(self, ai_id, tenant, si_name, ref):
        kind = ('initiator_groups' if ref.startswith('/initiator_groups/')
                else 'initiators')
        return self.call(
            'PUT', '/app_instances/%s/storage_instances/%s/acl_policy/%s' % (
                ai_id, si_name, kind), tenant,
            {'op': 'remove', 'path': ref})

    def delete_initiator(self, iqn, tenant):
        return self.call('DELETE', '/initiators/%s' % iqn, tenant or
                         ROOT_TENANT)

    def restore(self, before, keep_app_instances, lock_dir=None,
                state=None):
        """Remove what :func:`leaks` would report, as far as possible.

        App instances not in ``keep_app_instances``, every ACL entry (and
        the app instances left online by them), initiators and lock files
        that are not in ``before``. Loop devices go with their app
        instances, unless this process still holds them open.
        """
        state = state or self.sim.state()
        for ai in state['app_instances']:
            if ai['id'] not in keep_app_instances:
                self.delete_app_instance(ai['id'], ai['tenant'])
                continue
            for si in ai['storage_instances']:
                acl = si.get('acl_policy') or {}
                refs = [_ref_path(r) for kind in ('initiators',
                                                  'initiator_groups')
                        for r in acl.get(kind) or []]
                for ref in refs:
                    self.remove_acl_entry(ai['id'], ai['tenant'],
                                          si['name'], ref)
            if ai['admin_state'] == 'online':
                self.call('PUT', '/app_instances/%s' % ai['id'],
                          ai['tenant'],
                          {'admin_state': 'offline', 'force': True})
        for tenant, iqn in initiators(state) - before.initiators:
            self.delete_initiator(iqn, tenant)
        for name in lock_files(lock_dir) - before.lock_files:
            try:
                os.unlink(os.path.join(lock_dir, name))
            except OSError:
                pass


def wait_until_idle(sim, timeout=30):
    """Let requests a client gave up on finish on the simulator."""
    try:
        return sim.wait_idle(timeout)
    except fixture.SimulatorError:
        return False


_GENERIC_ID = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def generic_path(path):
    """A request path with every UUID replaced by <id> (for reports)."""
    return _GENERIC_ID.sub('<id>', path)
