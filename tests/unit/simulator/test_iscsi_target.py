"""The iSCSI target backend's pure parts: tgtadm output, names, options.

The tgt side itself (a real tgtd) is tested in
tests/functional/simulator/test_iscsi_target.py.
"""

import random

import pytest

from datera_edf_sim import cli
from datera_edf_sim import dataplane
from datera_edf_sim import fixture
from datera_edf_sim import iscsi_target

HOST1 = 'iqn.1993-08.org.debian:01:host1'
HOST2 = 'iqn.1993-08.org.debian:01:host2'
IQN1 = 'iqn.2013-05.com.daterainc:tc:01:sn:e4e52bab61dc095d'
IQN2 = 'iqn.2013-05.com.daterainc:tc:01:sn:2a98c50b2d5e510a'
VOLUMES = '/var/lib/edf-sim/volumes/'
VOL1 = VOLUMES + 'ec8834ff-2dbf-4d14-8426-3a023b55c837.img'
VOL2 = VOLUMES + '49912174-cfdd-4586-bfcb-dd3a691566f8.img'

# ``tgtadm --lld iscsi --op show --mode target`` of tgt 1.0.85 (Debian 12)
# behind a simulator: two exported app instances, HOST1 logged in to the
# first. Only the volume files' folder was renamed (the paths are put in
# by format(), for line length) and trailing blanks dropped.
SHOW_TARGETS = """\
Target 1: iqn.2013-05.com.daterainc:tc:01:sn:e4e52bab61dc095d
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 1
            Initiator: iqn.1993-08.org.debian:01:host1 alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 2147 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: {vol1}
            Backing store flags:
    Account information:
    ACL information:
        iqn.1993-08.org.debian:01:host1
        iqn.1993-08.org.debian:01:host2
Target 2: iqn.2013-05.com.daterainc:tc:01:sn:2a98c50b2d5e510a
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00020000
            SCSI SN: beaf20
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags:
        LUN: 1
            Type: disk
            SCSI ID: IET     00020001
            SCSI SN: beaf21
            Size: 1074 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: {vol2}
            Backing store flags:
    Account information:
    ACL information:
        iqn.1993-08.org.debian:01:host2
""".format(vol1=VOL1, vol2=VOL2)

SHOW_PORTALS = """\
Portal: [::1]:3260,1
Portal: 127.122.89.2:3260,1
Portal: 127.122.89.1:3260,1
"""


def test_show_targets_is_parsed_per_target_iqn():
    targets = iscsi_target.parse_show_targets(SHOW_TARGETS)
    assert sorted(targets) == sorted([IQN1, IQN2])
    first = targets[IQN1]
    assert first['tid'] == 1
    assert first['state'] == 'ready'
    assert first['backing'] == VOL1
    assert first['lun_size_mb'] == 2147
    assert first['acl'] == [HOST1, HOST2]
    assert first['sessions'] == [{
        'sid': 1, 'initiator': HOST1,
        'connections': [{'cid': 0, 'ip': '127.0.0.1'}]}]
    second = targets[IQN2]
    assert second['tid'] == 2
    assert second['lun_size_mb'] == 1074
    assert second['backing'] == VOL2
    assert second['acl'] == [HOST2]
    assert second['sessions'] == []


def test_lun_0_is_the_controller_and_lun_1_the_volume():
    luns = iscsi_target.parse_show_targets(SHOW_TARGETS)[IQN1]['luns']
    assert luns[0] == {'type': 'controller', 'size_mb': 0, 'block_size': 1,
                       'online': True, 'backing': None}
    assert luns[iscsi_target.VOLUME_LUN] == {
        'type': 'disk', 'size_mb': 2147, 'block_size': 512, 'online': True,
        'backing': VOL1}


def test_nothing_shown_is_no_target():
    assert iscsi_target.parse_show_targets('') == {}


def test_a_target_without_its_volume_lun_has_no_backing():
    text = SHOW_TARGETS.split('        LUN: 1')[0]
    target = iscsi_target.parse_show_targets(text)[IQN1]
    assert list(target['luns']) == [0]
    assert target['backing'] is None
    assert target['lun_size_mb'] is None


def test_show_portals_gives_portal_names():
    assert iscsi_target.parse_show_portals(SHOW_PORTALS) == [
        '[::1]:3260', '127.122.89.2:3260', '127.122.89.1:3260']


def test_portal_names_bracket_ipv6():
    assert iscsi_target.portal_name('127.0.0.1') == '127.0.0.1:3260'
    assert iscsi_target.portal_name('::1', 3261) == '[::1]:3261'


def test_loopback_ips_share_a_random_prefix():
    # Port 0: binding port 3260 would need root.
    ips = iscsi_target.pick_loopback_ips(2, port=0, rng=random.Random(7))
    [one, two] = ips
    prefix = one.rsplit('.', 1)[0]
    assert one == prefix + '.1' and two == prefix + '.2'
    assert prefix.startswith('127.') and not prefix.startswith('127.0.')
    assert ips != iscsi_target.pick_loopback_ips(2, port=0,
                                                 rng=random.Random(8))


def test_tgt_errors_are_data_plane_errors():
    assert issubclass(iscsi_target.TgtError, dataplane.DataPlaneError)


def test_a_target_that_was_not_started_refuses_changes():
    target = iscsi_target.TgtTarget(['127.0.0.1'])
    with pytest.raises(iscsi_target.TgtError, match='not started'):
        target.sync('si', IQN1, '/x.img', [HOST1])
    target.remove('si')  # nothing to remove
    target.refresh('/x.img')  # nothing backed by it
    assert target.info() == {'control_port': None,
                             'portals': ['127.0.0.1:3260'], 'pid': None}
    target.close()
    target.close()
    with pytest.raises(iscsi_target.TgtError, match='stopped'):
        target.sync('si', IQN1, '/x.img', [HOST1])


def test_no_portal_is_refused():
    with pytest.raises(iscsi_target.TgtError, match='at least one portal'):
        iscsi_target.TgtTarget([])


# The serve option

def _serve(*extra):
    return cli.build_parser().parse_args(
        ['serve', '--data-dir', '/nonexistent'] + list(extra))


def test_iscsi_target_is_off_by_default():
    assert _serve().iscsi_target is False


@pytest.mark.parametrize('args, expected', [
    (['--iscsi-target'], True),
    (['--iscsi-target', 'True'], True),
    (['--iscsi-target', 'yes'], True),
    (['--iscsi-target', 'False'], False),
    (['--iscsi-target', 'no'], False),
    (['--iscsi-target', '--data-ips', '127.9.9.1'], True),
])
def test_iscsi_target_takes_an_optional_yes_or_no(args, expected):
    assert _serve(*args).iscsi_target is expected


def test_iscsi_target_refuses_other_values(capsys):
    with pytest.raises(SystemExit):
        _serve('--iscsi-target', 'maybe')
    assert 'maybe is not yes or no' in capsys.readouterr().err


@pytest.mark.parametrize('value', [True, False])
def test_the_fixture_passes_the_option_as_serve_reads_it(value):
    command = fixture.SimulatorProcess('/nonexistent',
                                       iscsi_target=value).command()
    assert command[3] == 'serve'
    assert cli.build_parser().parse_args(
        command[3:]).iscsi_target is value
