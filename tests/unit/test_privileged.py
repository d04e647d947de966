"""The store's privileged step gives away Datera iSCSI disks only.

Device nodes and by-path links are made in a temporary folder standing
for /dev (mknod needs root, as CI has); the checks run exactly as in the
privsep daemon, the chown included, here in-process.
"""

import os
import re
import stat

import pytest

from datera_glance import privileged

DATERA = ('ip-10.0.0.1:3260-iscsi-iqn.2013-05.com.daterainc:tc:01:sn:'
          'a1b2c3d4e5f60708-lun-0')
OTHER = 'ip-10.0.0.9:3260-iscsi-iqn.2010-10.org.openstack:volume-1-lun-0'


@pytest.fixture
def dev(tmp_path, monkeypatch):
    """A fake /dev: sda (the system disk), sdb (Datera), sdc (other)."""
    if os.geteuid() != 0:
        pytest.skip('making device nodes needs root (CI runs as root)')
    root = tmp_path / 'dev'
    by_path = root / 'disk' / 'by-path'
    by_path.mkdir(parents=True)
    for minor, name in enumerate(('sda', 'sdb', 'sdc')):
        os.mknod(str(root / name), stat.S_IFBLK | 0o600,
                 os.makedev(8, 16 * minor))
    os.symlink('../../sdb', str(by_path / DATERA))
    os.symlink('../../sdc', str(by_path / OTHER))
    (root / 'file').write_text('not a device')
    monkeypatch.setattr(privileged, 'BY_PATH', str(by_path))
    monkeypatch.setattr(privileged, '_DISK',
                        re.compile('%s/sd[a-z]+' % root))
    privileged.device_access.set_client_mode(False)
    yield root
    privileged.device_access.set_client_mode(True)


def test_the_datera_disk_of_the_attachment_is_given_and_taken_back(dev):
    link = str(dev / 'disk' / 'by-path' / DATERA)
    assert privileged.own_device(link, 1000) == str(dev / 'sdb')
    assert os.stat(str(dev / 'sdb')).st_uid == 1000
    privileged.return_device(link)
    assert os.stat(str(dev / 'sdb')).st_uid == 0


@pytest.mark.parametrize('target', [
    'sda',                                  # the system disk itself
    'sdc',                                  # another vendor's iSCSI disk
    'disk/by-path/' + OTHER,                # ... by its link
    'file',                                 # not a block device
    'missing',
    'disk/by-path/../../sda',
])
def test_any_other_disk_is_refused(dev, target):
    with pytest.raises(privileged.NotADateraDisk):
        privileged.own_device(str(dev / target), 1000)
    for name in ('sda', 'sdb', 'sdc'):
        assert os.stat(str(dev / name)).st_uid == 0


def test_a_link_named_like_datera_elsewhere_is_refused(dev, tmp_path):
    # The name alone does not count: the link must be in by-path.
    fake = tmp_path / DATERA
    os.symlink(str(dev / 'sda'), str(fake))
    with pytest.raises(privileged.NotADateraDisk):
        privileged.own_device(str(fake), 1000)
    assert os.stat(str(dev / 'sda')).st_uid == 0
