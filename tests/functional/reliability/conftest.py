"""Fixtures and the summary line of the fault matrix.

One :class:`~tests.functional.reliability.matrix.BenchGroup` (simulators
with a warmed-up store on each; ``DATERA_MATRIX_WORKERS``, 2 by default,
run cases at the same time) per operation, kept while that operation's
tests run.
After the run one line sums the matrix up; it is also written to the file
named by ``DATERA_RELIABILITY_SUMMARY`` when that is set, and every case
(one line each: the time of the case and of its operation) to the file
named by ``DATERA_RELIABILITY_DETAILS``.
"""

import os

import pytest

from tests.functional.reliability import matrix


WORKERS = int(os.environ.get('DATERA_MATRIX_WORKERS', '2'))


class _Groups:
    """The bench group of the operation under test (one open at a time)."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._name = None
        self._group = None

    def __call__(self, operation):
        if (self._name != operation or self._group is None or
                self._group.broken):
            self.close()
            self._group = matrix.BenchGroup(
                str(self._tmp.mktemp('matrix-' + operation)), WORKERS)
            self._name = operation
        return self._group

    def close(self):
        group, self._group, self._name = self._group, None, None
        if group is not None:
            group.close()


@pytest.fixture(scope='module')
def benches_for(tmp_path_factory, privsep_in_process):
    """``benches_for(operation name)``: its BenchGroup, made on first use.

    A group with a bench that hung is replaced by a new one.
    """
    groups = _Groups(tmp_path_factory)
    yield groups
    groups.close()


def pytest_terminal_summary(terminalreporter):
    if not matrix.RESULTS:
        return
    line = matrix.summary_line()
    terminalreporter.write_line(line)
    path = os.environ.get('DATERA_RELIABILITY_SUMMARY')
    if path:
        with open(path, 'w') as f:
            f.write(line + '\n')
    path = os.environ.get('DATERA_RELIABILITY_DETAILS')
    if path:
        with open(path, 'w') as f:
            for result in matrix.RESULTS:
                f.write('%6.2fs %6.2fs %s\n' % (
                    result.seconds, result.op_seconds, result.describe()))
