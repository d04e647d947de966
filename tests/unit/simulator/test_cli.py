"""The simulator's command line: what stops ``serve``."""

import signal
import types

from datera_glance.simulator import cli


def _siginfo(signo):
    return types.SimpleNamespace(si_signo=signo)


def test_sigterm_and_sigint_stop_the_simulator():
    assert cli.stop_signal(_siginfo(signal.SIGTERM)) == 'SIGTERM'
    assert cli.stop_signal(_siginfo(signal.SIGINT)) == 'SIGINT'


def test_a_timeout_does_not():
    assert cli.stop_signal(None) is None


def test_a_wake_up_that_names_no_signal_does_not():
    # Seen in CI on a sandboxed kernel: this crashed the simulator
    # (ValueError: 1799853328 is not a valid Signals) in the middle of a
    # test.
    assert cli.stop_signal(_siginfo(1799853328)) is None
    assert cli.stop_signal(_siginfo(signal.SIGHUP)) is None
