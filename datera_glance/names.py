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

"""Names the driver and the EDF simulator must agree on.

Kept apart, with nothing but the standard library and oslo.utils, so that
both import the one definition.
"""

from oslo_utils import netutils

#: Datera's default iSCSI port; the driver and cinder's use nothing else.
ISCSI_PORT = 3260


def uri_host(host):
    """A host as a URL or URI writes it: IPv6 literals in brackets."""
    return netutils.escape_ipv6(host.strip('[]'))


def portal(ip, port=ISCSI_PORT):
    """The iSCSI portal of a data IP: ``10.0.0.5:3260``, ``[fd00::1]:3260``.

    As os-brick and iscsiadm write portals: IPv6 literals in brackets.
    """
    return '%s:%d' % (uri_host(ip), port)


def export_link_name(ip, target_iqn, lun=0, port=ISCSI_PORT):
    """The /dev/disk/by-path name of a LUN seen through one portal.

    ``ip-<portal>-iscsi-<target iqn>-lun-<lun>``, the name udev gives the
    disk of an iSCSI session and os-brick looks for, with the portal as
    :func:`portal` writes it: ``ip-[fd00::1]:3260-iscsi-...`` for IPv6.
    The simulator names its export links with it, and the driver's local
    transport finds them with it.
    """
    return 'ip-%s-iscsi-%s-lun-%d' % (portal(ip, port), target_iqn, lun)
