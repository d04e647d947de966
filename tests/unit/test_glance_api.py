"""The glance-api harness writes the two layouts operators use."""

import configparser

import pytest

from datera_edf_sim import fixture
from datera_glance_dev import glance_api

# Never started: only its ready-line attributes are used.
SIM = fixture.SimulatorProcess('/sim')
SIM.__dict__.update(host='127.0.0.1', port=7718, username='admin',
                    password='secret', ca_file='/sim/ca.pem',
                    export_dir='/sim/exports')


def read_conf(api):
    api.write_config()
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.read(api.config_file)
    return parser


def test_multi_store_layout(tmp_path):
    api = glance_api.GlanceApi(
        str(tmp_path), [glance_api.datera_backend(SIM, name='fast'),
                        glance_api.file_backend('/images', name='local')],
        default='fast')
    conf = read_conf(api)

    assert conf['DEFAULT']['enabled_backends'] == 'fast:datera,local:file'
    assert conf['glance_store']['default_backend'] == 'fast'
    assert 'stores' not in conf['glance_store']
    assert conf['fast']['datera_san_ip'] == '127.0.0.1'
    assert conf['fast']['datera_ca_certificates_file'] == '/sim/ca.pem'
    assert conf['fast']['datera_transport'] == 'local'
    assert conf['local']['filesystem_store_datadir'] == '/images'
    for reserved in ('os_glance_staging_store', 'os_glance_tasks_store'):
        assert conf[reserved]['filesystem_store_datadir']


def test_legacy_single_store_layout(tmp_path):
    api = glance_api.GlanceApi(
        str(tmp_path), [glance_api.datera_backend(SIM)], legacy=True)
    conf = read_conf(api)

    assert 'enabled_backends' not in conf['DEFAULT']
    assert conf['glance_store']['stores'] == 'datera'
    assert conf['glance_store']['default_store'] == 'datera'
    assert conf['glance_store']['datera_san_login'] == 'admin'
    assert conf['DEFAULT']['node_staging_uri'].startswith('file:///')
    assert not conf.has_section('datera1')


def test_datera_backend_options_can_be_overridden_and_removed():
    backend = glance_api.datera_backend(
        SIM, datera_chunk_size=4096, datera_ca_certificates_file=None)
    assert backend.options['datera_chunk_size'] == 4096
    assert 'datera_ca_certificates_file' not in backend.options


def test_policy_opens_every_glance_policy(tmp_path):
    api = glance_api.GlanceApi(str(tmp_path),
                               [glance_api.file_backend('/images')])
    api.write_config()
    with open(tmp_path / 'etc' / 'policy.yaml') as f:
        lines = [line for line in f if not line.startswith('#')]
    assert len(lines) == len(glance_api.policy_rules()) > 50
    assert all(line.rstrip().endswith(': ""') for line in lines)


def test_privsep_helper_runs_without_sudo(tmp_path):
    api = glance_api.GlanceApi(str(tmp_path),
                               [glance_api.file_backend('/images')],
                               bindir='/venv/bin')
    conf = read_conf(api)
    assert conf['privsep_osbrick']['helper_command'] == (
        '/venv/bin/privsep-helper --config-file %s' % api.config_file)


def test_unknown_default_backend_is_refused(tmp_path):
    with pytest.raises(ValueError):
        glance_api.GlanceApi(str(tmp_path),
                             [glance_api.file_backend('/images')],
                             default='nope')
