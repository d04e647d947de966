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

"""Helpers to run the driver with the real programs around it.

* :mod:`datera_glance_dev.glance_api` runs a real glance-api (glance
  from PyPI, served by gunicorn, SQLite, no keystone) in a private folder,
  for the end-to-end tests and ``make demo``; :mod:`~.noauth`,
  :mod:`~.wsgi` and :mod:`~.gunicorn_conf` are its pieces.
* :mod:`datera_glance_dev.stores` configures the store against a
  simulator inside the calling process, for the functional tests and the
  benchmarks.

Nothing here is imported by the driver itself.
"""
