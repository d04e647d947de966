"""Cinder's Datera driver, in a process of its own, cloning one image.

Run by :mod:`tests.functional.test_cinder_clone`; reads a JSON request on
stdin and writes the JSON outcome on stdout. Importing cinder registers
its options in oslo.config's global CONF (its ``enabled_backends`` is a
list, glance's a dict), so it must not share a process with glance_store.

Only what lies outside storage is mocked: Cinder's request context, its
volume type lookups, and the image service, which records and refuses any
use (Cinder would be downloading the image).
"""

import datetime
import functools
import json
import sys
from unittest import mock

from oslo_config import cfg

from datera_glance.sdk_compat import dfs_sdk

GROUP = 'cinder_datera_interop'


class ImageServiceNeverAsked(object):
    """Cinder's image service: every use is recorded and refused."""

    def __init__(self):
        self.asked = []

    def __getattr__(self, name):
        self.asked.append(name)
        raise AssertionError('the image service was asked for %s' % name)


def make_driver(request):
    # Imported here: cinder registers its options on import, and the
    # command line is parsed only after that.
    from cinder.volume import configuration
    from cinder.volume import driver as volume_driver
    from cinder.volume.drivers.datera import datera_iscsi
    from cinder.volume.drivers.san import san

    cfg.CONF(args=[], default_config_files=[])
    conf = configuration.Configuration(volume_driver.volume_opts,
                                       config_group=GROUP)
    conf.append_config_values(san.san_opts)
    conf.append_config_values(datera_iscsi.d_opts)
    overrides = {
        'san_ip': request['host'], 'san_login': request['username'],
        'san_password': request['password'],
        'datera_enable_image_cache': True,
        'datera_image_cache_volume_type_id': request['volume_type'],
        'datera_503_timeout': 5, 'datera_503_interval': 1,
    }
    for name, value in overrides.items():
        cfg.CONF.set_override(name, value, group=GROUP)
    driver = datera_iscsi.DateraDriver(configuration=conf)
    driver.do_setup(mock.Mock(name='cinder-context'))
    if driver.api is None:
        raise RuntimeError('Cinder could not log in to %s' % request['host'])
    return driver


def clone_image(request):
    volume_type = {'id': request['volume_type'], 'name': 'image-cache',
                   'extra_specs': {}, 'qos_specs_id': None}
    image_service = ImageServiceNeverAsked()
    image_meta = {
        'id': request['image_id'], 'disk_format': 'raw',
        'container_format': 'bare', 'visibility': 'public',
        'size': request['image_size'],
        'updated_at': datetime.datetime.now(datetime.timezone.utc)}
    # dfs_sdk caches the cluster's /api document in one file for the whole
    # machine (/tmp/.cached-schema) unless told otherwise, and Cinder does
    # not tell it: keep this run's next to its simulator.
    with mock.patch.object(dfs_sdk, 'get_api', functools.partial(
            dfs_sdk.get_api, schema_loc=request['schema_cache'])), \
            mock.patch('cinder.volume.volume_types.get_volume_type',
                       return_value=volume_type), \
            mock.patch('cinder.context.get_admin_context'):
        driver = make_driver(request)
        try:
            result = driver.clone_image(
                mock.Mock(name='cinder-context'), dict(request['volume']),
                (request['image_uri'], None), image_meta, image_service)
        except AssertionError:
            result = None
    return {'result': list(result) if result else None,
            'image_service_asked': image_service.asked}


def main():
    outcome = clone_image(json.load(sys.stdin))
    json.dump(outcome, sys.stdout)


if __name__ == '__main__':
    main()
