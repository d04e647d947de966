"""The performance goals, each a ratio of two figures of the same run.

A goal compares a measured value with a target (``>=``, ``<=`` or
``==``). Its margin is how far past the target it is, as a share of the
target: positive when the goal is met. A goal whose figures are missing
(the section failed) is missed. :func:`evaluate` makes the list.
"""

from oslo_utils import units

#: Tolerances of the memory goals: the peaks of 256 MiB, 1 GiB and 4 GiB
#: images are "the same bound" when the largest is at most MEMORY_SPREAD
#: times the smallest, or at most MEMORY_SLACK_CHUNKS chunks above it
#: (a download holds from two to five chunks at its peak depending on
#: how its reader, its two digest threads and the consumer happen to
#: run, whatever the size); and none passes MEMORY_CHUNKS chunks.
MEMORY_SPREAD = 1.5
MEMORY_SLACK_CHUNKS = 3
MEMORY_CHUNKS = 8


class Goal(object):
    """One goal and its verdict.

    :param key: a short unique name.
    :param text: what is required, in words.
    :param measured: the measured number, or None when it could not be.
    :param compare: ``'>='``, ``'<='`` or ``'=='``.
    :param target: the number to compare with.
    :param detail: the figures behind it.
    :param shown: how to show ``measured`` when not as ``x.xx``.
    """

    def __init__(self, key, text, measured, compare, target, detail='',
                 shown=None):
        self.key = key
        self.text = text
        self.measured = measured
        self.compare = compare
        self.target = target
        self.detail = detail
        self.shown = shown

    @property
    def passed(self):
        if self.measured is None:
            return False
        if self.compare == '>=':
            return self.measured >= self.target
        if self.compare == '<=':
            return self.measured <= self.target
        return self.measured == self.target

    @property
    def verdict(self):
        return 'PASS' if self.passed else 'MISS'

    @property
    def margin(self):
        """How far past the target (a share of it); None for ``==``."""
        if self.measured is None or self.compare == '==' or not self.target:
            return None
        if self.compare == '>=':
            return self.measured / self.target - 1
        return 1 - self.measured / self.target

    def measured_text(self):
        if self.measured is None:
            return 'no data'
        if self.shown is not None:
            return self.shown
        return '%.2f' % self.measured

    def target_text(self):
        return '%s %s' % (self.compare, '%g' % self.target)

    def margin_text(self):
        margin = self.margin
        if margin is None:
            return ''
        return '%+.0f%%' % (100 * margin)

    def to_json(self):
        return {'key': self.key, 'goal': self.text,
                'measured': self.measured, 'compare': self.compare,
                'target': self.target, 'margin': self.margin,
                'verdict': self.verdict, 'detail': self.detail,
                'shown': self.measured_text()}


def _ratio(a, b):
    return a / b if a and b else None


def _rate(value):
    return '-' if value is None else '%.0f' % value


def evaluate(ctx):
    """Every goal of the run ``ctx`` (figures and tables filled)."""
    figures = ctx.figures
    rate = figures.rate
    goals = []

    add, slowest = rate('add_known'), rate('slowest_stage')
    goals.append(Goal(
        'add_vs_stages', 'add, size known >= 0.8 x the slowest stage',
        _ratio(add, slowest), '>=', 0.8,
        'add %s MiB/s; md5 %s, sha512 %s, write+fsync %s' % (
            _rate(add), _rate(rate('md5')), _rate(rate('sha512')),
            _rate(rate('write')))))
    goals.append(Goal(
        'add_vs_file', 'add, size known >= 1.5 x the filesystem store add',
        _ratio(add, rate('file_add')), '>=', 1.5,
        'add %s MiB/s, file store %s' % (_rate(add),
                                         _rate(rate('file_add')))))
    goals.append(Goal(
        'unknown_vs_known', 'add, size unknown >= 0.9 x size known',
        _ratio(rate('add_unknown'), add), '>=', 0.9,
        '%s vs %s MiB/s' % (_rate(rate('add_unknown')), _rate(add))))
    goals.append(Goal(
        'thin_vs_dense', 'thin add, 90% zeros >= 2 x a dense add',
        _ratio(rate('add_thin_zeros'), add), '>=', 2.0,
        '%s vs %s MiB/s' % (_rate(rate('add_thin_zeros')), _rate(add))))

    get, floor = rate('get_full'), rate('slower_md5_read')
    goals.append(Goal(
        'get_vs_stages', 'whole get >= 0.95 x the slower of md5, raw read',
        _ratio(get, floor), '>=', 0.95,
        'get %s MiB/s; md5 %s, raw read %s' % (
            _rate(get), _rate(rate('md5')), _rate(rate('read')))))
    goals.append(_partial_goal(figures))

    for kind, words in (('sized', 'with size'), ('unsized', 'no size')):
        d = rate('api_upload_%s_%s' % ('datera1', kind))
        f = rate('api_upload_%s_%s' % ('file1', kind))
        goals.append(Goal(
            'api_upload_%s' % kind,
            'glance-api upload, %s: Datera >= 2 x file' % words,
            _ratio(d, f), '>=', 2.0,
            'Datera %s, file %s MiB/s' % (_rate(d), _rate(f))))
    d, f = rate('api_import_datera1'), rate('api_import_file1')
    goals.append(Goal(
        'api_import', 'glance-api import: Datera >= 2 x file',
        _ratio(d, f), '>=', 2.0,
        'Datera %s, file %s MiB/s' % (_rate(d), _rate(f))))
    d, m = rate('api_download_datera1'), rate('api_md5')
    goals.append(Goal(
        'api_download', 'glance-api download: Datera >= 0.9 x md5',
        _ratio(d, m), '>=', 0.9,
        'Datera %s MiB/s, md5 %s' % (_rate(d), _rate(m))))

    goals.append(_concurrency_goal(figures, add))
    goals.extend(_memory_goals(ctx))
    goals.append(_rest_goal(ctx))
    goals.append(_grows_goal(ctx))
    return goals


def _partial_goal(figures):
    text = 'partial get time / whole get time <= 2 x their bytes ratio'
    if 'get_partial' not in figures or 'get_full' not in figures:
        return Goal('partial_get', text, None, '<=', 2.0)
    partial, full = figures['get_partial'], figures['get_full']
    if not (partial.ok and full.ok):
        return Goal('partial_get', text, None, '<=', 2.0)
    time_ratio = partial.seconds / full.seconds
    bytes_ratio = partial.nbytes / full.nbytes
    partial.extra.update(time_ratio=time_ratio, bytes_ratio=bytes_ratio)
    return Goal(
        'partial_get', text, time_ratio / bytes_ratio, '<=', 2.0,
        'time ratio %.3f, bytes ratio %.3f; %.0f MiB/s' % (
            time_ratio, bytes_ratio, partial.rate))


def _concurrency_goal(figures, add):
    text = '4 adds at once: aggregate >= 1.0 x one add alone, no errors'
    if 'add_concurrent' not in figures:
        return Goal('concurrent', text, None, '>=', 1.0)
    figure = figures['add_concurrent']
    errors = figure.extra.get('errors') or []
    ratio = _ratio(figures.rate('add_concurrent'), add)
    detail = 'aggregate %s, alone %s MiB/s' % (
        _rate(figures.rate('add_concurrent')), _rate(add))
    if errors:
        detail += '; %d errors: %s' % (len(errors), errors[0])
        ratio = None
    return Goal('concurrent', text, ratio, '>=', 1.0, detail)


def _memory_goals(ctx):
    goals = []
    chunk = ctx.chunk
    sizes = ', '.join(
        '%d MiB' % (row['size'] // units.Mi) for row in ctx.memory_rows)
    for op in ('add', 'get'):
        peaks = []
        for row in ctx.memory_rows:
            figure = ctx.figures[row[op]]
            peaks.append(figure.peak_bytes if figure.ok else None)
        if not peaks or None in peaks:
            spread = bound = None
            detail = ''
        else:
            low, high = min(peaks), max(peaks)
            allowed = max(MEMORY_SPREAD * low,
                          low + MEMORY_SLACK_CHUNKS * chunk)
            spread = high / allowed
            bound = high / chunk
            detail = 'RSS peaks above idle %s MiB (%s); chunk %d MiB' % (
                '/'.join('%.0f' % (p / units.Mi) for p in peaks), sizes,
                chunk // units.Mi)
        goals.append(Goal(
            'memory_%s_same' % op,
            'peak memory of %s the same for every size (largest <= '
            'max(%gx, +%d chunks) of smallest)'
            % (op, MEMORY_SPREAD, MEMORY_SLACK_CHUNKS),
            spread, '<=', 1.0, detail))
        goals.append(Goal(
            'memory_%s_bound' % op,
            'peak memory of %s <= %d x datera_chunk_size'
            % (op, MEMORY_CHUNKS),
            bound, '<=', MEMORY_CHUNKS, detail,
            shown=None if bound is None else '%.1f chunks' % bound))
    return goals


REST_PAIRS = (('add', 'rest_add', 'add_known'),
              ('get', 'rest_get', 'get_full'),
              ('get_size', 'rest_get_size', 'get_size'),
              ('delete', 'rest_delete', 'delete'))


def rest_rows(ctx):
    """[(operation, calls of the small image, calls of the main one)]."""
    rows = []
    for name, small, main in REST_PAIRS:
        counts = []
        for key in (small, main):
            figure = ctx.figures[key] if key in ctx.figures else None
            counts.append(figure.calls if figure is not None and figure.ok
                          else None)
        rows.append((name, counts[0], counts[1]))
    return rows


def _rest_goal(ctx):
    rows = rest_rows(ctx)
    text = 'REST calls per add/get/get_size/delete constant in size'
    if any(a is None or b is None for _n, a, b in rows):
        return Goal('rest_constant', text, None, '==', 0)
    differ = sum(1 for _n, a, b in rows if a != b)
    detail = ', '.join('%s %d/%d' % row for row in rows)
    return Goal('rest_constant', text, differ, '==', 0,
                detail + ' (%d MiB / %d MiB)' % (
                    ctx.rest_small_size // units.Mi, ctx.size // units.Mi),
                shown='%d differ' % differ)


def _grows_goal(ctx):
    text = ('grows of unknown-size uploads: log2 up to 8 GiB, then one '
            'per 8 GiB')
    rows = ctx.grow_rows
    if not rows:
        return Goal('grows', text, None, '==', 0)
    wrong = [r for r in rows if r['expected'] != r['law'] or
             (r['uploaded'] and r['measured'] != r['expected'])]
    uploaded = [r for r in rows if r['uploaded']]
    detail = '%d sizes up to %d GiB by next_volume_size_gib' % (
        len(rows) - len(uploaded),
        max(r['size'] for r in rows) // units.Gi)
    if uploaded:
        detail += '; uploaded: ' + ', '.join(
            '%.2f GiB %s/%s' % (r['size'] / units.Gi, r['measured'],
                                r['expected']) for r in uploaded)
    else:
        detail += '; no upload (quick mode)'
    return Goal('grows', text, len(wrong), '==', 0, detail,
                shown='%d wrong' % len(wrong))
