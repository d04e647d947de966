"""A simulated Datera EDF cluster for tests, demos and benchmarks.

``models`` holds the control plane's state and rules, ``app`` serves it as
the v2.1/v2.2 REST API, ``schemas`` and ``apidoc`` describe that API.
"""
