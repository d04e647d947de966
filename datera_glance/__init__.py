"""OpenStack Glance image store driver for Datera EDF storage."""
