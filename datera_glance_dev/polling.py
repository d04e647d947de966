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
