"""Shared pytest fixtures: a Datera EDF simulator per test.

``edf_sim`` exports loop devices when the tests run as root (as CI does),
so a write past a volume's end fails as it would on a real LUN; elsewhere
it exports sparse files. ``file_sim`` always exports files, ``block_sim``
always loop devices and skips without root.
"""

import os
import shutil

import pytest

from datera_edf_sim import fixture


def can_use_block_devices():
    """Whether loop devices can be made here (root and losetup)."""
    return os.geteuid() == 0 and shutil.which('losetup') is not None


def _simulator(tmp_path, block_devices):
    with fixture.running_simulator(str(tmp_path / 'edf-sim'),
                                   block_devices=block_devices) as sim:
        yield sim


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the end of the simulator's log under a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == 'call':
        for value in getattr(item, 'funcargs', {}).values():
            if isinstance(value, fixture.SimulatorProcess):
                report.sections.append((
                    'simulator log (%s)' % value.log_file,
                    value.log_tail(60)))


@pytest.fixture
def edf_sim(tmp_path):
    """A fresh simulator; loop devices when running as root."""
    yield from _simulator(tmp_path, can_use_block_devices())


@pytest.fixture
def file_sim(tmp_path):
    """A fresh simulator exporting sparse files."""
    yield from _simulator(tmp_path, False)


@pytest.fixture
def block_sim(tmp_path):
    """A fresh simulator exporting loop devices; skips without root."""
    if not can_use_block_devices():
        pytest.skip('loop devices need root and losetup (CI runs as root)')
    yield from _simulator(tmp_path, True)
