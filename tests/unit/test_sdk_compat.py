import collections
import warnings

from datera_glance import sdk_compat


def test_sdk_imports_and_exposes_api_entry_point():
    assert callable(sdk_compat.dfs_sdk.get_api)
    assert issubclass(sdk_compat.exceptions.ApiNotFoundError, Exception)


def test_collections_alias_is_removed_after_import():
    assert not hasattr(collections, 'Mapping')


def test_urllib3_warnings_are_not_silenced_for_the_process():
    import urllib3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('default')
        warnings.warn('probe', urllib3.exceptions.InsecureRequestWarning)
    assert [w.category for w in caught] == [
        urllib3.exceptions.InsecureRequestWarning]
