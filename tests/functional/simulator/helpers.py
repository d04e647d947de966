"""Scenario helpers for simulator tests: app instances, hosts, exports."""

import os
import subprocess
import uuid

from datera_glance_dev import polling

HOST1 = 'iqn.1993-08.org.debian:01:host1'
HOST2 = 'iqn.1993-08.org.debian:01:host2'
GiB = 1024 ** 3


def create_ai(api, size=1, tenant=None, ai_id=None, name=None):
    """Create an app instance the way OpenStack drivers do; returns it."""
    ai_id = ai_id or str(uuid.uuid4())
    kwargs = {'tenant': tenant or '/root'}
    return api.app_instances.create(
        name=name or 'image-' + ai_id, create_mode='openstack', uuid=ai_id,
        access_control_mode='deny_all',
        storage_instances=[{
            'name': 'storage-1',
            'volumes': [{'name': 'volume-1', 'size': size,
                         'replica_count': 1}]}],
        **kwargs)


def register_host(api, iqn, tenant=None):
    kwargs = {'tenant': tenant or '/root'}
    api.initiators.create(id=iqn, name='host-' + iqn.rsplit(':', 1)[-1],
                          force=True, **kwargs)


def storage_instance(api, ai_id, tenant=None):
    kwargs = {'tenant': tenant or '/root'}
    return api.app_instances.get(ai_id, **kwargs).storage_instances.get(
        'storage-1', **kwargs)


def allow(api, ai_id, iqn, tenant=None):
    """Add a host to the app instance's ACL (atomic add)."""
    kwargs = {'tenant': tenant or '/root'}
    storage_instance(api, ai_id, tenant).acl_policy.initiators.add(
        '/initiators/' + iqn, **kwargs)


def disallow(api, ai_id, iqn, tenant=None):
    kwargs = {'tenant': tenant or '/root'}
    storage_instance(api, ai_id, tenant).acl_policy.initiators.remove(
        '/initiators/' + iqn, **kwargs)


def set_state(api, ai_id, state, tenant=None):
    ai = api.app_instances.get(ai_id, tenant=tenant or '/root')
    body = {'admin_state': state, 'tenant': tenant or '/root'}
    if state == 'offline':
        body['force'] = True
    ai.set(**body)


def export_links(sim, host):
    """The by-path link names a host sees, sorted."""
    host_dir = os.path.join(sim.export_dir, host)
    if not os.path.isdir(host_dir):
        return []
    return sorted(os.listdir(host_dir))


def expected_links(api, ai_id, tenant=None):
    """The link names the SI's ``access`` calls for."""
    si = storage_instance(api, ai_id, tenant)
    access = si['access']
    return sorted('ip-%s:3260-iscsi-%s-lun-0' % (ip, access['iqn'])
                  for ip in access['ips'])


def device_of(sim, host, link_name):
    return os.path.realpath(os.path.join(sim.export_dir, host, link_name))


def device_size(path):
    return int(subprocess.run(['blockdev', '--getsize64', path], check=True,
                              capture_output=True, text=True).stdout)


wait_for = polling.wait_for
