"""Property-based tests of location URIs and image ids (hypothesis).

Thousands of generated inputs, valid and not: every URI is either
accepted and round-trips, or raises BadStoreUri; every image id given to
add() is accepted or refused with Invalid before any REST call. Never
another exception, never a trailing newline or space let through.
"""

import string

from glance_store import exceptions
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from oslo_config import cfg
import pytest

from datera_glance import store
from tests.unit import test_store
from tests.unit.test_store import fakes  # noqa: F401 (fixture)

HEX = '0123456789abcdefABCDEF'
EXAMPLES = 2000


def _parse(uri):
    loc = store.StoreLocation({}, cfg.CONF)
    loc.parse_uri(uri)
    return loc


hexes = st.text(alphabet=HEX, min_size=1, max_size=13)
uuids = st.builds(lambda a, b, c, d, e: '-'.join((a, b, c, d, e)),
                  st.text(HEX, min_size=8, max_size=8),
                  st.text(HEX, min_size=4, max_size=4),
                  st.text(HEX, min_size=4, max_size=4),
                  st.text(HEX, min_size=4, max_size=4),
                  st.text(HEX, min_size=12, max_size=12))
hosts = st.one_of(
    st.from_regex(r'[A-Za-z0-9][A-Za-z0-9.-]{0,30}', fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: '[%s]' % ip))
ports = st.integers(min_value=1, max_value=65535)
prefixes = st.sampled_from(['OS-IMAGE-', 'OS-', ''])
valid_uris = st.builds(
    lambda h, p, prefix, i: 'datera://%s:%d/app_instances/%s%s' % (
        h, p, prefix, i), hosts, ports, prefixes, uuids)
# A valid URI with something appended, prepended or cut: mostly invalid.
noise = st.one_of(
    st.sampled_from(['\n', ' ', '\t', '\r\n', '\x0b', '\x00', '/', '?']),
    st.text(alphabet=string.printable + '\u00e9\u0663\u200b', max_size=8))
mangled_uris = st.one_of(
    st.builds(lambda u, n: u + n, valid_uris, noise),
    st.builds(lambda u, n: n + u, valid_uris, noise),
    st.builds(lambda u, k: u[:k], valid_uris, st.integers(0, 120)),
    st.text(max_size=120))


@settings(max_examples=EXAMPLES, deadline=None)
@given(valid_uris)
def test_valid_uris_parse_and_round_trip(uri):
    loc = _parse(uri)
    assert loc.get_uri() == uri
    assert _parse(loc.get_uri()).image_id == loc.image_id


@settings(max_examples=EXAMPLES, deadline=None)
@given(mangled_uris)
def test_any_uri_round_trips_or_is_bad_store_uri(uri):
    try:
        loc = _parse(uri)
    except exceptions.BadStoreUri:
        return
    # Accepted: then it is exactly what the store writes, nothing more.
    assert loc.get_uri() == uri
    assert uri == uri.strip() and '\n' not in uri


@pytest.mark.parametrize('suffix', ['\n', ' ', '\t', '\r\n', '\x00'])
def test_uri_with_trailing_whitespace_is_refused(suffix):
    uri = 'datera://edf:7718/app_instances/OS-IMAGE-%s' % (
        '6bd58dbb-6b4b-4f5e-8a1f-6b5e1b3c1f7e')
    with pytest.raises(exceptions.BadStoreUri):
        _parse(uri + suffix)


image_ids = st.one_of(
    uuids, st.builds(lambda i, n: i + n, uuids, noise),
    st.builds(lambda n, i: n + i, noise, uuids), st.text(max_size=40))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(image_id=image_ids)
def test_image_ids_are_accepted_in_full_or_refused_before_any_call(
        request, image_id):
    both = request.getfixturevalue('fakes')
    edf_client, _made = both
    s = test_store._store(both)
    del edf_client.calls[:]
    # An unknown hash algorithm is refused right after the id check:
    # either error means nothing reached the cluster.
    with pytest.raises((exceptions.Invalid,
                        exceptions.UnknownHashingAlgo)) as caught:
        s.add(image_id, None, 0, 'not-a-hash-algorithm')
    assert edf_client.calls == []
    if isinstance(caught.value, exceptions.Invalid):
        assert store._IMAGE_ID_RE.fullmatch(image_id) is None
        assert 'not a UUID' in str(caught.value)
    else:
        assert store._IMAGE_ID_RE.fullmatch(image_id)
        assert image_id == image_id.strip()
