"""A second glance-api host for the iSCSI tier, as a process of its own.

Run by test_store_iscsi.py with a JSON request file: it enters a mount
namespace of its own, sets up its own fake kernel whose initiator name is
``initiator_name``, configures the Datera store as backend ``backend``
with ``options`` and reads ``uri`` through it. While reading, it records
the ACL of the image's storage instance from the simulator's admin API
(``admin_url``). It prints one JSON line: the sha256 and size read, that
ACL, and what its fake kernel has left (empty when all is clean).
"""

import hashlib
import json
import sys

from glance_store import multi_backend
from oslo_config import cfg
import requests

from datera_glance_dev import stores
from tests.iscsi import fake_kernel as fk


def acl(admin_url, image_id):
    state = requests.get(admin_url + '/state', timeout=30).json()
    for ai in state.get('app_instances', []):
        if ai['id'] == image_id:
            return sorted(
                i['path'] if isinstance(i, dict) else i
                for i in ai['storage_instances'][0]['acl_policy'][
                    'initiators'])
    return None


def main(request_file):
    with open(request_file) as f:
        request = json.load(f)
    fk.enter_private_mount_namespace()
    with fk.FakeKernel(initiator_name=request['initiator_name']) as kernel:
        cfg.CONF(args=[], default_config_files=[])
        stores.configure_multi_store(
            cfg.CONF, {request['backend']: request['options']},
            request['backend'])
        chunks, _size = multi_backend.get(request['uri'],
                                          request['backend'])
        digest = hashlib.sha256()
        size = 0
        seen_acl = None
        for chunk in chunks:
            if seen_acl is None:        # attached: this host is exported to
                seen_acl = acl(request['admin_url'], request['image_id'])
            digest.update(chunk)
            size += len(chunk)
        leftovers = kernel.leftovers()
    print(json.dumps({'sha256': digest.hexdigest(), 'size': size,
                      'acl_while_reading': seen_acl,
                      'leftovers': leftovers}))


if __name__ == '__main__':
    main(sys.argv[1])
