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

"""Upstream patch series for glance_store and glance, built from this tree.

``make upstream`` (``python -m tools.upstream generate``) writes

- ``build/upstream/glance_store/*.patch``: the Datera store in-tree in
  the glance_store release pinned in constraints.txt, generated from
  ``datera_glance`` on every run (:mod:`.driver`), registered, tested in
  glance_store's own style and documented (:mod:`.glance_store_series`);
- ``build/upstream/glance/*.patch``: the fix of ``GET
  /v2/info/stores/detail`` for store types outside glance's fixed map
  (:mod:`.glance_series`).

``make upstream-check`` (``python -m tools.upstream check``) applies each
series with ``git am`` to a fresh unpack of the pinned sdist and runs the
projects' own runners (stestr) and flake8 configurations on what the
series adds and touches (:mod:`.check`).

Modules:

- :mod:`.transform`: pure source transformations (import rewriting,
  checked edits, import regrouping, unused-import removal);
- :mod:`.driver`: what of ``datera_glance`` goes in-tree, and how;
- :mod:`.sdist`: the pinned sdists, cached, unpacked and committed as
  a git baseline;
- :mod:`.glance_store_series` and :mod:`.glance_series`: the commits;
- :mod:`.series`: the commits made on a fresh tree and written out with
  ``git format-patch``;
- :mod:`.check`: the check.

``templates/glance_store/`` holds the files the glance_store series adds
as they are (its unit tests), ``templates/glance_store_docs/`` its user
guide page (whose option table is generated) and release note. The
repository README's "Upstream" section says what the series contains and
how the in-tree driver differs from this package.
"""
