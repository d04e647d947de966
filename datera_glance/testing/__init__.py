"""Helpers to run the driver with the real programs around it.

* :mod:`datera_glance.testing.glance_api` runs a real glance-api (glance
  from PyPI, served by gunicorn, SQLite, no keystone) in a private folder,
  for the end-to-end tests and ``make demo``; :mod:`~.noauth`,
  :mod:`~.wsgi` and :mod:`~.gunicorn_conf` are its pieces.
* :mod:`datera_glance.testing.stores` configures the store against a
  simulator inside the calling process, for the functional tests and the
  benchmarks.

Nothing here is imported by the driver itself.
"""
