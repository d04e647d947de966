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

"""What a Datera store holds on its cluster, for the operator tool.

Lists the store's image app instances with what their metadata says
(:mod:`datera_glance.lifecycle`), picks those a purge may remove, finds
this host's exports that no live process holds, and re-reads images to
verify them. It works through a configured :class:`datera_glance.store.
Store`, so it sees the cluster exactly as glance-api does.
"""

import dataclasses
import hashlib
import time

from glance_store import exceptions
from glance_store import location as glance_location
from oslo_log import log as logging

from datera_glance.i18n import _
from datera_glance import lifecycle

LOG = logging.getLogger(__name__)

COMPLETE = 'complete'
INCOMPLETE = 'incomplete'
DELETING = 'deleting'
UNKNOWN = 'unknown'
STATES = (COMPLETE, INCOMPLETE, DELETING, UNKNOWN)
_STATE_OF = {
    lifecycle.STATE_COMPLETE: COMPLETE,
    lifecycle.STATE_WRITING: INCOMPLETE,
    lifecycle.ABANDONED: INCOMPLETE,
    lifecycle.STATE_DELETING: DELETING,
    lifecycle.UNKNOWN: UNKNOWN,
}
# glance image states whose data the store must keep.
_GLANCE_KEEPS = ('queued', 'saving', 'active', 'deactivated', 'uploading',
                 'importing', 'pending_delete')


@dataclasses.dataclass
class ImageVolume:
    """One image's app instance and what it holds."""

    image_id: str
    state: str              # one of STATES
    detail: str             # why, in words
    in_progress: bool       # a live upload (never purged)
    removable: bool         # an abandoned upload
    size: int | None        # image bytes, when recorded
    volume_gib: int | None
    checksum: str | None
    hash_algo: str | None
    multihash: str | None
    created: float | None   # epoch seconds, from the creation marker
    last_activity: float | None
    exported_to: list
    admin_state: str | None

    def as_dict(self):
        data = dataclasses.asdict(self)
        for key in ('created', 'last_activity'):
            data[key] = iso_time(data[key])
        return data


def iso_time(epoch):
    if epoch is None:
        return None
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def describe(store, ai, metadata):
    """The :class:`ImageVolume` of an app instance and its metadata."""
    image_id = str(ai['id'])
    state = store._image_state(image_id, ai, metadata)
    si = (ai.get('storage_instances') or [{}])[0]
    volume = (si.get('volumes') or [{}])[0]
    acl = (si.get('acl_policy') or {}).get('initiators') or []
    created = lifecycle.marker_time(ai.get('descr'))
    return ImageVolume(
        image_id=image_id,
        state=_STATE_OF[state.state],
        detail=state.reason,
        in_progress=state.state == lifecycle.STATE_WRITING,
        removable=state.removable,
        size=_int(metadata.get('length')),
        volume_gib=_int(volume.get('size')),
        checksum=metadata.get('checksum') or None,
        hash_algo=metadata.get('hash_algo') or None,
        multihash=metadata.get('multihash') or None,
        created=created,
        last_activity=state.last_activity or created,
        exported_to=[(i.get('path') if isinstance(i, dict) else i)
                     .rsplit('/', 1)[-1] for i in acl],
        admin_state=ai.get('admin_state'))


def image_volumes(store):
    """Every image app instance of the store's tenant, oldest first."""
    found = []
    for ai in store.client.list_image_volumes():
        try:
            metadata = store.client.get_image_metadata(str(ai['id']))
        except exceptions.NotFound:
            continue    # deleted meanwhile
        found.append(describe(store, ai, metadata))
    return sorted(found, key=lambda v: (v.created or 0, v.image_id))


def purge_candidates(volumes, older_than, glance_images=None, now=None):
    """What a purge removes, with the reason for each.

    :param older_than: seconds without activity before an incomplete
        upload (or a deleted image still held by a vanished reader) goes
    :param glance_images: {image id: glance status} from glance's
        database, or None to skip looking for orphans
    :returns: [(ImageVolume, reason)]
    """
    now = time.time() if now is None else now
    picked = []
    for volume in volumes:
        idle = now - (volume.last_activity or 0)
        if volume.in_progress:
            continue    # a live writer: never
        if volume.removable and idle >= older_than:
            picked.append((volume, _('incomplete upload, %s') %
                           volume.detail))
        elif volume.state == DELETING and idle >= older_than:
            picked.append((volume, _('deleted by glance, still held by '
                                     '%s') % (', '.join(volume.exported_to)
                                              or _('nobody'))))
        elif (glance_images is not None and volume.state == COMPLETE and
              glance_images.get(volume.image_id) not in _GLANCE_KEEPS):
            status = glance_images.get(volume.image_id)
            picked.append((volume, _('orphan: glance has no image %s') %
                           volume.image_id if status is None else
                           _('orphan: glance image is %s') % status))
    return picked


def remove(store, volume):
    """Take an app instance offline and delete it."""
    with store.client.operation():
        store.client.delete_image_volume(volume.image_id, force=True)


def stale_exports(store, volumes):
    """This host's ACL entries that no live process of this host holds.

    :returns: the ImageVolumes exported to this host without a holder
    """
    iqn = store.attacher.initiator_iqn
    return [v for v in volumes
            if iqn in v.exported_to and not store.attacher.holders(
                v.image_id)]


def release(store, image_id):
    """Release this host's export of an image; True when all of it went."""
    store.attacher.release_stale(image_id)
    return not store.attacher.holders(image_id)


def verify(store, volume, progress=None):
    """Re-read a complete image and compare its checksums.

    :param progress: called with the number of bytes of each chunk read
    :returns: (True, detail) when md5 (and the multihash, when recorded)
        match, else (False, detail)
    """
    loc = glance_location.Location(
        'datera', type(store._location(volume.image_id)), store.conf,
        uri=store._location(volume.image_id).get_uri(),
        image_id=volume.image_id, backend=store.backend_group)
    multihash = None
    if volume.hash_algo and volume.multihash:
        try:
            multihash = hashlib.new(volume.hash_algo)
        except ValueError:
            multihash = None
    md5 = hashlib.md5()
    try:
        chunks, size = store.get(loc)
        for chunk in chunks:
            md5.update(chunk)
            if multihash is not None:
                multihash.update(chunk)
            if progress is not None:
                progress(len(chunk))
    except (exceptions.BackendException,
            exceptions.GlanceStoreException) as e:
        return False, str(e)
    if volume.checksum and md5.hexdigest() != volume.checksum:
        return False, _('md5 %(got)s, recorded %(want)s') % {
            'got': md5.hexdigest(), 'want': volume.checksum}
    if multihash is not None and multihash.hexdigest() != volume.multihash:
        return False, _('%(algo)s differs from the recorded multihash') % {
            'algo': volume.hash_algo}
    checked = [_('md5')] + ([volume.hash_algo] if multihash else [])
    return True, _('%(n)d bytes, %(what)s match') % {
        'n': size, 'what': ' and '.join(checked)}
