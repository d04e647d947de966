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

"""Stop with the parent: a service started by a test ends when it does.

A test runner killed outright cannot stop what it started; the pipe it
held open as the child's stdin closes with it, and the child, watching
for that, signals itself to stop (and frees its loop devices) instead of
living on as an orphan. The simulator (``serve --watch-stdin``) and the
test harness's glance-api (its gunicorn master) both use it.
"""

import logging
import os
import signal
import sys
import threading

LOG = logging.getLogger(__name__)


def _wait_for_eof_then(signum):
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except OSError:
        pass
    LOG.info('stdin closed: stopping')
    os.kill(os.getpid(), signum)


def stop_when_stdin_closes(signum=signal.SIGTERM):
    """Send ``signum`` to this process once stdin reaches end of file."""
    threading.Thread(target=_wait_for_eof_then, args=(signum,),
                     name='stop-with-parent', daemon=True).start()
