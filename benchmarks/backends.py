"""glance_store in this process with file and Datera backends side by side.

The benchmark also needs glance_store's own filesystem store, configured
the way glance-api configures any backend::

    [DEFAULT]
    enabled_backends = bench:datera, file:file, ...
    [glance_store]
    default_backend = bench
    [file]
    filesystem_store_datadir = <work dir>/file-store
"""

from datera_glance_dev import stores


def configure(conf, backends, default):
    """Configure and create the stores of a mixed multi-store layout.

    :param conf: an oslo.config ConfigOpts (``cfg.CONF``), already parsed.
    :param backends: ``{name: (store type, {option: value})}`` where the
        store type is ``'file'`` or ``'datera'``.
    :param default: the default backend's name.
    :returns: the number of stores glance_store created.
    """
    return stores.configure_multi_store(
        conf, {name: options for name, (_kind, options) in backends.items()},
        default, kinds={name: kind for name, (kind, _o) in backends.items()})


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
