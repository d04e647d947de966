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

"""gunicorn settings for the test glance-api (``-c python:<this module>``).

When ``DATERA_GLANCE_STOP_WITH_PARENT`` is set, gunicorn's master watches
its standard input, a pipe from the process that started it: when that
process dies, however abruptly, the pipe closes and glance-api stops at
once instead of lingering as an orphan holding ports and volumes.
"""

import os
import signal

from datera_edf_sim import parent

WATCH_VARIABLE = 'DATERA_GLANCE_STOP_WITH_PARENT'


def when_ready(server):
    """gunicorn hook: runs in the master once it listens."""
    if os.environ.get(WATCH_VARIABLE):
        # gunicorn's quick shutdown.
        parent.stop_when_stdin_closes(signal.SIGQUIT)
