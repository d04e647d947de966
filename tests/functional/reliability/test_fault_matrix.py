"""The fault matrix: every store operation under every fault, placed at
each REST call the operation makes.

Operations: add of a known size, add of an unknown size that grows the
volume, full read, partial read, get_size, delete. Faults: a 503 burst
shorter than the retry budget, a 500, a connection dropped before and
after the cluster acted, latency beyond the operation timeout, every
session key expired, the cluster full, the app instance forced offline by
another host; for uploads also a source that raises half way and sources
shorter and longer than declared.

One test per (operation, fault) runs the fault at every injection point
(``DATERA_FAULT_MATRIX=full``, as ``make reliability`` does) or at a
representative subset (``make test``), and lists every case that went
wrong. matrix.py says what "wrong" is.
"""

import pytest

from tests.functional.reliability import matrix

CASES = []
for _name, _operation in matrix.OPERATIONS.items():
    for _fault in ('none',) + matrix.PLACED_FAULTS + tuple(
            _operation.source_faults):
        CASES.append((_name, _fault))


@pytest.mark.parametrize('operation,fault', CASES,
                         ids=['%s-%s' % c for c in CASES])
def test_fault_matrix(benches_for, operation, fault):
    op = matrix.OPERATIONS[operation]
    group = benches_for(operation)
    for bench in group.benches:
        matrix.record_sequence(bench, op)
    first = group.benches[0]
    if fault == 'none':
        results = [r for r in matrix.RESULTS
                   if (r.operation, r.fault) == (operation, 'none')]
    elif fault in matrix.SOURCE_FAULTS:
        results = [matrix.run_case(first, op, fault)[0]]
    else:
        points = matrix.injection_points(first.sequences[operation][0],
                                         fault, op.subset_first_call)
        results = matrix.run_cases(group, op, fault, points)
    bad = [r for r in results if not r.ok]
    assert not bad, '%d of %d cases went wrong:\n%s' % (
        len(bad), len(results), '\n'.join(r.describe() for r in bad))
