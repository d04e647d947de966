"""A privileged helper that cannot start names the options that fix it.

These start a real oslo.privsep context whose root helper fails, the way a
missing sudo, an unmatched sudoers rule or a refusing rootwrap does.
"""

import os

from glance_store import exceptions
from oslo_privsep import priv_context
import pytest

from datera_glance import attach

context = priv_context.PrivContext(
    'tests', cfg_section='datera_glance_test_privsep',
    pypath=__name__ + '.context', capabilities=[])


@context.entrypoint
def privileged_uid():
    return os.getuid()


@pytest.fixture
def root_helper():
    def use(command):
        priv_context.init(root_helper=command.split())
        return command
    yield use
    context.stop()
    priv_context.init(root_helper=['sudo'])


@pytest.mark.parametrize('command', [
    'false',                                # sudo asked for a password
    'no-such-sudo glance-rootwrap /etc/glance/rootwrap.conf',
])
def test_a_helper_that_cannot_start_names_the_options(root_helper, command):
    helper = root_helper(command)
    with pytest.raises(exceptions.BackendException) as raised:
        with attach.root_helper_errors(helper):
            privileged_uid()
    message = str(raised.value)
    assert 'root helper "%s"' % helper in message
    assert 'datera_glance_rootwrap_path' in message
    assert 'datera_glance_rootwrap_config' in message


def test_other_missing_files_are_not_blamed_on_the_helper(root_helper):
    helper = root_helper('sudo glance-rootwrap /etc/glance/rootwrap.conf')
    with pytest.raises(FileNotFoundError):
        with attach.root_helper_errors(helper):
            open('/nonexistent/device')
