"""The simulator's command line: what stops ``serve``, its options."""

import pwd
import signal
import types

import pytest

from datera_edf_sim import cli


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


def test_export_owner_is_read_as_user_and_group():
    root = pwd.getpwuid(0).pw_name
    parse = cli.build_parser().parse_args
    base = ['serve', '--data-dir', '/nonexistent']
    assert parse(base + ['--export-owner', root]).export_owner == (0, 0)
    assert parse(base + ['--export-owner', '0:5']).export_owner == (0, 5)


@pytest.mark.parametrize('value', ['no-such-user-datera', '0:no-such-group'])
def test_an_unknown_export_owner_is_refused_naming_it(value, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(
            ['serve', '--data-dir', '/x', '--export-owner', value])
    err = capsys.readouterr().err
    assert 'no such %s: %s' % (
        'group' if ':' in value else 'user', value.split(':')[-1]) in err
