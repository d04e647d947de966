"""``make bench``: the Datera store's data path, against baselines.

Everything is measured in one run, on the same generated image data and
the same kind of target (loop devices over files in the simulator's data
folder when root, as the simulator exports volumes; files otherwise), and
every figure is shown as a ratio to a baseline measured in the same run,
because absolute figures on a shared 2-core machine vary from run to run.

1. Each stage alone, in ``datera_chunk_size`` chunks: md5, the multihash
   (sha512), a raw write+fsync and a raw read of the target.
2. glance_store's filesystem store (a ``file`` backend beside the Datera
   ones in one multi-store configuration): add and whole get.
3. The Datera store through glance_store's API: add of known size, of
   unknown size (the volume starts at 1 GiB and grows), of a 90%-zero
   image with and without thin provisioning, whole get, partial get (1/8
   at an odd offset), 4 adds at once.
4. Peak memory above idle of add and get for 256 MiB, 1 GiB and 4 GiB
   (mostly-zero, thin) images, against ``datera_chunk_size``.
5. REST calls per add/get/get_size/delete at two sizes; volume grows of
   unknown-size uploads against the store's own ``next_volume_size_gib``
   and the law it states (log2 steps to 8 GiB, then one per 8 GiB).
6. A chunk-size sweep of add and whole get.
7. One real glance-api with a Datera and a file backend: uploads with and
   without size, downloads, glance-direct imports, and the glance CLI.

The operations of 1-3 are repeated (``--repeat``) and the best time of
each counts. The goals (:mod:`benchmarks.goals`) are printed with PASS or
MISS; the exit status is 1 when any is missed or a section failed.
``--json`` and ``--chart`` write every figure and a PNG chart.
``--quick`` is for development: small sizes, no 4 GiB images and no
uploads past 1 GiB.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback

from glance_store import multi_backend
from oslo_config import cfg
from oslo_utils import units

from benchmarks import backends
from benchmarks import data
from benchmarks import glance_api_bench
from benchmarks import goals as goals_mod
from benchmarks import measure
from benchmarks import report
from benchmarks import stages
from benchmarks import store_ops
from datera_edf_sim import fixture

SWEEP_CHUNKS_MIB = (1, 2, 4, 8, 16, 32)


class Context(object):
    """One run: its parameters, the simulator, and what was measured."""

    def __init__(self, args, work):
        quick = args.quick
        self.quick = quick
        self.work = work
        self.size = (args.size_mib or (128 if quick else 1024)) * units.Mi
        self.chunk = args.chunk_kib * units.Ki
        self.repeat = args.repeat or (1 if quick else 2)
        self.memory_sizes = [m * units.Mi for m in (
            (64, 128, 256) if quick else (256, 1024, 4096))]
        self.grow_upload_gib = () if quick else (1, 2, 4)
        self.sweep_chunks = [c * units.Mi for c in SWEEP_CHUNKS_MIB]
        self.sweep_size = (args.sweep_size_mib or
                           (128 if quick else 512)) * units.Mi
        self.glance_size = (args.glance_size_mib or
                            (256 if quick else 1024)) * units.Mi
        self.rest_small_size = max(self.chunk, self.size // 8)
        self.glance = not args.no_glance_api
        self.only = set(args.only.split(',')) if args.only else None
        self.sim = None
        self.ops = None
        self.image = data.ImageData(self.size, self.chunk)
        self.digests = None
        self.target_kind = None
        self.figures = measure.Figures()
        self.memory_rows = []
        self.grow_rows = []
        self.sweep_rows = []
        self.errors = []
        self.section_seconds = {}
        self.glance_api_log = None
        self.backend_names = []
        self.started = time.time()

    def title(self):
        kind = self.target_kind or (
            'loop device' if stages.use_loop_devices() else 'file')
        return ('Datera store data path: %d MiB image, %d KiB chunks, '
                'targets: %s, %s mode, best of %d' % (
                    self.size // units.Mi, self.chunk // units.Ki, kind,
                    'quick' if self.quick else 'full', self.repeat))

    def parameters(self):
        return {
            'mode': 'quick' if self.quick else 'full',
            'only': sorted(self.only) if self.only else None,
            'image_bytes': self.size, 'chunk_bytes': self.chunk,
            'repeat': self.repeat, 'memory_sizes': self.memory_sizes,
            'grow_upload_gib': list(self.grow_upload_gib),
            'sweep_chunks': self.sweep_chunks,
            'sweep_bytes': self.sweep_size,
            'glance_api_bytes': self.glance_size,
            'rest_small_bytes': self.rest_small_size,
            'target': self.target_kind,
            'loop_devices': stages.use_loop_devices(),
            'python': platform.python_version(),
            'machine': platform.machine(), 'cpus': os.cpu_count(),
            'started': time.strftime('%Y-%m-%dT%H:%M:%S%z',
                                     time.localtime(self.started)),
            'seconds': time.time() - self.started,
            'section_seconds': self.section_seconds,
        }


def _log(ctx, message):
    elapsed = time.time() - ctx.started
    sys.stderr.write('[%5.0fs] %s\n' % (elapsed, message))
    sys.stderr.flush()


def _section(ctx, name, func, *args):
    """Run one section; a failure is recorded, and the run goes on."""
    _log(ctx, name)
    started = time.monotonic()
    try:
        func(ctx, *args)
    except Exception as e:
        ctx.errors.append('%s: %s: %s' % (name, type(e).__name__, e))
        traceback.print_exc()
    ctx.section_seconds[name] = (ctx.section_seconds.get(name, 0) +
                                 time.monotonic() - started)


def configure_stores(ctx):
    """The in-process stores: Datera (thin, thick, sweep) and file."""
    conf = cfg.CONF
    conf(args=[], default_config_files=[])
    from os_brick.privileged import default
    default.set_client_mode(False)
    stores = {
        store_ops.MAIN: backends.datera_options(ctx.sim, ctx.chunk),
        store_ops.THICK: backends.datera_options(ctx.sim, ctx.chunk,
                                                 thin=False),
        store_ops.FILE: backends.file_options(
            os.path.join(ctx.work, 'file-store')),
    }
    for chunk in ctx.sweep_chunks:
        stores[store_ops.sweep_backend(chunk)] = backends.datera_options(
            ctx.sim, chunk)
    backends.configure(conf, stores, store_ops.MAIN)
    ctx.backend_names = list(stores)
    for name in stores:
        # Raises UnknownScheme for a backend glance_store did not make.
        multi_backend.get_store_from_store_identifier(name)


def _derived(ctx):
    """The slowest stage of an add, and of a get, as figures."""
    figures = ctx.figures
    for key, label, parts in (
            ('slowest_stage', 'slowest of md5, sha512, write',
             ('md5', 'sha512', 'write')),
            ('slower_md5_read', 'slower of md5, raw read',
             ('md5', 'read'))):
        rates = [(figures.rate(p), p) for p in parts]
        if any(rate is None for rate, _p in rates):
            continue
        rate, which = min(rates)
        figure = figures.get(key, 'stages', label, ctx.size, None,
                             'that is: %s' % figures[which].label)
        figure.add(ctx.size / units.Mi / rate)


#: The sections, as ``--only`` names them.
SECTIONS = ('stages', 'file', 'datera', 'rest', 'concurrent', 'memory',
            'grows', 'sweep', 'glance-api')


def measure_all(ctx):
    """Every section (or those of ``--only``), in order."""
    def wanted(name):
        return ctx.only is None or name in ctx.only

    _section(ctx, 'warm-up', store_ops.warm_up, ctx.backend_names)
    for repetition in range(ctx.repeat):
        suffix = ' (%d of %d)' % (repetition + 1, ctx.repeat)
        for name, func in (('stages', stages.stages_section),
                           ('file', store_ops.file_section),
                           ('datera', store_ops.datera_section)):
            if wanted(name):
                _section(ctx, name + suffix, func)
    _derived(ctx)
    for name, func in (('rest', store_ops.rest_section),
                       ('concurrent', store_ops.concurrency_section),
                       ('memory', store_ops.memory_section),
                       ('grows', store_ops.grows_section),
                       ('sweep', store_ops.sweep_section),
                       ('glance-api', glance_api_bench.glance_api_section)):
        if wanted(name) and (name != 'glance-api' or ctx.glance):
            _section(ctx, name, func)
    left = store_ops.stored_app_instances(ctx.sim)
    if left:
        ctx.errors.append('app instances left behind: %s'
                          % [ai.get('id') for ai in left])


def run(args):
    with tempfile.TemporaryDirectory(prefix='datera-bench-',
                                     dir=args.work_dir) as work:
        ctx = Context(args, work)
        _log(ctx, ctx.title())
        with fixture.running_simulator(
                os.path.join(work, 'sim'),
                block_devices=stages.use_loop_devices(),
                resize_seconds=0) as sim:
            ctx.sim = sim
            ctx.ops = store_ops.StoreOps(sim)
            configure_stores(ctx)
            measure_all(ctx)
        goals = goals_mod.evaluate(ctx)
        report.print_report(ctx, goals, sys.stdout)
        document = report.to_json(ctx, goals)
        report.write_json(args.json, document)
        try:
            report.write_chart(ctx, args.chart)
        except Exception as e:
            ctx.errors.append('chart: %s: %s' % (type(e).__name__, e))
            traceback.print_exc()
            document = report.to_json(ctx, goals)
            report.write_json(args.json, document)
    missed = [g for g in goals if not g.passed]
    print('\n%d goal(s) missed, %d error(s); %.0f s; results in %s, chart '
          'in %s' % (len(missed), len(ctx.errors),
                     time.time() - ctx.started, args.json, args.chart))
    return 1 if missed or ctx.errors else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='small sizes (128 MiB images, 256 MiB '
                             'through glance-api), no 4 GiB images and no '
                             'uploads past 1 GiB, one repetition')
    parser.add_argument('--size-mib', type=int,
                        help='main image size in MiB (1024; quick: 128)')
    parser.add_argument('--chunk-kib', type=int, default=8192,
                        help='datera_chunk_size in KiB (default 8192)')
    parser.add_argument('--repeat', type=int,
                        help='repetitions of the stages and the main store '
                             'operations; the best counts (2; quick: 1)')
    parser.add_argument('--sweep-size-mib', type=int,
                        help='image size of the chunk-size sweep (512; '
                             'quick: 128)')
    parser.add_argument('--glance-size-mib', type=int,
                        help='image size through glance-api (1024; quick: '
                             '256)')
    parser.add_argument('--no-glance-api', action='store_true',
                        help='skip the glance-api section')
    parser.add_argument('--only', metavar='SECTION,...',
                        help='for development: run only these sections '
                             '(%s); the goals of the others are missed'
                             % ', '.join(SECTIONS))
    parser.add_argument('--json', default='bench-results.json',
                        help='where to write every figure (default '
                             'bench-results.json)')
    parser.add_argument('--chart', default='bench-chart.png',
                        help='where to write the chart (default '
                             'bench-chart.png)')
    parser.add_argument('--work-dir',
                        help='where to make the run\'s temporary folder '
                             '(simulator data, file store, glance-api)')
    args = parser.parse_args(argv)
    unknown = set((args.only or '').split(',')) - set(SECTIONS) - {''}
    if unknown:
        parser.error('unknown section(s): %s' % ', '.join(sorted(unknown)))
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
