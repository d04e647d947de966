"""The README's privilege recipe is the one the unprivileged e2e test runs.

tests/e2e/test_unprivileged.py sets a host up with
:mod:`datera_glance_dev.unprivileged`; the README shows the same
files for the ``glance`` user and a virtualenv in ``/opt/glance``.
"""

import os

from datera_glance_dev import unprivileged

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
VENV_BIN = '/opt/glance/bin'
ROOTWRAP = VENV_BIN + '/glance-rootwrap'
ROOTWRAP_CONF = '/etc/glance/rootwrap.conf'


def readme():
    with open(os.path.join(ROOT, 'README.rst')) as f:
        return f.read()


def test_the_sudoers_rule_is_the_tested_one():
    line = unprivileged.sudoers_line('glance', ROOTWRAP, ROOTWRAP_CONF)
    assert "echo '%s' > /etc/sudoers.d/" % line in readme()


def test_the_rootwrap_conf_is_the_tested_one():
    text = readme()
    expected = unprivileged.rootwrap_conf('/etc/glance/rootwrap.d',
                                          VENV_BIN).strip()
    shown = '\n'.join(line.strip() for line in expected.splitlines())
    block = '\n'.join(
        line.strip() for line in text.split("rootwrap.conf <<'EOF'", 1)[1]
        .split('EOF', 1)[0].strip().splitlines())
    assert block == shown


def test_the_root_helper_options_are_the_tested_ones():
    options = unprivileged.root_helper_options(ROOTWRAP, ROOTWRAP_CONF)
    text = readme()
    for name, value in options.items():
        assert '%s = %s' % (name, value) in text


def test_the_filters_are_copied_from_where_pip_puts_them():
    assert ('install -m 644 /opt/glance/etc/glance/rootwrap.d/datera.filters'
            ' /etc/glance/rootwrap.d/') in readme()
    with open(os.path.join(ROOT, 'setup.cfg')) as f:
        assert ('etc/glance/rootwrap.d = etc/glance/rootwrap.d/'
                'datera.filters') in f.read()
