"""glance_store in this process with file and Datera backends side by side.

:func:`datera_glance.testing.stores.configure_multi_store` registers only
Datera backends; the benchmark also needs glance_store's own filesystem
store, configured the way glance-api configures any backend::

    [DEFAULT]
    enabled_backends = bench:datera, file:file, ...
    [glance_store]
    default_backend = bench
    [file]
    filesystem_store_datadir = <work dir>/file-store
"""

from glance_store import driver
from glance_store import multi_backend
from oslo_config import cfg

from datera_glance.testing import stores


def configure(conf, backends, default):
    """Configure and create the stores of a mixed multi-store layout.

    :param conf: an oslo.config ConfigOpts (``cfg.CONF``), already parsed.
    :param backends: ``{name: (store type, {option: value})}`` where the
        store type is ``'file'`` or ``'datera'``.
    :param default: the default backend's name.
    :returns: the number of stores glance_store created.
    """
    try:
        conf.register_opt(cfg.DictOpt('enabled_backends'))
    except cfg.DuplicateOptError:
        pass    # glance registered its own (glance.common imported)
    conf.set_override('enabled_backends',
                      {name: kind for name, (kind, _o) in backends.items()})
    multi_backend.register_store_opts(conf)
    conf.set_override('default_backend', default, group='glance_store')
    for name, (_kind, options) in backends.items():
        # store_description and weight, registered by glance_store only
        # when it loads the store.
        conf.register_opts(driver.Store.MULTI_BACKEND_OPTIONS, group=name)
        for key, value in options.items():
            conf.set_override(key, value, group=name)
    return multi_backend.create_multi_stores(conf)


def file_options(datadir):
    """glance's filesystem store keeping its images under ``datadir``.

    Its other options keep glance's defaults (64 KiB chunks, no thin
    provisioning), as an operator's glance-api has them.
    """
    return ('file', {'filesystem_store_datadir': datadir})


def datera_options(sim, chunk, thin=True, **overrides):
    """The Datera store against the simulator ``sim``.

    Unknown sizes start at 1 GiB (``datera_default_image_size``); retries
    and timeouts are generous, a benchmark measures and does not inject
    faults.
    """
    options = stores.datera_options(
        sim, datera_chunk_size=chunk, datera_thin_provisioning=thin,
        datera_default_image_size=1, datera_retry_attempts=5,
        datera_operation_max_timeout=300)
    options.update(overrides)
    return ('datera', options)
