"""The fault matrix: store operations x faults x the REST call hit.

A :class:`Bench` is one simulator and one Datera store configured on it
through glance_store's public API, warmed up (tenant and this host's
initiator exist) and holding a *resident* image; a :class:`BenchGroup`
holds a few, so that cases run two at a time. For an operation a bench
first records the REST calls of a fault-free run; a fault is then placed
at call k of that sequence (the simulator lets the earlier identical
calls through), the operation runs once, and :func:`run_case` judges the
outcome:

* success with byte-identical data, or a glance_store exception naming
  the image (the source's own exception, unchanged, when the source
  failed);
* after one more ordinary operation on the same store (get_size of the
  resident image: the driver may finish leftover clean-up then),
  nothing left that the operation created: app instance, ACL entry,
  initiator, export, loop device, lock file;
* the images that existed before are intact (bytes on the volume and
  metadata);
* no call sent more often than the retry bounds allow.

Each case's :class:`Result` goes to :data:`RESULTS` for the summary line.
"""

from concurrent import futures
import dataclasses
import functools
import inspect
import os
import queue
import random
import re
import shutil
import sys
import threading
import time
import traceback
import uuid

from glance_store import exceptions
from glance_store import location
from glance_store import multi_backend
# Registers [oslo_concurrency] lock_path, which a bench sets.
from oslo_concurrency import lockutils  # noqa: F401
from oslo_config import cfg
from oslo_utils import units

from datera_edf_sim import fixture
from datera_glance_dev import stores
from tests import conftest as top_conftest
from tests.functional.reliability import checks

MiB = units.Mi
GiB = units.Gi
BACKEND = 'matrix'
TENANT = 'glance'
TENANT_PATH = '/root/glance'
CHUNK = MiB
HASH_ALGO = 'sha256'

# A case whose operation has not returned by then hung: its bench takes no
# more cases (the thread cannot be stopped) and the next test gets a new
# group of benches.
CASE_TIMEOUT = float(os.environ.get('DATERA_MATRIX_CASE_TIMEOUT', '60'))
RETRY_ATTEMPTS = 2
RETRY_INTERVAL = 0.01
OPERATION_TIMEOUT = float(os.environ.get('DATERA_MATRIX_TIMEOUT', '1'))
# Beyond the operation timeout: the client gives up before the answer.
LATENCY = OPERATION_TIMEOUT + 0.25
# Calls the re-login after expired keys adds (PUT /login, GET /system,
# the refused request again).
RELOGIN_ALLOWANCE = 2

# Every exception class glance_store defines.
GLANCE_EXCEPTIONS = tuple(
    cls for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, BaseException) and
    cls.__module__ == exceptions.__name__)

RESULTS = []


# -- images -------------------------------------------------------------------

class Image(stores.PatternImage):
    """A generated image whose random block comes from a seed.

    Two images of one spec hold the same bytes, so their digests are
    computed once. ``fail_at``: raise ``error`` once that many bytes were
    read (the client went away half way).
    """

    def __init__(self, spec, fail_at=None, error=None):
        super().__init__(spec.size, block=CHUNK,
                         zero_blocks=spec.zero_blocks, track=False)
        self._random = spec.random_block
        self.fail_at = fail_at
        self.error = error

    def read(self, n=-1):
        if self.fail_at is not None and self.pos >= self.fail_at:
            raise self.error
        return super().read(n)


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    size: int
    zero_blocks: frozenset = frozenset()
    seed: int = 0

    @functools.cached_property
    def random_block(self):
        return random.Random(self.seed).randbytes(CHUNK)

    def open(self, **kwargs):
        return Image(self, **kwargs)

    @functools.cached_property
    def digests(self):
        """(md5, multihash) of the image."""
        return checks.digests(self.open(), self.size, HASH_ALGO)


# A few chunks and a partial one.
SMALL = ImageSpec(3 * MiB + 12345, seed=1)
# Just over 1 GiB, zeros but for the first block, the blocks around the
# GiB boundary and the last: uploaded without a size, its volume starts at
# datera_default_image_size (1 GiB) and must grow once.
_GROW_SIZE = GiB + MiB + 4321
GROWING = ImageSpec(_GROW_SIZE, frozenset(
    range(1, _GROW_SIZE // CHUNK)) - {GiB // CHUNK - 1, GiB // CHUNK},
    seed=2)
# A small image every bench keeps.
RESIDENT = ImageSpec(2 * MiB + 777, seed=3)
PARTIAL_OFFSET = MiB - 7
PARTIAL_LENGTH = MiB + 13


class SourceError(IOError):
    """What the image source raises half way (the client went away)."""


# -- the bench -------------------------------------------------------------

def store_options(sim, **overrides):
    return stores.datera_options(
        sim, datera_tenant_id=TENANT, datera_chunk_size=CHUNK,
        datera_thin_provisioning=True, datera_default_image_size=1,
        datera_retry_attempts=RETRY_ATTEMPTS,
        datera_retry_interval=RETRY_INTERVAL,
        datera_operation_max_timeout=OPERATION_TIMEOUT, **overrides)


class Bench:
    """A simulator and the warmed-up Datera store (a backend) on it.

    Made by a :class:`BenchGroup`, which owns cfg.CONF; each bench has
    its own simulator, request log and faults, so cases on different
    benches of a group can run at the same time.
    """

    def __init__(self, root, backend):
        self.root = root
        self.backend = backend
        self.conf = cfg.CONF
        self.store = None
        self.lock_dir = None
        self.sequences = {}
        self.broken = None            # why the bench cannot be used
        # Grows finish at once: the number of polls, hence the call
        # sequence, does not depend on timing.
        self.sim = fixture.SimulatorProcess(
            os.path.join(root, 'edf-sim'),
            block_devices=top_conftest.can_use_block_devices(),
            resize_seconds=0)
        self.sim.start()
        self.admin = checks.ClusterAdmin(self.sim)

    def set_up(self, lock_dir):
        """Warm the configured store up and store the resident image."""
        self.lock_dir = lock_dir
        self.store = multi_backend.get_store_from_store_identifier(
            self.backend)
        self._warm_up()
        self.resident_id = str(uuid.uuid4())
        self.add(self.resident_id, RESIDENT.open(), RESIDENT.size)
        self.baseline = checks.snapshot(self.sim, self.lock_path)

    @property
    def tenant(self):
        return TENANT_PATH

    def _warm_up(self):
        # The tenant and this host's initiator are the host's, not any
        # operation's: make them exist before anything is recorded.
        image_id = str(uuid.uuid4())
        self.add(image_id, SMALL.open(), SMALL.size)
        chunks, _ = self.read(image_id)
        for _chunk in chunks:
            pass
        multi_backend.delete(self.uri(image_id), self.backend)

    @property
    def lock_path(self):
        """Where the store keeps its lock (and holders) files.

        Shared by the benches of a group (it is a process-wide option).
        """
        attacher = getattr(self.store, 'attacher', None)
        return (getattr(attacher, 'lock_path', None) or
                getattr(attacher, '_lock_path', None) or self.lock_dir)

    def uri(self, image_id):
        return 'datera://%s:%d/app_instances/OS-IMAGE-%s' % (
            self.sim.host, self.sim.port, image_id)

    def add(self, image_id, source, size):
        return multi_backend.add_with_multihash(
            self.conf, image_id, source, size, self.backend, HASH_ALGO)

    def read(self, image_id, offset=0, length=None):
        kwargs = {}
        if offset:
            kwargs['offset'] = offset
        if length is not None:
            kwargs['chunk_size'] = length
        return multi_backend.get(self.uri(image_id), self.backend, **kwargs)

    def get_size(self, image_id):
        return multi_backend.get_size_from_uri_and_backend(
            self.uri(image_id), self.backend)

    def delete(self, image_id):
        return multi_backend.delete(self.uri(image_id), self.backend)

    def reset_faults(self, fault=None):
        """Remove what a fault left in place (after a wait for idle)."""
        self.sim.clear_faults()
        if fault in (None, 'full'):
            self.sim.set_capacity(None)

    def close(self):
        if self.sim.running:
            self.admin.close()
            self.sim.stop()


class BenchGroup:
    """``size`` benches, each a backend in cfg.CONF on its own simulator.

    glance_store keeps its stores in module globals and reads only the
    global CONF: a group owns both while it is open (one at a time), and
    restores them when closed. The lock folder is shared (it is the
    process-wide ``[oslo_concurrency] lock_path``).
    """

    def __init__(self, root, size=1):
        self.root = root
        self.conf = cfg.CONF
        self._saved_maps = (dict(location.SCHEME_TO_CLS_MAP),
                            dict(location.SCHEME_TO_CLS_BACKEND_MAP))
        location.SCHEME_TO_CLS_MAP.clear()
        location.SCHEME_TO_CLS_BACKEND_MAP.clear()
        self.conf(args=[], default_config_files=[])
        self.benches = []
        try:
            for i in range(size):
                self.benches.append(Bench(os.path.join(root, 'bench%d' % i),
                                          '%s%d' % (BACKEND, i)))
            lock_dir = os.path.join(root, 'locks')
            os.makedirs(lock_dir, mode=0o700, exist_ok=True)
            self.conf.set_override('lock_path', lock_dir,
                                   'oslo_concurrency')
            count = stores.configure_multi_store(
                self.conf, {b.backend: store_options(b.sim)
                            for b in self.benches}, self.benches[0].backend)
            assert count == size, 'the Datera stores did not load'
            for bench in self.benches:
                bench.set_up(lock_dir)
        except BaseException:
            self.close()
            raise

    @property
    def broken(self):
        return any(b.broken for b in self.benches)

    def close(self):
        try:
            for bench in self.benches:
                bench.close()
        finally:
            self.conf.reset()
            location.SCHEME_TO_CLS_MAP.clear()
            location.SCHEME_TO_CLS_MAP.update(self._saved_maps[0])
            location.SCHEME_TO_CLS_BACKEND_MAP.clear()
            location.SCHEME_TO_CLS_BACKEND_MAP.update(self._saved_maps[1])
            shutil.rmtree(self.root, ignore_errors=True)


# -- operations ------------------------------------------------------------

@dataclasses.dataclass
class Case:
    """One run of an operation, with or without a fault."""

    operation: str
    fault: str
    k: int = 0                    # 0: no placed fault
    call: str = ''                # the call the fault hits
    image_id: str = ''
    spec: ImageSpec = None
    source: Image = None
    declared: int = 0
    existed: bool = False         # the image existed before the operation
    result: object = None
    error: BaseException = None
    delivered: int = 0            # bytes a read yielded
    data_ok: bool = True          # the bytes a read yielded were right
    seconds: float = 0.0


class Operation:
    """A store operation the matrix exercises."""

    name = None
    # The faults about the image source apply to uploads only.
    source_faults = ()
    # Whether the subset hits the first call with every fault.
    subset_first_call = True

    def prepare(self, bench, case):
        """Set up what the operation works on (fault-free)."""

    def run(self, bench, case):
        raise NotImplementedError

    def check_success(self, bench, case):
        """Problems with a successful outcome: (failures, corruptions)."""
        return [], []

    def images_after(self, bench, case, state):
        """Ids of the images that must exist after the case."""
        return {bench.resident_id}

    def intact_problems(self, bench, case, state):
        """(leaks, corruptions) of the image the case worked on.

        It existed before the case and is to stay: it must be intact.
        """
        md5, _ = case.spec.digests
        return [], checks.stored_image_problems(
            bench.sim, case.image_id, case.spec.open(), case.spec.size, md5,
            state=state)


class Add(Operation):
    source_faults = ('source_raises',)

    def __init__(self, name, spec, known_size):
        self.name = name
        self.spec = spec
        self.known_size = known_size
        # An upload that gets through costs a GiB of hashing here; the
        # known-size upload already hits the create with every fault.
        self.subset_first_call = known_size
        if known_size:
            self.source_faults = ('source_raises', 'source_short',
                                  'source_long')

    def prepare(self, bench, case):
        case.image_id = str(uuid.uuid4())
        case.spec = self.spec
        case.declared = self.spec.size if self.known_size else 0
        if case.fault == 'source_raises':
            case.source = self.spec.open(
                fail_at=self.spec.size // 2 // CHUNK * CHUNK,
                error=SourceError('the client went away (injected)'))
        else:
            case.source = self.spec.open()
        if case.fault == 'source_short':
            case.declared = self.spec.size + 1000
        elif case.fault == 'source_long':
            case.declared = self.spec.size - 1000

    def run(self, bench, case):
        return bench.add(case.image_id, case.source, case.declared)

    def check_success(self, bench, case):
        spec = case.spec
        md5, multihash = spec.digests
        uri, written, got_md5, got_multihash, meta = case.result
        failures = []
        if uri != bench.uri(case.image_id):
            failures.append('returned location %s' % uri)
        if meta != {'store': bench.backend}:
            failures.append('returned metadata %r' % (meta,))
        corruptions = []
        if (written, got_md5, got_multihash) != (spec.size, md5, multihash):
            corruptions.append('returned size/md5/multihash %s/%s/%s, not '
                               '%s/%s/%s' % (written, got_md5, got_multihash,
                                             spec.size, md5, multihash))
        corruptions += checks.stored_image_problems(
            bench.sim, case.image_id, spec.open(), spec.size, md5, multihash)
        return failures, corruptions

    def images_after(self, bench, case, state):
        ids = {bench.resident_id}
        if case.error is None:
            ids.add(case.image_id)
        return ids


class Read(Operation):
    """A full or partial read of the resident image."""

    def __init__(self, name, offset=0, length=None):
        self.name = name
        self.offset = offset
        self.length = length

    @property
    def expected_length(self):
        end = RESIDENT.size if self.length is None else min(
            RESIDENT.size, self.offset + self.length)
        return end - self.offset

    def prepare(self, bench, case):
        case.image_id = bench.resident_id
        case.spec = RESIDENT
        case.existed = True

    def run(self, bench, case):
        chunks, size = bench.read(case.image_id, self.offset, self.length)
        image = RESIDENT.open()
        position = self.offset
        try:
            for chunk in chunks:
                if chunk != image.bytes_at(position, len(chunk)):
                    case.data_ok = False
                position += len(chunk)
                case.delivered = position - self.offset
        finally:
            close = getattr(chunks, 'close', None)
            if close is not None:
                close()
        return size

    def check_success(self, bench, case):
        corruptions = []
        if case.result != self.expected_length:
            corruptions.append('get returned size %s, not %d' % (
                case.result, self.expected_length))
        if case.delivered != self.expected_length:
            corruptions.append('read ended after %d of %d bytes' % (
                case.delivered, self.expected_length))
        if not case.data_ok:
            corruptions.append('read yielded wrong bytes')
        return [], corruptions


class GetSize(Operation):
    name = 'get_size'

    def prepare(self, bench, case):
        case.image_id = bench.resident_id
        case.spec = RESIDENT
        case.existed = True

    def run(self, bench, case):
        return bench.get_size(case.image_id)

    def check_success(self, bench, case):
        if case.result != RESIDENT.size:
            return [], ['get_size returned %s, not %d' % (case.result,
                                                          RESIDENT.size)]
        return [], []


class Delete(Operation):
    name = 'delete'

    def prepare(self, bench, case):
        case.image_id = str(uuid.uuid4())
        case.spec = SMALL
        case.existed = True
        bench.add(case.image_id, SMALL.open(), SMALL.size)

    def run(self, bench, case):
        return bench.delete(case.image_id)

    def check_success(self, bench, case):
        # Gone for reads at once; its app instance may stay until the
        # store's next operation (the leak check runs after one) when the
        # cluster did not let the delete finish.
        if checks.app_instance(bench.sim, case.image_id) is None:
            return [], []
        try:
            bench.get_size(case.image_id)
        except exceptions.NotFound:
            return [], []
        except Exception as e:
            return ['after the delete, reading its size raised %s' %
                    type(e).__name__], []
        return ['delete succeeded but the image is still readable'], []

    def images_after(self, bench, case, state):
        ids = {bench.resident_id}
        if (case.error is not None and
                checks.app_instance(bench.sim, case.image_id, state)):
            # A failed delete may leave the image; then it must be intact.
            ids.add(case.image_id)
        return ids

    def intact_problems(self, bench, case, state):
        ai = checks.app_instance(bench.sim, case.image_id, state)
        mark = ai['metadata'].get('upload_state')
        if mark == 'deleting':
            # Neither intact nor gone: the store treats it as deleted
            # (unreadable), yet its app instance is still there.
            return ['app instance %s left marked %s after the failed '
                    'delete' % (case.image_id, mark)], []
        return super().intact_problems(bench, case, state)


OPERATIONS = {op.name: op for op in (
    Add('add_known_size', SMALL, known_size=True),
    Add('add_unknown_size', GROWING, known_size=False),
    Read('get_full'),
    Read('get_partial', PARTIAL_OFFSET, PARTIAL_LENGTH),
    GetSize(),
    Delete(),
)}


# -- faults -------------------------------------------------------------------

# Faults placed at one REST call of an operation.
PLACED_FAULTS = ('503_burst', '500', 'drop', 'drop_after', 'latency',
                 'expire_keys', 'full', 'force_offline')
SOURCE_FAULTS = ('source_raises', 'source_short', 'source_long')


def place_fault(bench, case, method, path, skip):
    """Arm ``case.fault`` for the (skip+1)-th request ``method path``."""
    sim = bench.sim
    pattern = '^%s$' % re.escape(path)
    kind = case.fault
    if kind == '503_burst':
        # Shorter than the retry budget: the last try gets through.
        sim.fail_next(method, pattern, count=RETRY_ATTEMPTS, kind='503',
                      skip=skip)
    elif kind == 'latency':
        sim.add_latency(LATENCY, method, pattern, count=1, skip=skip)
    elif kind == 'force_offline':
        sim.fail_next(method, pattern, kind='force_offline', skip=skip,
                      ai_id=case.image_id, tenant=bench.tenant)
    else:
        sim.fail_next(method, pattern, kind=kind, skip=skip)


def fault_fired(bench, case, requests_log):
    if case.fault == 'latency':
        return not bench.sim.faults()['latency']
    return any(r.get('fault') for r in requests_log)


def must_succeed(operation, fault):
    """Faults the store must absorb without an error."""
    if fault in ('none', '503_burst'):
        return True
    # Nothing to fill for an operation that creates nothing.
    return fault == 'full' and not isinstance(operation, Add)


def expected_errors(operation, fault):
    """The exception classes a failure under ``fault`` may raise."""
    if fault in ('source_short', 'source_long'):
        return (exceptions.Invalid,)
    if fault == 'full' and isinstance(operation, Add):
        return (exceptions.StorageFull,)
    return GLANCE_EXCEPTIONS


# -- running and judging one case --------------------------------------------

@dataclasses.dataclass
class Result:
    operation: str
    fault: str
    k: int
    call: str
    outcome: str
    seconds: float                # the whole case, checks included
    failures: list = dataclasses.field(default_factory=list)
    leaks: list = dataclasses.field(default_factory=list)
    corruptions: list = dataclasses.field(default_factory=list)
    op_seconds: float = 0.0       # the operation alone

    @property
    def ok(self):
        return not (self.failures or self.leaks or self.corruptions)

    def describe(self):
        where = ('k=%d %s' % (self.k, self.call)) if self.k else '-'
        problems = (['FAIL ' + p for p in self.failures] +
                    ['LEAK ' + p for p in self.leaks] +
                    ['CORRUPT ' + p for p in self.corruptions])
        return '%s / %s / %s: %s; %s' % (
            self.operation, self.fault, where, self.outcome,
            '; '.join(problems) or 'ok')


def _outcome(case):
    if case.error is None:
        return 'ok'
    return '%s: %s' % (type(case.error).__name__,
                       str(case.error).splitlines()[0][:160]
                       if str(case.error) else '')


def record_sequence(bench, operation):
    """The REST calls of a fault-free run: [(method, path with <image>)].

    The fault-free run is a case of its own (fault ``none``).
    """
    if operation.name not in bench.sequences:
        result, log, case = run_case(bench, operation, 'none')
        if bench.broken:
            raise AssertionError('the fault-free %s %s' % (
                operation.name, bench.broken))
        bench.sequences[operation.name] = (
            [checks.call_key(r, [case.image_id]) for r in log], log,
            case.image_id)
    return bench.sequences[operation.name]


def run_case(bench, operation, fault, k=0):
    """Run ``operation`` once with ``fault`` at its k-th call; judge it.

    :returns: (Result, the requests of the operation, the Case)
    """
    case = Case(operation=operation.name, fault=fault, k=k)
    # The previous case left the simulator idle and without faults.
    operation.prepare(bench, case)
    sim = bench.sim
    # What the preparation made (a delete's image) is not the case's.
    before = dataclasses.replace(
        bench.baseline, loops=frozenset(checks.loop_devices(sim)),
        lock_files=frozenset(checks.lock_files(bench.lock_path)))
    if k:
        sequence = bench.sequences[operation.name][0]
        method, template = sequence[k - 1]
        skip = sequence[:k - 1].count((method, template))
        path = template.replace('<image>', case.image_id)
        case.call = '%s %s' % (method, checks.generic_path(path))
    sim.clear_requests()
    if k:
        place_fault(bench, case, method, path, skip)

    started = time.monotonic()
    case.result, case.error, hung = _run_with_timeout(
        lambda: operation.run(bench, case), operation.name)
    case.seconds = time.monotonic() - started
    if hung:
        result = Result(operation.name, fault, k, case.call, 'hung',
                        case.seconds, failures=[hung])
        bench.broken = hung
        RESULTS.append(result)
        return result, [], case

    # Requests the client gave up on finish before anything is checked.
    checks.wait_until_idle(sim)
    log = sim.requests()
    result = Result(operation.name, fault, k, case.call, _outcome(case),
                    case.seconds, op_seconds=case.seconds)
    if k and not fault_fired(bench, case, log):
        # The calls before k differ from the fault-free run's: the case
        # tested nothing.
        result.failures.append('fault not reached (the calls before it '
                               'differ from the fault-free run)')
    if k:
        bench.reset_faults(fault)

    _judge_outcome(bench, operation, case, result)
    if k or fault in SOURCE_FAULTS:
        reference = bench.sequences[operation.name]
        result.failures += checks.retry_problems(
            log, reference[1], RETRY_ATTEMPTS,
            image_ids=[case.image_id, reference[2]],
            allowance=RELOGIN_ALLOWANCE if fault == 'expire_keys' else 0)
    _follow_up_and_leaks(bench, operation, case, result, before)
    result.seconds = time.monotonic() - started
    RESULTS.append(result)
    return result, log, case


def _run_with_timeout(func, name):
    """Call ``func`` in a thread, for at most CASE_TIMEOUT seconds.

    :returns: (result, exception, None), or (None, None, a description of
        where it hangs) when it did not return in time.
    """
    outcome = [None, None]

    def run():
        try:
            outcome[0] = func()
        except BaseException as e:     # noqa: B902 - judged by the caller
            outcome[1] = e
    thread = threading.Thread(target=run, daemon=True,
                              name='matrix-%s' % name)
    thread.start()
    thread.join(CASE_TIMEOUT)
    if not thread.is_alive():
        return outcome[0], outcome[1], None
    frame = sys._current_frames().get(thread.ident)
    stack = traceback.format_stack(frame) if frame else []
    ours = [line.strip().splitlines()[0] for line in stack
            if 'datera_glance' in line]
    return None, None, '%s hung: no answer within %ds; stack: %s' % (
        name, CASE_TIMEOUT, ' <- '.join(reversed(ours[-6:])) or '?')


def _judge_outcome(bench, operation, case, result):
    if case.error is None:
        if fault_is_source_size(case.fault):
            result.failures.append('a source of the wrong size was stored')
            return
        if case.fault == 'source_raises':
            result.failures.append('the failing source was not noticed')
            return
        failures, corruptions = operation.check_success(bench, case)
        result.failures += failures
        result.corruptions += corruptions
        return
    error = case.error
    if must_succeed(operation, case.fault):
        result.failures.append('must succeed')
    if case.fault == 'source_raises':
        if error is not case.source.error:
            result.failures.append(
                'the source\'s exception was not passed through unchanged')
    else:
        allowed = expected_errors(operation, case.fault)
        if not isinstance(error, allowed):
            result.failures.append('%s is not %s' % (
                type(error).__name__,
                'a glance_store exception' if allowed is GLANCE_EXCEPTIONS
                else ' or '.join(c.__name__ for c in allowed)))
        if case.image_id not in str(error):
            result.failures.append('the message does not name the image')
    if isinstance(operation, Read):
        if not case.data_ok:
            result.corruptions.append('read yielded wrong bytes')
        elif (case.delivered and
              case.delivered == operation.expected_length):
            result.failures.append('raised after all the data was '
                                   'delivered')


def fault_is_source_size(fault):
    return fault in ('source_short', 'source_long')


def _follow_up_and_leaks(bench, operation, case, result, before):
    sim = bench.sim
    # One more ordinary operation on the same store and cluster, which
    # may finish what the case left to clean up: the size of the resident
    # image (the cheapest; whether it is intact is checked below).
    size, error, hung = _run_with_timeout(
        lambda: bench.get_size(bench.resident_id), 'next operation')
    if hung:
        result.failures.append(hung)
        bench.broken = hung
        return
    if error is not None:
        result.failures.append('the next operation failed: %s: %s' % (
            type(error).__name__, str(error).splitlines()[0][:160]
            if str(error) else ''))
    elif size != RESIDENT.size:
        result.corruptions.append('resident image has size %s, not %d' % (
            size, RESIDENT.size))
    state = sim.state()
    keep = operation.images_after(bench, case, state)
    result.leaks += checks.leaks(sim, before, None, keep, state)
    lock_files = _new_lock_files(bench, case, before)
    result.leaks += ['lock file %s left' % name for name in lock_files]
    md5, _ = RESIDENT.digests
    result.corruptions += checks.stored_image_problems(
        sim, bench.resident_id, RESIDENT.open(), RESIDENT.size, md5,
        state=state)
    # The image the operation worked on, if it is to stay, is intact.
    if (case.existed and case.image_id in keep and
            case.image_id != bench.resident_id):
        leaks, corruptions = operation.intact_problems(bench, case, state)
        result.leaks += leaks
        result.corruptions += corruptions
    # Back to the baseline for the next case: nothing but the resident.
    bench.admin.restore(bench.baseline, {bench.resident_id}, None, state)
    for name in lock_files:
        try:
            os.unlink(os.path.join(bench.lock_path, name))
        except OSError:
            pass
    bench.baseline = dataclasses.replace(
        bench.baseline, loops=frozenset(checks.loop_devices(sim)))


def _new_lock_files(bench, case, before):
    """Lock files the case left in the (shared) lock folder.

    Files naming an image of another bench belong to the case running
    there at the same time.
    """
    ours = {case.image_id, bench.resident_id}
    return sorted(
        name for name in checks.lock_files(bench.lock_path) -
        before.lock_files
        if set(_UUID.findall(name)) <= ours)


_UUID = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')


def run_cases(group, operation, fault, points):
    """Run ``fault`` at each call in ``points``, on all benches at once.

    Returns the Results in the order of ``points``. A bench whose case
    hung takes no more cases; cases left when none remains are reported
    as not run.
    """
    free = queue.Queue()
    for bench in group.benches:
        free.put(bench)
    results = {}
    lock = threading.Lock()

    def run(k):
        bench = free.get()
        if bench is None:
            free.put(None)
            return Result(operation.name, fault, k, '', 'not run', 0.0,
                          failures=['not run: every bench hung'])
        try:
            record_sequence(bench, operation)
            return run_case(bench, operation, fault, k)[0]
        finally:
            if bench.broken:
                with lock:
                    if all(b.broken for b in group.benches):
                        free.put(None)
            else:
                free.put(bench)

    with futures.ThreadPoolExecutor(len(group.benches)) as pool:
        for k, result in zip(points, pool.map(run, points)):
            results[k] = result
    return [results[k] for k in points]


# -- which calls a run hits ------------------------------------------------

def full_matrix():
    return os.environ.get('DATERA_FAULT_MATRIX', '').lower() == 'full'


def key_points(sequence):
    """The calls where a fault is most telling, 1-based.

    The first and the last call, and every call that changes something
    on the cluster (not a GET), which is where a fault can leave
    something behind.
    """
    if not sequence:
        return []
    chosen = {1, len(sequence)}
    chosen.update(k for k, (method, _) in enumerate(sequence, 1)
                  if method != 'GET')
    return sorted(chosen)


def injection_points(sequence, fault, first_call=True):
    """The k (1-based) to hit with ``fault``.

    The full matrix: every call. Otherwise a representative subset: the
    key points are dealt out over the placed faults in turn, so that
    each fault hits one or two of them and, together, every key point is
    hit by some fault; with ``first_call``, every fault also hits the
    first call (an upload's create).
    """
    if full_matrix():
        return list(range(1, len(sequence) + 1))
    points = key_points(sequence)
    if not points:
        return []
    index = PLACED_FAULTS.index(fault)
    rounds = -(-len(points) // len(PLACED_FAULTS))
    chosen = {points[(index + r * len(PLACED_FAULTS)) % len(points)]
              for r in range(rounds)}
    if first_call:
        chosen.add(1)
    return sorted(chosen)


def summary_line(results=None):
    results = RESULTS if results is None else results
    return ('fault matrix: %d cases, %d failures, %d leaks, %d '
            'corruptions' % (len(results),
                             sum(1 for r in results if not r.ok),
                             sum(1 for r in results if r.leaks),
                             sum(1 for r in results if r.corruptions)))
