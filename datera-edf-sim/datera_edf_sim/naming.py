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

"""The names a host sees a simulated volume by.

The simulator imports nothing of the driver it serves; these names are the
driver's own (``datera_glance.names``) and tests/unit/test_names.py pins
the two definitions together, IPv4 and IPv6.
"""

from oslo_utils import netutils

#: Datera's iSCSI port.
ISCSI_PORT = 3260


def uri_host(host):
    """A host as a URL writes it: IPv6 literals in brackets."""
    return netutils.escape_ipv6(host.strip('[]'))


def portal(ip, port=ISCSI_PORT):
    """``10.0.0.5:3260``, ``[fd00::1]:3260``: as os-brick and iscsiadm."""
    return '%s:%d' % (uri_host(ip), port)


def export_link_name(ip, target_iqn, lun=0, port=ISCSI_PORT):
    """The /dev/disk/by-path name of a LUN seen through one portal."""
    return 'ip-%s-iscsi-%s-lun-%d' % (portal(ip, port), target_iqn, lun)
