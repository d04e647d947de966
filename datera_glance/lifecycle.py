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

"""What an image's app instance holds: a complete image, an upload in
progress, an image being deleted, or what a failed upload left behind.

The store records an upload's life in the app instance's metadata (a map
of strings) and in its description:

- the description is the creation marker ``glance image upload <token>
  <epoch>``, written by the create call itself, so an app instance that
  never got metadata (its create was answered too late, or the uploader
  died right after it) is still known to be this store's, and how old it
  is;
- ``upload_state`` is ``writing`` from before the first byte until the
  image is complete, then ``complete``; ``deleting`` once glance deleted
  the image while some host still reads it;
- while writing, ``upload_host`` (the writer's initiator name),
  ``upload_pid``, ``upload_boot`` (the host's boot id), ``upload_token``
  and ``upload_heartbeat`` (epoch seconds, renewed while data flows) say
  who writes and when it last showed life.

From these, :func:`classify` tells an abandoned upload (safe to remove
and to upload again) from a live one or a complete image (never removed
on the way to a new upload). Images written by the original Datera
driver have ``checksum`` and ``length`` but no ``upload_state``: they are
complete.
"""

import dataclasses
import os
import threading
import time
import uuid

from datera_glance.i18n import _

TYPE_IMAGE = 'image'
STATE_WRITING = 'writing'
STATE_COMPLETE = 'complete'
STATE_DELETING = 'deleting'

# Metadata key of a complete image's chunk digests (stream.ChunkDigests).
CHUNK_DIGESTS = 'chunk_digests'

# What classify() answers, besides the three recorded states.
ABANDONED = 'abandoned'
UNKNOWN = 'unknown'

MARKER_PREFIX = 'glance image upload'
# A writer renews its heartbeat at least this often while data flows...
HEARTBEAT_INTERVAL = 60.0
# ... and another host takes its upload for abandoned after this long
# without one. On the writer's own host a dead process is seen at once.
WRITER_LEASE = 10 * HEARTBEAT_INTERVAL

_BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id'
_boot_id = None
_live_tokens = set()
_live_lock = threading.Lock()


def creation_marker(now=None):
    """A new creation marker: unique, and dated."""
    return '%s %s %d' % (MARKER_PREFIX, uuid.uuid4().hex,
                         int(time.time() if now is None else now))


def marker_time(descr):
    """Epoch seconds of a creation marker; None if not one of ours."""
    if not isinstance(descr, str) or not descr.startswith(MARKER_PREFIX):
        return None
    try:
        return int(descr.rsplit(' ', 1)[1])
    except (IndexError, ValueError):
        return None


def boot_id():
    """This host's boot id ('' where the kernel does not tell)."""
    global _boot_id
    if _boot_id is None:
        try:
            with open(_BOOT_ID_FILE) as f:
                _boot_id = f.read().strip()
        except OSError:
            _boot_id = ''
    return _boot_id


def pid_alive(pid):
    """Whether a process of this host runs under ``pid``."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, TypeError, OverflowError):
        return False
    except ProcessLookupError:
        return False
    except PermissionError:
        return True     # another user's process
    return True


class LiveUpload:
    """An upload this process is running, known by its token.

    A writer that failed stays in its process, so its pid alone cannot
    tell a live upload from an abandoned one: the token can.
    """

    def __init__(self):
        self.token = uuid.uuid4().hex

    def __enter__(self):
        with _live_lock:
            _live_tokens.add(self.token)
        return self

    def __exit__(self, *exc):
        with _live_lock:
            _live_tokens.discard(self.token)


def writer_metadata(host, token, now=None):
    """The metadata an upload records before its first byte."""
    return {
        'type': TYPE_IMAGE,
        'upload_state': STATE_WRITING,
        'upload_host': host,
        'upload_pid': str(os.getpid()),
        'upload_boot': boot_id(),
        'upload_token': token,
        'upload_heartbeat': '%d' % (time.time() if now is None else now),
    }


def heartbeat_metadata(now=None):
    return {'upload_heartbeat': '%d' % (time.time() if now is None
                                        else now)}


@dataclasses.dataclass(frozen=True)
class ImageState:
    """What an app instance holds and why we think so.

    ``last_activity`` is when it last changed (epoch seconds), None when
    unknown.
    """

    state: str
    reason: str
    last_activity: float | None = None

    @property
    def removable(self):
        """Whether a new upload or a purge may remove it."""
        return self.state == ABANDONED


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _writer_alive(metadata, local_host, now):
    host = metadata.get('upload_host')
    heartbeat = _float(metadata.get('upload_heartbeat'))
    if host and host == local_host and (
            metadata.get('upload_boot') == boot_id() != ''):
        pid = metadata.get('upload_pid')
        if str(pid) == str(os.getpid()):
            with _live_lock:
                alive = metadata.get('upload_token') in _live_tokens
            return alive, (_('upload of this process') if alive else
                           _('upload of this process that ended'))
        if pid_alive(pid):
            return True, _('writer process %s on this host') % pid
        return False, _('writer process %s on this host is gone') % pid
    if heartbeat is not None and now - heartbeat < WRITER_LEASE:
        return True, _('writer %s showed life %ds ago') % (
            host, now - heartbeat)
    return False, _('writer %(host)s silent for more than %(lease)ds') % {
        'host': host, 'lease': WRITER_LEASE}


def classify(metadata, descr, local_host, creation_grace,
             abandoned_markers=(), now=None):
    """The :class:`ImageState` of an image's app instance.

    :param metadata: the app instance's metadata
    :param descr: its description (the creation marker, if ours)
    :param local_host: this host's initiator name
    :param creation_grace: seconds after which an app instance of ours
        without metadata is abandoned (its creator would have written
        metadata or given up by then)
    :param abandoned_markers: markers of creates this process gave up on
    """
    now = time.time() if now is None else now
    state = metadata.get('upload_state')
    heartbeat = _float(metadata.get('upload_heartbeat'))
    if state == STATE_COMPLETE or (
            state is None and ('length' in metadata or
                               'checksum' in metadata)):
        return ImageState(STATE_COMPLETE, _('complete image'))
    if state == STATE_DELETING:
        return ImageState(STATE_DELETING,
                          _('deleted, waiting for its readers'),
                          _float(metadata.get('deleting_since')))
    if state == STATE_WRITING:
        alive, reason = _writer_alive(metadata, local_host, now)
        return ImageState(STATE_WRITING if alive else ABANDONED, reason,
                          heartbeat)
    created = marker_time(descr)
    if state is None and created is not None:
        if descr in abandoned_markers:
            return ImageState(ABANDONED, _('its create was given up'),
                              created)
        if now - created > creation_grace:
            return ImageState(ABANDONED, _('created but never written'),
                              created)
        return ImageState(STATE_WRITING, _('being created'), created)
    return ImageState(UNKNOWN, _('no upload state recorded (upload_state '
                                 '%s)') % state)
