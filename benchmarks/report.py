"""The run's results: tables on stdout, a JSON file and a PNG chart.

The main table shows every throughput figure with the figure it is
compared with and their ratio; then memory, REST calls, volume grows and
the chunk-size sweep; last the goals with PASS or MISS and their margin.
The JSON file holds every raw figure (each repetition's seconds, peaks,
REST call summaries), the tables' rows, the goals and the run's
parameters. The chart (matplotlib, Agg backend) has one panel of
throughput per operation against the stages that limit it, and one of
the chunk-size sweep.
"""

import json
import os

from oslo_utils import units
import prettytable

from benchmarks import goals as goals_mod

MAIN_SECTIONS = ('stages', 'file store', 'datera', 'glance-api',
                 'glance CLI')


def _f(value, fmt='%.0f'):
    return '' if value is None else fmt % value


def _mib(nbytes):
    return None if nbytes is None else nbytes / units.Mi


def _table(fields, left=()):
    table = prettytable.PrettyTable(fields)
    table.align = 'r'
    for field in left:
        table.align[field] = 'l'
    return table


def main_table(ctx):
    table = _table(['section', 'operation', 'MiB', 's', 'MiB/s',
                    'baseline', 'x baseline', 'peak MiB', 'REST', 'note'],
                   left=('section', 'operation', 'baseline', 'note'))
    figures = ctx.figures
    for section in MAIN_SECTIONS:
        for figure in figures:
            if figure.section != section:
                continue
            base = (figures[figure.baseline].label
                    if figure.baseline in figures else '')
            note = figure.note
            if figure.error:
                note = 'ERROR: %s' % figure.error
            table.add_row([
                figure.section, figure.label, _f(_mib(figure.nbytes)),
                _f(figure.seconds, '%.2f'), _f(figure.rate), base,
                _f(figures.ratio(figure), '%.2f'),
                _f(_mib(figure.peak_bytes)),
                '' if figure.calls is None else figure.calls, note])
    return table


def memory_table(ctx):
    table = _table(['image', 'add peak MiB', 'add x chunk', 'add traced MiB',
                    'get peak MiB', 'get x chunk', 'get traced MiB'],
                   left=('image',))
    for row in ctx.memory_rows:
        cells = [ctx.figures[row['add']].note]
        for figure in (ctx.figures[row['add']], ctx.figures[row['get']]):
            peak = figure.peak_bytes
            cells += [_f(_mib(peak)),
                      _f(None if peak is None else peak / ctx.chunk, '%.1f'),
                      _f(_mib(figure.traced_peak_bytes))]
        table.add_row(cells)
    return table


def rest_table(ctx):
    small = '%d MiB' % (ctx.rest_small_size // units.Mi)
    main = '%d MiB' % (ctx.size // units.Mi)
    table = _table(['operation', small, main], left=('operation',))
    for name, small, main in goals_mod.rest_rows(ctx):
        table.add_row([name, '' if small is None else small,
                       '' if main is None else main])
    return table


def grows_table(ctx):
    table = _table(['unknown size', 'grows counted', 'expected',
                    'law (log2 to 8 GiB, then /8 GiB)'],
                   left=('unknown size',))
    shown = [r for r in ctx.grow_rows if r['uploaded']]
    # Of the function-only rows, a few telling sizes.
    telling = {units.Gi * g for g in (1, 2, 3, 4, 8, 9, 16, 17, 24, 64)}
    shown += [r for r in ctx.grow_rows
              if not r['uploaded'] and r['size'] in telling]
    for r in shown:
        table.add_row(['%.3f GiB' % (r['size'] / units.Gi),
                       'not uploaded' if r['measured'] is None
                       else r['measured'], r['expected'], r['law']])
    return table


def sweep_table(ctx):
    table = _table(['datera_chunk_size', 'md5 MiB/s', 'add MiB/s',
                    'add x md5', 'get MiB/s', 'get x md5', 'add peak MiB'])
    figures = ctx.figures
    for row in ctx.sweep_rows:
        add, get = figures[row['add']], figures[row['get']]
        table.add_row([
            '%d KiB' % (row['chunk'] // units.Ki),
            _f(figures.rate(row['md5'])), _f(add.rate),
            _f(figures.ratio(add), '%.2f'), _f(get.rate),
            _f(figures.ratio(get), '%.2f'), _f(_mib(add.peak_bytes))])
    return table


def goals_table(goals):
    table = _table(['goal', 'measured', 'target', 'margin', 'verdict',
                    'figures'], left=('goal', 'figures'))
    for goal in goals:
        table.add_row([goal.text, goal.measured_text(), goal.target_text(),
                       goal.margin_text(), goal.verdict, goal.detail])
    return table


def print_report(ctx, goals, out):
    """All the tables, to ``out``."""
    out.write('%s\n' % ctx.title())
    out.write('%s\n\n' % main_table(ctx))
    if ctx.memory_rows:
        out.write('Peak memory above idle (RSS high-water mark; traced: '
                  'what Python allocated, tracemalloc)\n')
        out.write('%s\n\n' % memory_table(ctx))
    out.write('REST calls per operation\n%s\n\n' % rest_table(ctx))
    if ctx.grow_rows:
        out.write('Volume grows of uploads of unknown size\n')
        out.write('%s\n\n' % grows_table(ctx))
    if ctx.sweep_rows:
        out.write('Chunk-size sweep (%d MiB images)\n' % (
            ctx.sweep_size // units.Mi))
        out.write('%s\n\n' % sweep_table(ctx))
    for error in ctx.errors:
        out.write('ERROR %s\n' % error)
    missed = [g for g in goals if not g.passed]
    out.write('Goals: %d of %d met\n%s\n' % (
        len(goals) - len(missed), len(goals), goals_table(goals)))


def to_json(ctx, goals):
    figures = ctx.figures
    return {
        'parameters': ctx.parameters(),
        'figures': {f.key: dict(f.to_json(), ratio=figures.ratio(f))
                    for f in figures},
        'memory': [dict(row, add_peak_bytes=figures[row['add']].peak_bytes,
                        get_peak_bytes=figures[row['get']].peak_bytes)
                   for row in ctx.memory_rows],
        'rest_calls': [{'operation': n, 'small': a, 'main': b}
                       for n, a, b in goals_mod.rest_rows(ctx)],
        'grows': ctx.grow_rows,
        'sweep': [dict(row, md5_mib_per_s=figures.rate(row['md5']),
                       add_mib_per_s=figures.rate(row['add']),
                       get_mib_per_s=figures.rate(row['get']))
                  for row in ctx.sweep_rows],
        'goals': [g.to_json() for g in goals],
        'errors': ctx.errors,
        'missed': [g.key for g in goals if not g.passed],
    }


def write_json(path, document):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


# chart ----------------------------------------------------------------------

#: Operations in the throughput panel: (figure key, colour group).
CHART_OPS = (
    ('file_add', 'file'), ('file_get', 'file'),
    ('add_known', 'datera'), ('add_unknown', 'datera'),
    ('add_thin_zeros', 'datera'), ('add_thick_zeros', 'datera'),
    ('add_concurrent', 'datera'), ('get_full', 'datera'),
    ('get_partial', 'datera'),
    ('api_upload_file1_sized', 'api-file'),
    ('api_upload_file1_unsized', 'api-file'),
    ('api_import_file1', 'api-file'), ('api_download_file1', 'api-file'),
    ('api_upload_datera1_sized', 'api-datera'),
    ('api_upload_datera1_unsized', 'api-datera'),
    ('api_import_datera1', 'api-datera'),
    ('api_download_datera1', 'api-datera'),
)
COLOURS = {'file': '#9e9e9e', 'datera': '#1f77b4', 'api-file': '#c7c7c7',
           'api-datera': '#6baed6'}
GROUP_LABELS = {'file': 'glance file store, in process',
                'datera': 'Datera store, in process',
                'api-file': 'glance-api, file backend',
                'api-datera': 'glance-api, Datera backend'}
STAGE_LINES = (('md5', 'md5', '#d62728'), ('sha512', 'sha512', '#ff7f0e'),
               ('chunk_digests', 'sha256 per chunk', '#8c564b'),
               ('write', 'raw write+fsync', '#2ca02c'),
               ('read', 'raw read', '#9467bd'))


def write_chart(ctx, path):
    """The PNG chart: throughput per operation, and the sweep."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    figures = ctx.figures
    ops = [(figures[key], group) for key, group in CHART_OPS
           if key in figures and figures[key].ok]
    fig, (left, right) = pyplot.subplots(
        1, 2, figsize=(16, 8), gridspec_kw={'width_ratios': [3, 2]})

    rates = [f.rate for f, _g in ops]
    stage_rates = [figures.rate(k) for k, _l, _c in STAGE_LINES]
    # The scale is that of the stages an add is bound by, and of the
    # Datera store's figures; faster ones (reads from the page cache)
    # are cut at the edge, their figure written beside them.
    limit = max([r for (f, g), r in zip(ops, rates) if g == 'datera'] +
                [r for r in stage_rates[:3] if r] + [1]) * 1.3
    ys = list(range(len(ops)))
    left.barh(ys, [min(r, limit) for r in rates],
              color=[COLOURS[g] for _f, g in ops])
    left.set_yticks(ys)
    left.set_yticklabels([f.label if f.section != 'glance-api'
                          else 'api: ' + f.label for f, _g in ops],
                         fontsize=8)
    left.invert_yaxis()
    for y, rate in zip(ys, rates):
        left.text(min(rate, limit), y,
                  ' %.0f%s' % (rate, ' (cut)' if rate > limit else ''),
                  va='center', fontsize=7)
    for (key, label, colour), rate in zip(STAGE_LINES, stage_rates):
        if not rate:
            continue
        if rate <= limit:
            left.axvline(rate, color=colour, linestyle='--', linewidth=1,
                         label='%s alone: %.0f MiB/s' % (label, rate))
        else:
            left.axvline(limit, color=colour, linestyle=':', linewidth=1,
                         label='%s alone: %.0f MiB/s (off scale)'
                         % (label, rate))
    left.set_xlim(0, limit * 1.08)
    left.set_xlabel('MiB/s (best of %d)' % ctx.repeat)
    left.set_title('Throughput per operation vs the stages alone\n'
                   '(%s, %d MiB chunks, %s)' % (
                       _size(ctx.size), ctx.chunk // units.Mi,
                       ctx.target_kind or 'target'))
    groups = dict.fromkeys(g for _f, g in ops)
    for group in groups:
        left.barh([0], [0], color=COLOURS[group], label=GROUP_LABELS[group])
    if ops or any(stage_rates):
        left.legend(fontsize=7, loc='lower right')

    if ctx.sweep_rows:
        chunks = [row['chunk'] / units.Mi for row in ctx.sweep_rows]
        for kind, style in (('add', 'o-'), ('get', 's-'), ('md5', 'x--')):
            right.plot(chunks, [figures.rate(row[kind]) or 0
                                for row in ctx.sweep_rows],
                       style, label='%s alone' % kind if kind == 'md5'
                       else kind)
        write = figures.rate('write')
        if write:
            right.axhline(write, color='#2ca02c', linestyle=':',
                          linewidth=1, label='raw write+fsync alone, %d MiB '
                          'chunks' % (ctx.chunk // units.Mi))
        right.set_xscale('log', base=2)
        right.set_xticks(chunks)
        right.set_xticklabels(['%g' % c for c in chunks])
        right.set_xlabel('datera_chunk_size (MiB)')
        right.set_ylabel('MiB/s')
        right.set_ylim(bottom=0)
        right.grid(True, alpha=0.3)
        right.legend(fontsize=8)
        right.set_title('Chunk-size sweep (%s images)'
                        % _size(ctx.sweep_size))
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, 'no chunk-size sweep', ha='center')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def _size(nbytes):
    if nbytes >= units.Gi:
        return '%g GiB' % (nbytes / units.Gi)
    return '%d MiB' % (nbytes // units.Mi)
