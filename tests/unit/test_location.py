"""Location URIs: every form the original driver wrote, round trips, and
BadStoreUri for everything else."""

from glance_store import exceptions
from glance_store import location
from oslo_config import cfg
import pytest

from datera_glance import store

IMAGE_ID = '6bd58dbb-6b4b-4f5e-8a1f-6b5e1b3c1f7e'


def _parse(uri):
    loc = store.StoreLocation({}, cfg.CONF)
    loc.parse_uri(uri)
    return loc


@pytest.mark.parametrize('uri,host,port,prefix', [
    # What this driver writes, as the original 2019.4.16.1 did.
    ('datera://172.16.0.10:7718/app_instances/OS-IMAGE-%s' % IMAGE_ID,
     '172.16.0.10', 7718, 'OS-IMAGE-'),
    # The original 2018.11 release wrote the bare id.
    ('datera://172.16.0.10:7718/app_instances/%s' % IMAGE_ID,
     '172.16.0.10', 7718, ''),
    # Releases 1.0.x named app instances OS-<id>.
    ('datera://edf.example.com:7717/app_instances/OS-%s' % IMAGE_ID,
     'edf.example.com', 7717, 'OS-'),
    ('datera://[fd00::10]:7718/app_instances/OS-IMAGE-%s' % IMAGE_ID,
     '[fd00::10]', 7718, 'OS-IMAGE-'),
    ('datera://edf:443/app_instances/OS-IMAGE-%s' % IMAGE_ID.upper(),
     'edf', 443, 'OS-IMAGE-'),
])
def test_parse_original_forms_and_round_trip(uri, host, port, prefix):
    loc = _parse(uri)
    assert (loc.host, loc.port, loc.name_prefix) == (host, port, prefix)
    assert loc.image_id.lower() == IMAGE_ID
    assert loc.scheme == 'datera'
    assert loc.get_uri() == uri


def test_new_locations_use_the_original_format():
    loc = store.StoreLocation(
        {'host': '10.0.0.5', 'port': 7718, 'image_id': IMAGE_ID}, cfg.CONF)
    assert loc.get_uri() == (
        'datera://10.0.0.5:7718/app_instances/OS-IMAGE-%s' % IMAGE_ID)
    assert loc.app_instance_name == 'OS-IMAGE-%s' % IMAGE_ID
    assert _parse(loc.get_uri()).image_id == IMAGE_ID


def test_ipv6_management_address_is_bracketed():
    loc = store.StoreLocation(
        {'host': 'fd00::10', 'port': 7718, 'image_id': IMAGE_ID}, cfg.CONF)
    uri = loc.get_uri()
    assert uri.startswith('datera://[fd00::10]:7718/')
    assert _parse(uri).get_uri() == uri


GOOD_PATH = '/app_instances/OS-IMAGE-%s' % IMAGE_ID


@pytest.mark.parametrize('uri', [
    # wrong scheme
    'rbd://10.0.0.5:7718' + GOOD_PATH,
    'DATERA://10.0.0.5:7718' + GOOD_PATH,
    'datera:/10.0.0.5:7718' + GOOD_PATH,
    'datera+https://10.0.0.5:7718' + GOOD_PATH,
    # missing or bad host / port
    'datera://10.0.0.5' + GOOD_PATH,
    'datera://:7718' + GOOD_PATH,
    'datera://10.0.0.5:' + GOOD_PATH,
    'datera://10.0.0.5:port' + GOOD_PATH,
    'datera://10.0.0.5:0' + GOOD_PATH,
    'datera://10.0.0.5:70000' + GOOD_PATH,
    'datera://10.0.0.5:07718' + GOOD_PATH,
    'datera://admin:secret@10.0.0.5:7718' + GOOD_PATH,
    'datera://fd00::10:7718' + GOOD_PATH,
    'datera://' + GOOD_PATH,
    # missing or wrong path
    'datera://10.0.0.5:7718',
    'datera://10.0.0.5:7718/',
    'datera://10.0.0.5:7718/app_instances',
    'datera://10.0.0.5:7718/app_instances/',
    'datera://10.0.0.5:7718/volumes/OS-IMAGE-%s' % IMAGE_ID,
    'datera://10.0.0.5:7718/v2.2/app_instances/OS-IMAGE-%s' % IMAGE_ID,
    'datera://10.0.0.5:7718' + GOOD_PATH + '/storage_instances/storage-1',
    'datera://10.0.0.5:7718' + GOOD_PATH + '/',
    'datera://10.0.0.5:7718//app_instances/OS-IMAGE-%s' % IMAGE_ID,
    'datera://10.0.0.5:7718' + GOOD_PATH + '?tenant=/root',
    'datera://10.0.0.5:7718' + GOOD_PATH + '#frag',
    # an app instance that is not an image's
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-',
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-not-a-uuid',
    'datera://10.0.0.5:7718/app_instances/OS-VOLUME-%s' % IMAGE_ID,
    'datera://10.0.0.5:7718/app_instances/IMAGE-%s' % IMAGE_ID,
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-%s' % IMAGE_ID[:-1],
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-%sa' % IMAGE_ID,
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-%s' % (
        IMAGE_ID.replace('-', '')),
    'datera://10.0.0.5:7718/app_instances/OS-IMAGE-{%s}' % IMAGE_ID,
])
def test_malformed_uri_raises_bad_store_uri(uri):
    with pytest.raises(exceptions.BadStoreUri):
        _parse(uri)


def test_glance_store_resolves_datera_uris_to_this_location_class():
    saved = dict(location.SCHEME_TO_CLS_MAP)
    try:
        location.register_scheme_map({'datera': {
            'store': None, 'location_class': store.StoreLocation,
            'store_entry': 'datera'}})
        uri = 'datera://10.0.0.5:7718' + GOOD_PATH
        loc = location.get_location_from_uri(uri)
        assert loc.store_name == 'datera'
        assert loc.store_location.image_id == IMAGE_ID
        assert loc.get_store_uri() == uri
        with pytest.raises(exceptions.BadStoreUri):
            location.get_location_from_uri('datera://10.0.0.5:7718/x')
    finally:
        location.SCHEME_TO_CLS_MAP.clear()
        location.SCHEME_TO_CLS_MAP.update(saved)
