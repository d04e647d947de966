"""Fixtures of the fake-kernel iSCSI tier (see fake_kernel.py).

Run it as root, in a mount namespace of its own::

    unshare --mount --propagation private .venv/bin/pytest tests/iscsi

Without ``unshare`` the ``private_mount_namespace`` fixture moves the pytest
process into a new private mount namespace itself (unshare(2)), which works
as long as the process has no other threads yet; when it cannot, and the
process is not already in a namespace of its own, the tier is skipped with
that command in the message.  It is also skipped when not root or when
tgtd, tgtadm or libiscsi are missing (Debian packages ``tgt`` and
``libiscsi-bin``).

Fixtures:

* ``fake_kernel``: a set-up ``FakeKernel`` (torn down after the test, also
  after a failure).  ``@pytest.mark.fake_kernel(multipathd=True)`` gives
  one with the fake multipathd running.
* ``tgt_target``: a tgtd of its own on two random loopback portals
  (127.A.B.1:3260 and 127.A.B.2:3260), target LUN 1 a 64 MiB sparse file,
  ACL bound to the fake kernel's initiator name; stopped afterwards.
* ``brick``: makes os-brick's real ISCSIConnector through
  ``InitiatorConnector.factory('ISCSI', ...)``.
"""

import ctypes
import os
import shutil
import time
import types

from os_brick.initiator.connectors import iscsi as brick_iscsi
import pytest

# glance_conf: cfg.CONF parsed afresh, glance_store's maps restored, per
# test (the store tests use it as the functional tests do).
from tests.functional.conftest import glance_conf  # noqa: F401
from tests.iscsi import fake_kernel as fk


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'fake_kernel(**kwargs): arguments of the FakeKernel '
        'made by the fake_kernel fixture')


def _namespace_differs_from_parent():
    try:
        return (os.readlink('/proc/self/ns/mnt') !=
                os.readlink('/proc/%d/ns/mnt' % os.getppid()))
    except OSError:
        return False


@pytest.fixture(scope='session')
def private_mount_namespace():
    """Root, the tools, and a mount namespace private to this process."""
    if os.geteuid() != 0:
        pytest.skip('the fake-kernel iSCSI tier needs root')
    missing = [tool for tool in ('tgtd', 'tgtadm', 'losetup', 'blockdev',
                                 'lsscsi') if not shutil.which(tool)]
    try:
        ctypes.CDLL('libiscsi.so.7')
    except OSError:
        missing.append('libiscsi.so.7')
    if missing:
        pytest.skip('the fake-kernel iSCSI tier needs %s (Debian packages '
                    'tgt, libiscsi-bin, lsscsi)' % ', '.join(missing))
    try:
        fk.enter_private_mount_namespace()
    except OSError as exc:
        if not _namespace_differs_from_parent():
            pytest.skip('cannot make a private mount namespace (%s); run '
                        'the tier as: unshare --mount --propagation private '
                        '.venv/bin/pytest tests/iscsi' % exc)


@pytest.fixture
def fake_kernel(private_mount_namespace, request):
    marker = request.node.get_closest_marker('fake_kernel')
    kwargs = dict(marker.kwargs) if marker else {}
    with fk.FakeKernel(**kwargs) as kernel:
        yield kernel


@pytest.fixture
def tgt_target(fake_kernel, tmp_path):
    target = fk.TgtTarget(str(tmp_path), [fake_kernel.initiator_name])
    try:
        target.start()
        yield target
    finally:
        target.stop()


@pytest.fixture
def brick(fake_kernel):
    from os_brick.initiator import connector

    def make(use_multipath=False, device_scan_attempts=3):
        return connector.InitiatorConnector.factory(
            'ISCSI', 'sudo', use_multipath=use_multipath,
            device_scan_attempts=device_scan_attempts)
    return make


@pytest.fixture
def fast_brick_clock(monkeypatch):
    """Make os-brick's iscsi.py waits (rescans, dm wait) 10 times shorter.

    Only the ``time`` that connectors/iscsi.py sees is replaced: its
    sleep() sleeps a tenth and its time() runs ten times faster.
    """
    start = time.time()
    clock = types.SimpleNamespace(
        sleep=lambda seconds: time.sleep(seconds / 10.0),
        time=lambda: start + (time.time() - start) * 10)
    monkeypatch.setattr(brick_iscsi, 'time', clock)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Show the fake kernel's stand-in calls under a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        kernel = getattr(item, 'funcargs', {}).get('fake_kernel')
        if kernel is not None and kernel.state_dir:
            report.sections.append(('fake kernel calls',
                                    '\n'.join(kernel.calls()[-80:])))
