"""The store's options: compatibility with the original driver, help,
genconfig, and the legacy ``default_store = datera`` setting."""

import importlib.metadata
import io

from glance_store import backend
from oslo_config import cfg
from oslo_config import generator
from oslo_config import types
from oslo_utils import units
import pytest

from datera_glance import options

OPTS = {opt.name: opt for opt in options.OPTIONS}

# name -> (oslo.config type, default) as the original driver declared them
# (datera_san_* were IntOpt/PortOpt/StrOpt there too).
ORIGINAL = {
    'datera_san_ip': (types.String, None),
    'datera_san_login': (types.String, None),
    'datera_san_password': (types.String, None),
    'datera_san_port': (types.Port, 7718),
    'datera_tenant_id': (types.String, '/root'),
    'datera_replica_count': (types.Integer, 3),
    'datera_placement_mode': (types.String, 'hybrid'),
    'datera_chunk_size': (types.Integer, None),  # default changed, see below
    'datera_glance_rootwrap_path': (types.String, 'sudo glance-rootwrap'),
    'datera_glance_rootwrap_config': (types.String,
                                      '/etc/glance/rootwrap.conf'),
    'datera_default_image_size': (types.Integer, 1),
    'datera_retry_attempts': (types.Integer, 5),
    'datera_retry_interval': (types.Float, 1.0),
    # default changed from 60, see below
    'datera_operation_max_timeout': (types.Float, None),
}

NEW = {
    'datera_api_version': 'auto',
    'datera_ldap_server': None,
    'datera_ca_certificates_file': None,
    'datera_api_insecure': False,
    'datera_use_multipath': False,
    'datera_thin_provisioning': False,
    'datera_transport': 'iscsi',
    'datera_local_export_dir': None,
    'datera_initiator_name': None,
}


@pytest.mark.parametrize('name', sorted(ORIGINAL))
def test_original_option_keeps_name_and_type(name):
    opt_type, default = ORIGINAL[name]
    assert name in OPTS
    assert isinstance(OPTS[name].type, opt_type)
    if default is not None:
        assert OPTS[name].default == default


def test_every_option_is_original_or_documented_new():
    assert set(OPTS) == set(ORIGINAL) | set(NEW)
    assert len(OPTS) == len(options.OPTIONS)  # no duplicate names


@pytest.mark.parametrize('name', sorted(NEW))
def test_new_option_defaults(name):
    assert OPTS[name].default == NEW[name]


def test_password_is_secret():
    assert OPTS['datera_san_password'].secret


def test_tls_is_verified_by_default():
    assert OPTS['datera_api_insecure'].default is False


def test_operation_timeout_default_is_below_a_wsgi_request_timeout():
    # gunicorn kills a worker whose request runs past 30 s by default; a
    # slow cluster must give a clear error before that.
    assert OPTS['datera_operation_max_timeout'].default < 30
    assert 'gunicorn' in OPTS['datera_operation_max_timeout'].help


def test_chunk_size_default_is_bounded():
    # The original 1 GiB buffers per transfer are a memory hazard.
    assert OPTS['datera_chunk_size'].default == 8 * units.Mi
    assert OPTS['datera_chunk_size'].default < units.Gi


@pytest.mark.parametrize('name,choices', [
    ('datera_placement_mode', ['single_flash', 'all_flash', 'hybrid']),
    ('datera_api_version', ['auto', '2.2', '2.1']),
    ('datera_transport', ['iscsi', 'local']),
])
def test_choices(name, choices):
    assert list(OPTS[name].type.choices) == choices


def test_required_options_do_not_stop_other_deployments():
    # glance registers every installed store's options; a required option
    # would make glance-api refuse to start where Datera is not used.
    conf = cfg.ConfigOpts()
    conf.register_opts(options.OPTIONS, group='glance_store')
    conf(args=[])
    assert conf.glance_store.datera_san_ip is None


@pytest.mark.parametrize('opt', options.OPTIONS, ids=lambda o: o.name)
def test_help_has_glance_store_shape(opt):
    assert opt.help.strip()
    assert 'Possible values:' in opt.help
    assert 'Related options:' in opt.help


def test_list_opts_covers_every_option():
    [(group, opts)] = options.list_opts()
    assert group == 'glance_store'
    assert [o.name for o in opts] == [o.name for o in options.OPTIONS]


def test_entry_points_are_registered():
    eps = importlib.metadata.entry_points()
    opts = {e.name: e.value for e in eps.select(group='oslo.config.opts')}
    assert opts['datera_glance'] == 'datera_glance.options:list_opts'
    drivers = {e.name: e.value
               for e in eps.select(group='glance_store.drivers')}
    assert drivers['datera'] == 'datera_glance.store:Store'


def test_genconfig_renders_options_with_help():
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(args=['--namespace', 'datera_glance'])
    out = io.StringIO()
    generator.generate(conf, output_file=out)
    text = out.getvalue()
    assert '[glance_store]' in text
    for name in OPTS:
        assert '#%s = ' % name in text
    assert 'Hostname or IP address of the Datera EDF management' in text
    assert '#datera_chunk_size = 8388608' in text
    assert "single_flash - one replica on flash" in text


def _default_store_opt():
    [opt] = [o for o in backend._STORE_OPTS if o.name == 'default_store']
    return opt


def test_default_store_accepts_datera_idempotently():
    options.allow_default_store()
    options.allow_default_store()
    choices = list(_default_store_opt().type.choices)
    assert choices.count('datera') == 1
    # The upstream choices are kept, in their order.
    assert choices[:3] == ['file', 'filesystem', 'http']


def test_loading_the_driver_allows_default_store(tmp_path):
    import datera_glance.store  # noqa: F401 (import is the action)

    conf_file = tmp_path / 'glance-api.conf'
    conf_file.write_text('[glance_store]\nstores = datera\n'
                         'default_store = datera\n')
    conf = cfg.ConfigOpts()
    conf.register_opts(backend._STORE_OPTS, group='glance_store')
    conf(args=[], default_config_files=[str(conf_file)])
    assert conf.glance_store.default_store == 'datera'
    assert conf.glance_store.stores == ['datera']


def test_default_store_still_rejects_unknown_schemes(tmp_path):
    options.allow_default_store()
    conf_file = tmp_path / 'glance-api.conf'
    conf_file.write_text('[glance_store]\ndefault_store = nosuch\n')
    conf = cfg.ConfigOpts()
    conf.register_opts(backend._STORE_OPTS, group='glance_store')
    conf(args=[], default_config_files=[str(conf_file)])
    with pytest.raises(cfg.ConfigFileValueError):
        conf.glance_store.default_store
