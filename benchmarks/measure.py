"""Timing, peak memory and REST calls of one measured operation.

::

    with measure.Probe(sim) as probe:
        do_something()
    probe.seconds, probe.peak_bytes, probe.calls

:class:`Probe` times the block with ``time.perf_counter``, records the
process's peak resident memory above what it used when the block began,
and the simulator's request log entries the block caused. The peak is
the kernel's own high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs``) where that works, and in any case the highest
RSS that a thread sampling every few milliseconds saw: the larger of the
two is kept.

Measured figures are collected as :class:`Figure` objects: one operation,
its byte count, the seconds of every repetition (the best one counts, the
usual way to take out a shared machine's noise), and what it is compared
with.
"""

import ctypes
import ctypes.util
import gc
import os
import threading
import time
import tracemalloc

from oslo_utils import units
import psutil

#: Seconds between two RSS samples of the sampling thread.
SAMPLE_INTERVAL = 0.002
_CLEAR_REFS = '/proc/self/clear_refs'
_STATUS = '/proc/self/status'


def _libc_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_free_memory():
    """Collect garbage and give the C heap's free pages back to the system.

    Without it the "idle" RSS an operation starts from would include
    memory an earlier operation freed but glibc kept, which the next one
    reuses without growing the RSS: its peak would depend on what ran
    before it.
    """
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _status_kib(field):
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def reset_high_water_mark():
    """Reset the kernel's peak RSS of this process; False if it cannot."""
    try:
        with open(_CLEAR_REFS, 'w') as f:
            f.write('5')
        return _status_kib('VmHWM') is not None
    except OSError:
        return False


def high_water_mark():
    """The kernel's peak RSS of this process since its reset, in bytes."""
    kib = _status_kib('VmHWM')
    return None if kib is None else kib * units.Ki


class PeakMemory(object):
    """Peak RSS of this process above its RSS at the start of a block.

    :param trace: also trace Python's allocations (tracemalloc) for the
        exact peak of what Python allocated; it slows allocations, so only
        for figures whose time does not matter.
    """

    def __init__(self, interval=SAMPLE_INTERVAL, trace=False):
        self.interval = interval
        self.trace = trace
        self.traced_peak_bytes = None
        self._traced_start = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = None
        self._sampled = 0
        self._hwm = False
        self.idle = None
        self.peak_bytes = None
        self.samples = 0

    def _rss(self):
        return self._process.memory_info().rss

    def _sample(self):
        while not self._stop.wait(self.interval):
            self._sampled = max(self._sampled, self._rss())
            self.samples += 1

    def start(self):
        release_free_memory()
        if self.trace:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._traced_start = tracemalloc.get_traced_memory()[0]
        self.idle = self._rss()
        self._sampled = self.idle
        self._hwm = reset_high_water_mark()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample,
                                        name='bench-rss', daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
        if self.trace:
            peak = tracemalloc.get_traced_memory()[1]
            self.traced_peak_bytes = max(0, peak - self._traced_start)
        peak = max(self._sampled, self._rss())
        if self._hwm:
            peak = max(peak, high_water_mark() or 0)
        self.peak_bytes = max(0, peak - self.idle)
        return self.peak_bytes


class Probe(object):
    """Time, peak memory and REST calls of a ``with`` block.

    :param sim: the simulator whose request log to read, or None.
    :param sync: flush every dirty page of the machine first (outside the
        timing), so an earlier write's flush is not charged to this one.
    """

    def __init__(self, sim=None, sync=True, memory=True, trace=False):
        self.sim = sim
        self.sync = sync
        self.memory = PeakMemory(trace=trace) if memory else None
        self.seconds = None
        self.calls = None
        self._since = None
        self._start = None

    @property
    def peak_bytes(self):
        return None if self.memory is None else self.memory.peak_bytes

    @property
    def traced_peak_bytes(self):
        return None if self.memory is None else self.memory.traced_peak_bytes

    def __enter__(self):
        if self.sync:
            os.sync()
        if self.sim is not None:
            self._since = len(self.sim.requests())
        if self.memory is not None:
            self.memory.start()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        if self.memory is not None:
            self.memory.stop()
        if self.sim is not None and exc[0] is None:
            self.calls = self.sim.requests()[self._since:]
        return False


def call_summary(calls):
    """{"METHOD api_path": count} of request log entries, ids folded."""
    summary = {}
    for call in calls or ():
        path = call.get('api_path') or call.get('path') or ''
        parts = []
        for part in path.split('/'):
            if len(part) == 36 and part.count('-') == 4:
                part = '<id>'
            parts.append(part)
        key = '%s %s' % (call.get('method'), '/'.join(parts))
        summary[key] = summary.get(key, 0) + 1
    return summary


class Figure(object):
    """One measured operation and what it is compared with.

    :param key: a short unique name (the JSON key).
    :param section: the group it is shown in.
    :param label: the operation, as the table shows it.
    :param nbytes: bytes the operation moved (image bytes).
    :param baseline: the key of the figure it is compared with, or None
        for a reference figure.
    :param note: a remark for the table.
    """

    def __init__(self, key, section, label, nbytes, baseline=None,
                 note=''):
        self.key = key
        self.section = section
        self.label = label
        self.nbytes = nbytes
        self.baseline = baseline
        self.note = note
        self.samples = []       # seconds
        self.peaks = []         # bytes above idle, per sample
        self.traced_peaks = []  # tracemalloc's peaks, when traced
        self.calls = None       # REST calls of the last sample
        self.call_summary = None
        self.error = None
        self.extra = {}

    def add(self, seconds, peak_bytes=None, calls=None, traced=None):
        """Record one repetition."""
        self.samples.append(seconds)
        if peak_bytes is not None:
            self.peaks.append(peak_bytes)
        if traced is not None:
            self.traced_peaks.append(traced)
        if calls is not None:
            self.calls = len(calls)
            self.call_summary = call_summary(calls)
        return self

    def add_probe(self, probe):
        return self.add(probe.seconds, probe.peak_bytes, probe.calls,
                        probe.traced_peak_bytes)

    @property
    def ok(self):
        return bool(self.samples) and self.error is None

    @property
    def seconds(self):
        """The best (shortest) repetition."""
        return min(self.samples) if self.samples else None

    @property
    def rate(self):
        """MiB/s of the best repetition."""
        if not self.samples or not self.seconds:
            return None
        return self.nbytes / units.Mi / self.seconds

    @property
    def peak_bytes(self):
        return max(self.peaks) if self.peaks else None

    @property
    def traced_peak_bytes(self):
        return max(self.traced_peaks) if self.traced_peaks else None

    def to_json(self):
        return {
            'key': self.key, 'section': self.section, 'label': self.label,
            'bytes': self.nbytes, 'seconds': self.seconds,
            'samples': self.samples, 'mib_per_s': self.rate,
            'peak_rss_bytes': self.peak_bytes, 'peak_rss_samples': self.peaks,
            'peak_traced_bytes': self.traced_peak_bytes,
            'rest_calls': self.calls, 'rest_call_summary': self.call_summary,
            'baseline': self.baseline, 'note': self.note,
            'error': self.error, 'extra': self.extra,
        }


class Figures(object):
    """Figures by key, in the order they were first made."""

    def __init__(self):
        self._figures = {}

    def get(self, key, *args, **kwargs):
        """The figure ``key``; made with the other arguments if new."""
        figure = self._figures.get(key)
        if figure is None:
            figure = self._figures[key] = Figure(key, *args, **kwargs)
        return figure

    def __getitem__(self, key):
        return self._figures[key]

    def __contains__(self, key):
        return key in self._figures

    def __iter__(self):
        return iter(list(self._figures.values()))

    def rate(self, key):
        """MiB/s of a figure, or None when it is missing or failed."""
        figure = self._figures.get(key)
        return figure.rate if figure is not None and figure.ok else None

    def ratio(self, figure):
        """A figure's rate over its baseline's, or None."""
        if figure.baseline is None:
            return None
        mine, base = self.rate(figure.key), self.rate(figure.baseline)
        if not mine or not base:
            return None
        return mine / base
