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

"""Clones: app instances created as copies of what exists.

The source is another app instance (``clone_src``), a volume
(``clone_volume_src``) or a volume snapshot (``clone_snapshot_src``), of
the same tenant.
"""

import re

from datera_edf_sim import exceptions
from datera_edf_sim.models import snapshots

# App instance creation may copy one of these, named by its path; the new
# app instance then gets storage instances and volumes like the source's.
CLONE_SOURCES = ('clone_src', 'clone_volume_src', 'clone_snapshot_src')
# A clone of one volume (or snapshot) gets one storage instance holding
# one volume, named as the cluster names them (and OpenStack's drivers
# name their own).
CLONE_SI_NAME = 'storage-1'
CLONE_VOLUME_NAME = 'volume-1'
_AI_REF = r'^/app_instances/(?P<ai>[^/]+)'
_VOLUME_REF = (_AI_REF + r'/storage_instances/(?P<si>[^/]+)'
               r'/volumes/(?P<vol>[^/]+)')
_CLONE_REF_RES = {
    'clone_src': re.compile(_AI_REF + '$'),
    'clone_volume_src': re.compile(_VOLUME_REF + '$'),
    'clone_snapshot_src': re.compile(_VOLUME_REF +
                                     r'/snapshots/(?P<ts>[^/]+)$'),
}
# What the cluster's schema says of each clone source's path.
_CLONE_REF_HELP = {
    'clone_src': 'Must be a valid path to an app instance',
    'clone_volume_src': 'Must be a valid path to a volume',
    'clone_snapshot_src': 'Must be a valid path to a snapshot',
}


class ClonesMixin(object):
    """The storage of an app instance created as a clone."""

    def _add_clone_storage(self, db, doc, clone_key, path):
        """Give a new app instance storage like its clone source's.

        :returns: ``[(volume_uuid, size, copy_of)]``, ``copy_of`` being
            ``('volume', uuid)`` or ``('snapshot', id)``.
        """
        fills = []
        for si_name, volumes in self._clone_layout(db, doc['tenant'],
                                                   clone_key, path):
            si = self._new_si(si_name, doc['access_control_mode'])
            for vol_name, src_vol, size, copy_of in volumes:
                vol = self._new_volume(vol_name, size,
                                       src_vol['replica_count'],
                                       src_vol['placement_mode'])
                si['volumes'].append(vol)
                fills.append((vol['uuid'], size, copy_of))
            doc['storage_instances'].append(si)
        return fills

    def _clone_layout(self, db, tenant, clone_key, path):
        """The storage a clone gets, and what each volume copies.

        :returns: ``[(si_name, [(volume_name, source_volume, size,
            copy_of)])]``.
        """
        if clone_key == 'clone_src':
            source = self._clone_source(db, tenant, clone_key, path)
            return [(si['name'], [(vol['name'], vol, vol['size'],
                                   ('volume', vol['uuid']))
                                  for vol in si['volumes']])
                    for si in source['storage_instances']]
        _si, vol, snap = self._clone_source(db, tenant, clone_key, path)
        if snap is None:
            copied = (vol, vol['size'], ('volume', vol['uuid']))
        else:
            # The volume as it was: a later grow is not in the snapshot.
            copied = (vol, snap['size'], ('snapshot', snap['data_id']))
        return [(CLONE_SI_NAME, [(CLONE_VOLUME_NAME,) + copied])]

    def _clone_source(self, db, tenant, clone_key, path):
        """What a clone source path names in the tenant.

        :returns: the app instance's stored form for ``clone_src``, else
            ``(si, volume, snapshot or None)``.
        :raises Invalid: the path names nothing of its kind there (in the
            cluster's words).
        :raises Conflict: the snapshot is still being created.
        """
        match = _CLONE_REF_RES[clone_key].match(path)
        try:
            if not match:
                raise exceptions.NotFound(path)
            source = self._load_ai(db, tenant, match.group('ai'))
            if clone_key == 'clone_src':
                return source
            si = self._find_si(source, match.group('si'))
            vol = self._find_volume(source, si, match.group('vol'))
            snap = (self._find_snapshot(source, si, vol, match.group('ts'))
                    if clone_key == 'clone_snapshot_src' else None)
        except exceptions.NotFound:
            raise exceptions.Invalid(
                'Validation failed for %s: %s; %s does not exist '
                'in tenant %s' % (clone_key,
                                  _CLONE_REF_HELP[clone_key],
                                  path, tenant))
        if snap is not None and snap['ready_at'] > self.clock():
            raise exceptions.Conflict(
                'Snapshot %s is still %s; clone it once it is '
                '%s' % (path, snapshots.SNAPSHOT_CREATING,
                        snapshots.SNAPSHOT_AVAILABLE))
        return si, vol, snap


def source_key(body):
    """Which clone source a create body names (None: a plain create)."""
    given = [key for key in CLONE_SOURCES if key in body]
    if len(given) > 1:
        raise exceptions.Invalid(
            'Only one of %s may be given' % ', '.join(given))
    if given and 'storage_instances' in body:
        raise exceptions.Invalid(
            '%s cannot be combined with storage_instances' % given[0])
    return given[0] if given else None
