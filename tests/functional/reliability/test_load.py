"""Multi-host load: two glance-api hosts and two Datera clusters at once.

Two simulators are two clusters; four multi-store backends are two hosts
(distinct ``datera_initiator_name``) on each cluster::

    c1a  host A on cluster 1        c2a  host A on cluster 2
    c1b  host B on cluster 1        c2b  host B on cluster 2

Two threads per backend each run a bounded random mix drawn from a seeded
``random.Random`` (``DATERA_LOAD_SEED`` replays one; the seed is in the
summary line): uploads of known and unknown size, full and partial reads
of their own images and of images shared by every thread, copies of an
image to the other cluster under the same image id (glance's copy-image),
deletes of their own images (a copy on the other cluster must stay
intact), and deletes while the other host is in the middle of reading
the image. A fault injector meanwhile makes single requests answer 503 or
drop their connection; the store's retries must absorb every one.

While a host holds an image (inside an upload or between the chunks of a
read) its initiator must be in the app instance's ACL. Afterwards every
backend runs one ordinary operation, then: no app instance but the
expected ones, every one still byte-identical, no ACL entry, no export
and, once all images are deleted, none of anything
(``checks.leaks``: app instances, ACL entries, exports, new initiators,
loop devices) and no attach lock or holders file.

Nothing stops at the first problem: every one is counted and described,
and the test fails at the end with the summary line and the list.
"""

import collections
import os
import random
import re
import sys
import tempfile
import threading
import time
import traceback
import uuid

from glance_store import exceptions
from glance_store import multi_backend
# Registers [oslo_concurrency] lock_path on cfg.CONF.
from oslo_concurrency import lockutils  # noqa: F401
from oslo_config import cfg
from oslo_utils import units
import pytest

from datera_edf_sim import fixture
from datera_glance_dev import polling
from tests import conftest as top_conftest
from tests.functional import conftest as fx
from tests.functional.reliability import checks

MiB = units.Mi
GiB = units.Gi
CHUNK = MiB
HOSTS = {'a': 'iqn.2004-10.org.example:glance-load-host-a',
         'b': 'iqn.2004-10.org.example:glance-load-host-b'}
CLUSTERS = ('c1', 'c2')
THREADS_PER_BACKEND = 2
OPS_PER_THREAD = int(os.environ.get('DATERA_LOAD_OPS_PER_THREAD', 40))
# The random mix must be done within this many seconds.
RUN_BUDGET = float(os.environ.get('DATERA_LOAD_BUDGET', 150))
MAX_OWN_IMAGES = 5
SHARED_IMAGES = 3
MAX_FAULTS = 40         # placed; those that hit are counted from the logs
FAULT_PATIENCE = 3      # seconds a placed fault may wait for its request
WAIT = 30           # seconds for one coordination step or a cleanup
ACL_CHECK_EVERY = 2     # chunks between two ACL checks of a holder
FAULT_TARGETS = [
    ('GET', r'/app_instances/[^/]+$'),
    ('PUT', r'/app_instances/[^/]+$'),
    ('POST', r'/app_instances$'),
    ('DELETE', r'/app_instances/[^/]+$'),
    ('PUT', r'/acl_policy/initiators$'),
    ('GET', r'/storage_instances/storage-1$'),
    ('PUT', r'/(metadata|int_ecosystem_data)$'),
    ('GET', r'/(metadata|int_ecosystem_data)$'),
    ('PUT', r'/volumes/volume-1$'),
]
FAULT_KINDS = ('503', 'drop')
_UUID_RE = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                      r'[0-9a-f]{12}')
_SERIAL_RE = re.compile(r'sn:[0-9a-f]+')


def _seed():
    value = os.environ.get('DATERA_LOAD_SEED')
    return int(value) if value else random.SystemRandom().randrange(10 ** 6)


class LoadImage(fx.PatternImage):
    """A generated image in 1 MiB blocks; ``reader()`` replays it.

    ``on_read(position)`` is called before each read, which is when the
    store holds the image during an upload.
    """

    def __init__(self, size, zero_blocks=(), template=None, on_read=None):
        super(LoadImage, self).__init__(size, block=CHUNK,
                                        zero_blocks=zero_blocks)
        if template is not None:
            self._random = template._random
        self.image_id = template.image_id if template else str(uuid.uuid4())
        # What was done with it, oldest first: "<what> <backend>".
        self.history = template.history if template else []
        self.on_read = on_read

    def reader(self, on_read=None):
        """A fresh reader of the same bytes (for another upload)."""
        return LoadImage(self.size, self.zero_blocks, template=self,
                         on_read=on_read)

    def read(self, n=-1):
        if self.on_read is not None:
            self.on_read(self.pos)
        return super(LoadImage, self).read(n)


class StreamReader(object):
    """A file-like object over a store's read iterator (copy-image)."""

    def __init__(self, chunks, on_chunk=None):
        self._chunks = chunks
        self._buffer = b''
        self._on_chunk = on_chunk
        self.count = 0

    def read(self, n=-1):
        while not self._buffer or (n is not None and 0 <= n and
                                   len(self._buffer) < n):
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            if self._on_chunk is not None:
                self._on_chunk(self.count, chunk)
            self.count += 1
            self._buffer += chunk
        if n is None or n < 0:
            n = len(self._buffer)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


class Backend(object):
    """One multi-store backend: a host on a cluster."""

    def __init__(self, cluster, host, sim):
        self.name = cluster + host
        self.cluster = cluster
        self.host = host
        self.iqn = HOSTS[host]
        self.sim = sim

    def __repr__(self):
        return self.name

    def uri(self, image_id):
        return 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
            self.sim.host, self.sim.port, image_id)

    def add(self, image_id, data, size):
        return multi_backend.add_with_multihash(
            cfg.CONF, image_id, data, size, self.name, 'sha256')

    def get(self, image_id, **kwargs):
        return multi_backend.get(self.uri(image_id), self.name, **kwargs)

    def size(self, image_id):
        return multi_backend.get_size_from_uri_and_backend(
            self.uri(image_id), self.name)

    def delete(self, image_id):
        multi_backend.delete(self.uri(image_id), self.name)


class Problem(Exception):
    """Something the load found wrong, raised to end one operation."""


class Load(object):
    """Shared state of a run: backends, images, counters and findings."""

    def __init__(self, sims, seed, lock_dir):
        self.sims = sims
        self.seed = seed
        self.lock_dir = lock_dir
        self.backends = {(c, h): Backend(c, h, sims[c])
                         for c in CLUSTERS for h in HOSTS}
        self.shared = []
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.problems = collections.defaultdict(list)
        self.images = {}        # every image id used -> LoadImage
        self.uncertain = set()     # (cluster, id) after a failed call
        self.stop = threading.Event()
        self.deadline = None
        self.before = {}        # cluster -> checks.Snapshot

    def backend(self, cluster, host):
        return self.backends[(cluster, host)]

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def problem(self, kind, text):
        with self.lock:
            self.problems[kind].append(text)

    def error(self, where, exc):
        tb = traceback.extract_tb(exc.__traceback__)
        frames = ' <- '.join('%s:%d' % (os.path.basename(f.filename),
                                        f.lineno)
                             for f in reversed(tb[-4:]))
        self.problem('unexpected errors', '%s: %s: %s [%s]' % (
            where, type(exc).__name__, exc, frames))

    def new_image(self, rng, size=None, zero_chance=0.2, on_read=None):
        size = size or rng.randint(CHUNK, 8 * CHUNK) + rng.choice(
            [0, 0, 1, rng.randrange(CHUNK)])
        nblocks = -(-size // CHUNK)
        zeros = {i for i in range(nblocks) if rng.random() < zero_chance}
        image = LoadImage(size, zero_blocks=zeros, on_read=on_read)
        with self.lock:
            self.images[image.image_id] = image
        return image

    def history(self, image_id):
        image = self.images.get(image_id)
        return ', '.join(image.history[-8:]) if image else '?'

    # -- checks made while a host holds an image ----------------------------

    def check_acl(self, backend, image_id, where):
        """The holder's initiator must be in the app instance's ACL.

        Never raises: it runs inside the store's calls (an upload reads
        its data through it).
        """
        try:
            self._check_acl(backend, image_id, where)
        except Exception as e:
            self.error('ACL check of %s on %s' % (image_id, backend), e)

    def _check_acl(self, backend, image_id, where):
        self.count('acl checks')
        try:
            acl = fx.acl_initiators(backend.sim, image_id)
        except KeyError:
            self.problem('ACL violations', '%s on %s holds %s but its app '
                         'instance is gone (%s)' % (backend.host, backend,
                                                    image_id, where))
            return
        if '/initiators/' + backend.iqn not in acl:
            self.problem('ACL violations', '%s on %s holds %s but is not in '
                         'its ACL %s (%s)' % (backend.host, backend,
                                              image_id, acl, where))

    def upload_watcher(self, backend, image):
        """An ``on_read`` checking the ACL now and then during an upload.

        The first read may come before the attach, so checks start with
        the second block.
        """
        checked = set()

        def on_read(position):
            index = position // CHUNK
            if (0 < position < image.size and index not in checked and
                    index % ACL_CHECK_EVERY == 1):
                checked.add(index)
                self.check_acl(backend, image.image_id,
                               'upload, offset %d' % position)
        return on_read

    # -- store calls with their checks ---------------------------------------

    def upload(self, backend, image, known_size=True, what='upload'):
        """Upload ``image`` (a fresh reader of it) and check the result."""
        reader = image.reader(self.upload_watcher(backend, image))
        size = image.size if known_size else 0
        image.history.append('%s %s' % (what, backend))
        self.count('uploads')
        self.count('uploads of unknown size' if not known_size else
                   'uploads of known size')
        try:
            uri, written, _, multihash, meta = backend.add(
                image.image_id, reader, size)
        except Exception:
            self.mark_uncertain(backend.cluster, image.image_id)
            raise
        if (uri, written, meta) != (backend.uri(image.image_id), image.size,
                                    {'store': backend.name}):
            raise Problem('%s of %s returned %r' % (
                what, image.image_id, (uri, written, meta)))
        if multihash != reader.sha256:
            self.problem('corruptions', '%s %s on %s: multihash %s, the data '
                         'sent hashes to %s' % (what, image.image_id,
                                                backend, multihash,
                                                reader.sha256))

    def read(self, backend, image, offset=0, length=None, what='read',
             after_first=None):
        """Read (part of) an image and compare every byte.

        ``after_first`` is called once the first chunk arrived (the
        host holds the image then).
        """
        partial = offset != 0 or length is not None
        image.history.append('%s %s' % (what, backend))
        self.count('reads')
        self.count('partial reads' if partial else 'full reads')
        expected = min(image.size - offset, length if length is not None
                       else image.size)
        chunks, size = backend.get(image.image_id, offset=offset,
                                   chunk_size=length)
        try:
            if size != expected:
                raise Problem('%s of %s at %d+%s on %s: size %d, expected '
                              '%d' % (what, image.image_id, offset, length,
                                      backend, size, expected))
            position = offset
            for index, chunk in enumerate(chunks):
                if chunk != image.bytes_at(position, len(chunk)):
                    self.problem('corruptions', '%s of %s on %s: bytes '
                                 'differ in %d..%d' % (
                                     what, image.image_id, backend, position,
                                     position + len(chunk)))
                    return
                position += len(chunk)
                if index % ACL_CHECK_EVERY == 0:
                    self.check_acl(backend, image.image_id,
                                   '%s, offset %d' % (what, position))
                if index == 0 and after_first is not None:
                    after_first()
            if position - offset != expected:
                self.problem('corruptions', '%s of %s on %s: %d bytes, '
                             'expected %d' % (what, image.image_id, backend,
                                              position - offset, expected))
        finally:
            if hasattr(chunks, 'close'):
                chunks.close()

    def delete(self, backend, image_id):
        self.images[image_id].history.append('delete %s' % backend)
        self.count('deletes')
        try:
            backend.delete(image_id)
        except Exception:
            self.mark_uncertain(backend.cluster, image_id)
            raise

    def expect_not_found(self, backend, image_id, what):
        """A new read of a deleted image must be NotFound."""
        self.count('NotFound checks')
        try:
            chunks, _ = backend.get(image_id)
        except exceptions.NotFound:
            return
        if hasattr(chunks, 'close'):
            chunks.close()
        raise Problem('%s: %s on %s is still readable' % (what, image_id,
                                                          backend))

    def mark_uncertain(self, cluster, image_id):
        with self.lock:
            self.uncertain.add((cluster, image_id))


class Worker(object):
    """One thread of one backend, running its random mix."""

    WEIGHTS = [('upload', 16), ('upload_unknown', 8), ('copy', 6),
               ('read_own', 10), ('read_own_partial', 8),
               ('read_shared', 14), ('read_shared_partial', 10),
               ('delete_own', 16), ('delete_while_read', 5)]

    def __init__(self, load, backend, index):
        self.load = load
        self.backend = backend
        self.index = index
        self.rng = random.Random('%d/%d' % (load.seed, index))
        self.own = {}       # image id -> (LoadImage, {clusters})
        # One thin-provisioning thread per cluster uploads a >1 GiB image
        # of unknown size, mostly zeros, once.
        self.big_at = (self.rng.randrange(OPS_PER_THREAD)
                       if backend.host == 'a' and index % 2 == 0 else None)

    def __repr__(self):
        return '%s#%d' % (self.backend, self.index)

    def other(self, cluster=None, host=None):
        return self.load.backend(cluster or self.backend.cluster,
                                 host or self.backend.host)

    def run(self):
        names, weights = zip(*self.WEIGHTS)
        for n in range(OPS_PER_THREAD):
            if time.monotonic() > self.load.deadline:
                self.load.problem('operations not run', '%r: %d of %d left '
                                  'after %ss' % (self, OPS_PER_THREAD - n,
                                                 OPS_PER_THREAD, RUN_BUDGET))
                return
            op = ('big_unknown' if n == self.big_at else
                  self.rng.choices(names, weights)[0])
            op = self.feasible(op)
            try:
                getattr(self, op)()
                self.load.count('operations')
            except Problem as e:
                self.load.problem('wrong results',
                                  '%r %s: %s' % (self, op, e))
            except Exception as e:
                self.load.error('%r %s' % (self, op), e)

    def feasible(self, op):
        mine = [i for i, (_, cl) in self.own.items()
                if self.backend.cluster in cl]
        if op in ('upload', 'upload_unknown') and (
                len(self.own) >= MAX_OWN_IMAGES):
            return 'delete_own'
        if op in ('read_own', 'read_own_partial', 'copy') and not mine:
            return 'upload'
        if op == 'delete_own' and not self.own:
            return 'upload'
        return op

    def _pick_own(self, here=True):
        ids = sorted(i for i, (_, cl) in self.own.items()
                     if not here or self.backend.cluster in cl)
        return self.own[self.rng.choice(ids)]

    def _partial_range(self, size):
        offset = self.rng.choice([
            0, 1, CHUNK - 1, CHUNK, self.rng.randrange(size + 1),
            max(0, size - self.rng.randint(1, 5000)), size])
        length = self.rng.choice([None, 1, self.rng.randint(1, 3 * CHUNK),
                                  CHUNK, 2 * CHUNK + 7])
        return offset, length

    # -- operations ----------------------------------------------------------

    def upload(self, known_size=True):
        image = self.load.new_image(self.rng)
        self.load.upload(self.backend, image, known_size)
        self.own[image.image_id] = (image, {self.backend.cluster})

    def upload_unknown(self):
        self.upload(known_size=False)

    def big_unknown(self):
        """Unknown size past 1 GiB (thin: the zero blocks cost nothing)."""
        size = GiB + 2 * CHUNK + 12345
        nblocks = -(-size // CHUNK)
        keep = {0, GiB // CHUNK - 1, GiB // CHUNK, nblocks - 1}
        image = self.load.new_image(self.rng, size=size)
        image.zero_blocks = set(range(nblocks)) - keep
        self.load.count('uploads past 1 GiB')
        self.load.upload(self.backend, image, known_size=False,
                         what='big upload')
        got = self.backend.size(image.image_id)
        if got != size:
            raise Problem('size of big image %s is %d' % (image.image_id,
                                                          got))
        self.load.read(self.backend, image, offset=GiB - 5000,
                       length=2 * CHUNK, what='read across 1 GiB')
        self.load.read(self.backend, image, offset=size - CHUNK - 3,
                       what='read of the end')
        # Deleted at once: a final full read would cost seconds.
        self.load.delete(self.backend, image.image_id)
        self.load.expect_not_found(self.backend, image.image_id,
                                   'read after delete of big image')

    def copy(self):
        """glance's copy-image: read here, write the same id there."""
        image, clusters = self._pick_own()
        there = [c for c in CLUSTERS if c not in clusters]
        if not there:
            return self.read_own()
        target = self.other(cluster=there[0])
        source = self.backend
        self.load.count('copies')
        image.history.append('copy %s to %s' % (source, target))
        self.load.count('reads')
        self.load.count('full reads')

        def on_chunk(index, chunk):
            # Both hosts hold the image: the source reading, the target
            # (once the first chunk went in) writing.
            if index % ACL_CHECK_EVERY == 0:
                self.load.check_acl(source, image.image_id,
                                    'copy source, chunk %d' % index)
            if index % ACL_CHECK_EVERY == 1:
                self.load.check_acl(target, image.image_id,
                                    'copy target, chunk %d' % index)

        chunks, size = source.get(image.image_id)
        try:
            self.load.count('uploads')
            self.load.count('uploads of known size')
            try:
                uri, written, _, multihash, meta = target.add(
                    image.image_id, StreamReader(chunks, on_chunk), size)
            except Exception:
                self.load.mark_uncertain(target.cluster, image.image_id)
                raise
        finally:
            chunks.close()
        clusters.add(target.cluster)
        reader = image.reader()
        while reader.read(8 * CHUNK):
            pass
        if (written, multihash) != (image.size, reader.sha256):
            self.load.problem('corruptions', 'copy of %s to %s: %d bytes, '
                              'multihash %s, expected %d, %s' % (
                                  image.image_id, target, written,
                                  multihash, image.size, reader.sha256))

    def read_own(self, partial=False):
        image, _ = self._pick_own()
        # Either host of this cluster may read it.
        backend = self.other(host=self.rng.choice(sorted(HOSTS)))
        if partial:
            offset, length = self._partial_range(image.size)
            self.load.read(backend, image, offset, length, 'partial read')
        else:
            self.load.read(backend, image)

    def read_own_partial(self):
        self.read_own(partial=True)

    def read_shared(self, partial=False):
        image = self.rng.choice(self.load.shared)
        self.load.count('reads of shared images')
        if partial:
            offset, length = self._partial_range(image.size)
            self.load.read(self.backend, image, offset, length,
                           'partial read of shared image')
        else:
            self.load.read(self.backend, image, what='read of shared image')

    def read_shared_partial(self):
        self.read_shared(partial=True)

    def delete_own(self):
        image, clusters = self._pick_own(here=False)
        cluster = self.rng.choice(sorted(clusters))
        backend = self.other(cluster=cluster)
        clusters.discard(cluster)
        if not clusters:
            del self.own[image.image_id]
        self.load.delete(backend, image.image_id)
        reader = self.other(cluster=cluster,
                            host=self.rng.choice(sorted(HOSTS)))
        self.load.expect_not_found(reader, image.image_id,
                                   'read after delete')
        for rest in clusters:
            # The same image id on the other cluster is untouched.
            size = self.other(cluster=rest).size(image.image_id)
            if size != image.size:
                raise Problem('copy of %s on %s has size %d after the '
                              'delete on %s' % (image.image_id, rest, size,
                                                cluster))

    def delete_while_read(self):
        """This host deletes while the other host is mid-read.

        The image also lives on the other cluster under the same id,
        where the other host reads it at the same time.
        """
        load = self.load
        here = self.backend
        there = self.other(cluster=[c for c in CLUSTERS
                                    if c != here.cluster][0])
        peer = 'b' if here.host == 'a' else 'a'
        image = load.new_image(self.rng, size=self.rng.randint(
            3 * CHUNK, 8 * CHUNK) + self.rng.randrange(CHUNK), zero_chance=0)
        load.upload(here, image)
        load.upload(there, image, what='upload of the copy')
        self.own[image.image_id] = (image, {here.cluster, there.cluster})
        load.count('deletes while another host reads')

        readers = [self.other(host=peer),
                   self.other(cluster=there.cluster, host=peer)]
        started = [threading.Event() for _ in readers]
        go = threading.Event()
        failures = []

        def read(backend, started_event):
            def wait_for_delete():
                started_event.set()
                if not go.wait(WAIT):
                    raise Problem('the delete did not come within %ss'
                                  % WAIT)
            same = backend.cluster == here.cluster
            what = 'read by %s %s a delete on %s' % (
                backend, 'during' if same else 'of the copy during', here)
            try:
                load.read(backend, image, what=what,
                          after_first=wait_for_delete)
            except Problem as e:
                failures.append(e)
                load.problem('wrong results', '%r: %s' % (self, e))
            except Exception as e:
                failures.append(e)
                load.error('%r read by %s during a delete' % (self, backend),
                           e)
            finally:
                started_event.set()

        threads = [threading.Thread(target=read, args=(b, s), daemon=True,
                                    name='load-reader-%s' % b)
                   for b, s in zip(readers, started)]
        for t in threads:
            t.start()
        try:
            for event in started:
                if not event.wait(WAIT):
                    raise Problem('a reader did not start within %ss' % WAIT)
            if failures:
                return      # reported by the reader
            self.own[image.image_id][1].discard(here.cluster)
            load.delete(here, image.image_id)
            load.expect_not_found(here, image.image_id,
                                  'read by the deleting host')
            load.expect_not_found(readers[0], image.image_id,
                                  'new read by the host still reading')
        finally:
            go.set()
            for t in threads:
                t.join(2 * WAIT)
                if t.is_alive():
                    load.problem('hangs', '%s still reading after %ss' % (
                        t.name, 2 * WAIT))
        # The last reader is gone: so must the app instance be.
        try:
            polling.wait_for(
                lambda: image.image_id not in fx.app_instances(here.sim),
                timeout=WAIT, message='app instance %s gone from %s' % (
                    image.image_id, here.cluster))
        except AssertionError as e:
            load.problem('leaks: app instances', '%r: %s after the reading '
                         'host released it' % (self, e))
            load.mark_uncertain(here.cluster, image.image_id)


class FaultInjector(object):
    """Now and then, one request of a cluster answers 503 or is dropped.

    At most one injected fault is pending per cluster, so one store call
    never meets more than its retries can absorb.
    """

    def __init__(self, load):
        self.load = load
        self.rng = random.Random('%d/faults' % load.seed)
        self.injected = 0

    def run(self):
        placed = {}     # cluster -> when its pending fault was placed
        while (self.injected < MAX_FAULTS and
               not self.load.stop.wait(self.rng.uniform(0.2, 1.0))):
            cluster = self.rng.choice(CLUSTERS)
            sim = self.load.sims[cluster]
            method, pattern = self.rng.choice(FAULT_TARGETS)
            kind = self.rng.choice(FAULT_KINDS)
            try:
                if sim.faults()['failures']:
                    # Not hit yet; a rare request may never come.
                    if time.monotonic() - placed[cluster] < FAULT_PATIENCE:
                        continue
                    sim.clear_faults()
                sim.fail_next(method, pattern, 1, kind)
                placed[cluster] = time.monotonic()
                self.injected += 1
            except Exception as e:
                self.load.error('fault injector', e)


def _faults_hit(sim):
    return collections.Counter(r['fault'] for r in sim.requests()
                               if r.get('fault'))


def _attach_files(load):
    """Attach lock and holders files left for this run's images."""
    found = []
    if os.path.isdir(load.lock_dir):
        found += [os.path.join(load.lock_dir, name)
                  for name in os.listdir(load.lock_dir)
                  if name.startswith('datera-attach-')]
    # Should the driver not use [oslo_concurrency] lock_path: its own
    # private folder, shared with other runs, so only this run's images.
    private = os.path.join(tempfile.gettempdir(),
                           'datera-glance-locks-%d' % os.geteuid())
    if os.path.isdir(private):
        found += [os.path.join(private, name) for name in os.listdir(private)
                  if name.startswith('datera-attach-') and
                  name[len('datera-attach-'):][:36] in load.images]
    return sorted(found)


def _thread_stacks(threads):
    frames = sys._current_frames()
    out = []
    for t in threads:
        if t.is_alive() and t.ident in frames:
            out.append('%s:\n%s' % (t.name, ''.join(
                traceback.format_stack(frames[t.ident])[-8:])))
    return '\n'.join(out)


@pytest.fixture
def second_sim(tmp_path):
    """Cluster 2: another simulator, exporting like ``edf_sim``."""
    with fixture.running_simulator(
            str(tmp_path / 'edf-sim-2'),
            block_devices=top_conftest.can_use_block_devices()) as sim:
        yield sim


@pytest.fixture
def load(edf_sim, second_sim, glance_conf, privsep_in_process, tmp_path):
    """Four backends, two hosts on each of two clusters."""
    lock_dir = str(tmp_path / 'locks')
    os.mkdir(lock_dir, 0o700)
    glance_conf.set_override('lock_path', lock_dir, group='oslo_concurrency')
    sims = {'c1': edf_sim, 'c2': second_sim}
    backends = {}
    for cluster in CLUSTERS:
        for host, iqn in HOSTS.items():
            backends[cluster + host] = fx.datera_options(
                sims[cluster], datera_initiator_name=iqn,
                datera_chunk_size=CHUNK, datera_default_image_size=1,
                # Host A skips zero blocks, host B writes them.
                datera_thin_provisioning=(host == 'a'))
    assert fx.configure_multi_store(glance_conf, backends,
                                    default='c1a') == 4
    return Load(sims, _seed(), lock_dir)


def _share_images(load, rng):
    """Images both hosts read: on both clusters under the same id."""
    for n in range(SHARED_IMAGES):
        image = load.new_image(rng)
        for cluster in CLUSTERS:
            load.upload(load.backend(cluster, sorted(HOSTS)[n % 2]), image,
                        what='upload of a shared image')
        load.shared.append(image)


def _final_checks(load, workers):
    """One ordinary operation per backend, then look for what is left."""
    rng = random.Random('%d/final' % load.seed)
    for backend in load.backends.values():
        image = load.new_image(rng)
        try:
            load.upload(backend, image)
            load.read(backend, image)
            load.delete(backend, image.image_id)
        except Exception as e:
            load.error('final operation on %s' % backend, e)

    expected = {c: {i.image_id for i in load.shared} for c in CLUSTERS}
    images = {i.image_id: i for i in load.shared}
    for worker in workers:
        for image_id, (image, clusters) in worker.own.items():
            images[image_id] = image
            for cluster in clusters:
                expected[cluster].add(image_id)
    for cluster, sim in load.sims.items():
        wanted = {i for i in expected[cluster]
                  if (cluster, i) not in load.uncertain}
        ignored = {i for c, i in load.uncertain if c == cluster}

        def settled():
            return set(fx.app_instances(sim)) - ignored == wanted
        try:
            polling.wait_for(settled, timeout=WAIT)
        except AssertionError:
            pass
        present = set(fx.app_instances(sim)) - ignored
        for image_id in sorted(present - wanted):
            load.problem('leaks: app instances', 'app instance %s left on '
                         '%s; history: %s' % (image_id, cluster,
                                              load.history(image_id)))
        for image_id in sorted(wanted - present):
            load.problem('lost images', '%s missing from %s' % (
                image_id, cluster))
        shared = {i.image_id for i in load.shared}
        for image_id in sorted(present):
            acl = fx.acl_initiators(sim, image_id)
            if acl:
                load.problem('leaks: ACL entries', 'ACL of %s image %s on '
                             '%s holds %s after the load; history: %s' % (
                                 'shared' if image_id in shared else 'own',
                                 image_id, cluster, acl,
                                 load.history(image_id)))
        for path in fx.exports(sim):
            load.problem('leaks: exports', 'export left on %s after the '
                         'load: %s' % (cluster, os.path.relpath(
                             path, sim.export_dir)))

        # Every image kept is intact; then delete them all.
        for image_id in sorted(wanted & present):
            backend = load.backend(cluster, rng.choice(sorted(HOSTS)))
            try:
                load.read(backend, images[image_id], what='final read')
                load.delete(backend, image_id)
            except Exception as e:
                load.error('final read and delete on %s' % backend, e)
        try:
            polling.wait_for(lambda: not fx.app_instances(sim) and
                             not fx.exports(sim), timeout=WAIT)
        except AssertionError:
            pass
        # Also initiators and loop devices that were not there before.
        for text in checks.leaks(sim, load.before[cluster], None, set()):
            load.problem('leaks after deleting every image',
                         '%s: %s' % (cluster, text))
    for path in _attach_files(load):
        load.problem('leaks: attach files', 'attach file left: %s' % path)


def test_two_hosts_on_two_clusters_under_random_load(load, capsys):
    started = time.monotonic()
    rng = random.Random('%d/setup' % load.seed)
    _share_images(load, rng)
    load.counts.clear()     # the summary counts the load itself
    # Both hosts registered their initiators on both clusters by now.
    load.before = {c: checks.snapshot(sim, None)
                   for c, sim in load.sims.items()}

    workers = [Worker(load, load.backend(c, h), n)
               for n, (c, h) in enumerate(
                   (c, h) for c in CLUSTERS for h in sorted(HOSTS)
                   for _ in range(THREADS_PER_BACKEND))]
    injector = FaultInjector(load)
    load.deadline = time.monotonic() + RUN_BUDGET
    threads = [threading.Thread(target=w.run, name='load-%r' % w,
                                daemon=True) for w in workers]
    fault_thread = threading.Thread(target=injector.run, daemon=True,
                                    name='load-faults')
    for t in threads + [fault_thread]:
        t.start()
    for t in threads:
        t.join(max(1, load.deadline - time.monotonic()) + 2 * WAIT)
    load.stop.set()
    fault_thread.join(WAIT)
    hung = [t for t in threads if t.is_alive()]
    if hung:
        load.problem('hangs', 'threads still running:\n' +
                     _thread_stacks(hung))
    for sim in load.sims.values():
        sim.clear_faults()
    faults = sum((_faults_hit(sim) for sim in load.sims.values()),
                 collections.Counter())
    mix_seconds = time.monotonic() - started
    if not hung:
        _final_checks(load, workers)

    c = load.counts
    problems = dict(load.problems)
    found = collections.Counter({k: len(v) for k, v in problems.items()})
    summary = (
        'load: %d hosts x %d clusters, %d threads, %d operations '
        '(uploads %d, reads %d, deletes %d), %d injected faults, '
        '%d unexpected errors, %d corruptions, %d leaks; '
        '%d ACL violations, %d wrong results, %d lost images, %d hangs, '
        '%d operations not run; uploads of unknown size %d (%d past 1 GiB), '
        'copies %d, partial reads %d, reads of shared images %d, deletes '
        'while another host reads %d, ACL checks %d; faults %s; '
        'seed %d (DATERA_LOAD_SEED), mix %.1f s, total %.1f s' % (
            len(HOSTS), len(CLUSTERS), len(threads),
            c['uploads'] + c['reads'] + c['deletes'],
            c['uploads'], c['reads'], c['deletes'], sum(faults.values()),
            found['unexpected errors'], found['corruptions'],
            sum(n for k, n in found.items() if k.startswith('leaks')),
            found['ACL violations'], found['wrong results'],
            found['lost images'], found['hangs'],
            found['operations not run'],
            c['uploads of unknown size'], c['uploads past 1 GiB'],
            c['copies'], c['partial reads'], c['reads of shared images'],
            c['deletes while another host reads'], c['acl checks'],
            dict(faults), load.seed, mix_seconds,
            time.monotonic() - started))
    with capsys.disabled():
        print('\n' + summary)

    report = [summary]
    for kind, items in sorted(problems.items()):
        groups = collections.Counter(
            _SERIAL_RE.sub('sn:<sn>', _UUID_RE.sub('<id>', i))
            for i in items)
        report.append('%s (%d):' % (kind, len(items)))
        report += ['  %dx %s' % (n, text)
                   for text, n in groups.most_common(12)]
    assert not problems, '\n'.join(report)
