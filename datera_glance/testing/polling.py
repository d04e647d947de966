"""Waiting on a condition, for tests: poll it with a deadline."""

import time


def wait_for(predicate, timeout=30, interval=0.05, message='condition'):
    """Poll ``predicate`` until it returns a true value; return that value.

    :raises AssertionError: naming ``message`` when ``timeout`` seconds
        pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('%s not reached within %ss'
                                 % (message, timeout))
        time.sleep(interval)
