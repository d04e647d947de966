"""The names the driver and the simulator must agree on, pinned.

The simulator imports nothing of the driver: its own definitions
(datera_edf_sim.naming) must give the driver's (datera_glance.names).
"""

import pytest

from datera_edf_sim import dataplane
from datera_edf_sim import iscsi_target
from datera_edf_sim import naming
from datera_glance import attach
from datera_glance import names

IQN = 'iqn.2013-05.com.daterainc:tc:01:sn:a1b2c3d4e5f60708'


@pytest.mark.parametrize('ip,name', [
    ('172.28.41.43', 'ip-172.28.41.43:3260-iscsi-%s-lun-0' % IQN),
    # as udev names the disk of an IPv6 session, and os-brick looks for it
    ('fd00::1', 'ip-[fd00::1]:3260-iscsi-%s-lun-0' % IQN),
    ('[fd00::1]', 'ip-[fd00::1]:3260-iscsi-%s-lun-0' % IQN),
])
def test_export_link_name_follows_by_path_naming(ip, name):
    assert names.export_link_name(ip, IQN) == name
    # the simulator names its links so, and the driver looks for them so
    assert naming.export_link_name(ip, IQN) == name
    assert dataplane.export_link_name(ip, IQN) == name
    assert attach.local_device_path('/srv/x', 'iqn.host', ip, IQN) == (
        '/srv/x/iqn.host/' + name)


@pytest.mark.parametrize('ip,portal', [
    ('10.0.0.5', '10.0.0.5:3260'), ('fd00::1', '[fd00::1]:3260'),
    ('[fd00::1]', '[fd00::1]:3260')])
def test_portals_bracket_ipv6(ip, portal):
    assert names.portal(ip) == portal
    assert naming.portal(ip) == portal
    assert names.uri_host(ip) == naming.uri_host(ip) == portal[:-5]
    assert attach.portal(ip) == portal
    assert iscsi_target.portal_name(ip) == portal
