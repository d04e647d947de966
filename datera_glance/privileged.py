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

"""The store's own privileged step: access to the disk it attached.

A glance-api that does not run as root cannot open the root-owned disk
os-brick attached. A generic ``chown <uid> /dev/sdX`` rootwrap rule would
let the glance user own any disk of the host, its system disk included
(root-equivalent). Instead, this privsep context changes the owner of one
kind of device only: a Datera iSCSI disk, named by its
``/dev/disk/by-path`` link (whose name carries the Datera target IQN), or
a multipath device built only from such disks. Nothing else can be given
away through it, whatever the caller asks.
"""

import os
import re
import stat

from oslo_privsep import capabilities
from oslo_privsep import priv_context

from datera_glance.i18n import _

device_access = priv_context.PrivContext(
    'datera_glance',
    cfg_section='datera_glance_privileged',
    pypath=__name__ + '.device_access',
    capabilities=[capabilities.CAP_CHOWN, capabilities.CAP_DAC_READ_SEARCH],
)

BY_PATH = '/dev/disk/by-path'
# udev's name for an iSCSI LUN of a Datera target (iqn.2013-05.com.daterainc)
_DATERA_LINK = re.compile(
    r'ip-[0-9A-Za-z.:\[\]-]+:3260-iscsi-iqn\.2013-05\.com\.daterainc:'
    r'[A-Za-z0-9.:-]+-lun-[0-9]+')
_DISK = re.compile(r'/dev/sd[a-z]+')
_MULTIPATH = re.compile(r'/dev/dm-[0-9]+')


class NotADateraDisk(PermissionError):
    """The path is not a Datera iSCSI disk of this host."""


def _datera_disks(by_path):
    """{/dev/sdX: link} of the Datera iSCSI disks attached to this host."""
    disks = {}
    try:
        names = os.listdir(by_path)
    except FileNotFoundError:
        return disks
    for name in names:
        if _DATERA_LINK.fullmatch(name):
            real = os.path.realpath(os.path.join(by_path, name))
            if _DISK.fullmatch(real):
                disks[real] = name
    return disks


def checked_device(path, by_path=None):
    """The block device behind ``path``, if it is a Datera iSCSI disk.

    :param path: a by-path link of a Datera LUN, or a multipath device
        (``/dev/dm-N``, ``/dev/mapper/<name>``) of such disks only
    :raises NotADateraDisk: for anything else
    """
    path = os.path.abspath(path)
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except OSError:
        mode = 0
    if not stat.S_ISBLK(mode):
        raise NotADateraDisk(_('%s is not a block device') % path)
    disks = _datera_disks(by_path or BY_PATH)
    if _DISK.fullmatch(real) and real in disks:
        return real
    if _MULTIPATH.fullmatch(real):
        slaves_dir = '/sys/block/%s/slaves' % os.path.basename(real)
        try:
            slaves = ['/dev/' + s for s in os.listdir(slaves_dir)]
        except OSError:
            slaves = []
        if slaves and all(s in disks for s in slaves):
            return real
    raise NotADateraDisk(_('%s is not a Datera iSCSI disk of this host')
                         % path)


@device_access.entrypoint
def own_device(path, uid):
    """Give the Datera disk behind ``path`` to ``uid``; its real path."""
    real = checked_device(path)
    os.chown(real, int(uid), -1)
    return real


@device_access.entrypoint
def return_device(path):
    """Give the Datera disk behind ``path`` back to root."""
    real = checked_device(path)
    os.chown(real, 0, -1)
    return real
