#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The one place that imports Datera's Python SDK (dfs_sdk).

dfs_sdk 1.2.27 subclasses ``collections.Mapping``, which Python 3.10
removed, so it does not import as released. The alias it needs is put in
place only for the duration of the import and removed afterwards, so the
rest of the process never sees a patched ``collections``.

Importing dfs_sdk also calls ``urllib3.disable_warnings()`` for the whole
process; the warning filters are restored here so that an unverified TLS
connection still warns everyone else.

Every other module gets the SDK from here::

    from datera_glance.sdk_compat import dfs_sdk
"""

import collections
import collections.abc
import threading
import warnings

_IMPORT_LOCK = threading.Lock()


def _import_dfs_sdk():
    with _IMPORT_LOCK:
        added = not hasattr(collections, 'Mapping')
        if added:
            collections.Mapping = collections.abc.Mapping
        saved_filters = list(warnings.filters)
        try:
            import dfs_sdk as sdk
            # Load the submodules the project uses while the alias exists.
            from dfs_sdk import api  # noqa: F401
            from dfs_sdk import base  # noqa: F401
            from dfs_sdk import connection  # noqa: F401
            from dfs_sdk import exceptions  # noqa: F401
        finally:
            warnings.filters[:] = saved_filters
            # Tell the warnings module its filter list changed.
            getattr(warnings, '_filters_mutated', lambda: None)()
            if added:
                del collections.Mapping
        return sdk


dfs_sdk = _import_dfs_sdk()
exceptions = dfs_sdk.exceptions
connection = dfs_sdk.connection
