"""What a glance-api host installs: the driver, and nothing for testing.

The EDF simulator (datera-edf-sim/) and the test and demo harness
(datera_glance_dev/) live beside the driver, not in it: a wheel of this
repository holds only ``datera_glance``, requires no web framework, and the
driver's modules import neither.
"""

import email
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
NOT_ON_HOSTS = ('flask', 'werkzeug', 'jsonschema', 'datera_edf_sim',
                'datera_glance_dev')


def _top_packages_loaded_by(*modules):
    """The top-level packages a fresh interpreter loads importing these."""
    code = 'import sys, %s; print("\\n".join(sys.modules))' % ', '.join(
        modules)
    loaded = subprocess.run([sys.executable, '-c', code], check=True,
                            capture_output=True, text=True,
                            cwd='/').stdout.split()
    return {m.split('.')[0] for m in loaded}


def test_the_driver_imports_nothing_of_the_simulator_or_the_harness():
    assert not _top_packages_loaded_by(
        'datera_glance.store', 'datera_glance.cmd.manage') & set(NOT_ON_HOSTS)


def test_the_simulator_imports_nothing_of_the_driver():
    assert not _top_packages_loaded_by(
        'datera_edf_sim.cli', 'datera_edf_sim.fixture') & {
            'datera_glance', 'datera_glance_dev', 'glance_store'}


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '-w', str(out), ROOT],
                   check=True, capture_output=True, cwd=ROOT)
    [name] = [n for n in os.listdir(out) if n.endswith('.whl')]
    return zipfile.ZipFile(os.path.join(out, name))


def test_the_wheel_holds_only_the_driver(wheel):
    packages = {n.split('/')[0] for n in wheel.namelist()
                if n.endswith('.py')}
    assert packages == {'datera_glance'}
    assert not [n for n in wheel.namelist() if '/simulator/' in n or
                '/testing/' in n or n.endswith('demo.py')]


def test_the_wheel_requires_no_web_framework(wheel):
    [meta] = [n for n in wheel.namelist() if n.endswith('/METADATA')]
    message = email.message_from_bytes(wheel.read(meta))
    requires = [r.split()[0].split('>')[0].split('=')[0].lower()
                for r in message.get_all('Requires-Dist') or []]
    assert 'glance-store' in requires or 'glance_store' in requires
    assert not set(requires) & {'flask', 'werkzeug', 'jsonschema',
                                'cryptography'}
    [entry_points] = [n for n in wheel.namelist()
                      if n.endswith('/entry_points.txt')]
    assert 'datera-edf-sim' not in wheel.read(entry_points).decode()
