"""Helpers to run the real programs around the driver.

:mod:`datera_glance.testing.glance_api` runs a real glance-api (glance from
PyPI, served by gunicorn, SQLite, no keystone) in a private folder, for the
end-to-end tests and for ``make demo``. Nothing here is imported by the
driver itself.
"""
