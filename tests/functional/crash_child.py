"""A glance-api stand-in that uploads or downloads one image, to be killed.

Run as ``python -m tests.functional.crash_child SPEC`` where SPEC is a JSON
object: ``options`` (the Datera store options), ``backend``, ``image_id``,
``action`` (``upload`` or ``download``), ``size``, ``declare_size``
(upload: pass the size to the store, else 0) and ``halfway`` (bytes after
which to stop). Once that many bytes have moved it prints ``HALFWAY`` on
its standard output and waits forever, holding everything the store holds
at that point, for the test to SIGKILL it. Needs root (privsep in
process, loop devices), as the functional tests do.
"""

import json
import sys
import threading

from glance_store import multi_backend
from oslo_config import cfg

from datera_glance_dev import stores


def _halfway():
    print('HALFWAY', flush=True)
    threading.Event().wait()


class StallingImage(stores.PatternImage):
    """A pattern image whose reader stalls once ``halfway`` bytes are out."""

    def __init__(self, size, halfway):
        super().__init__(size, track=False)
        self.halfway = halfway

    def read(self, n=-1):
        if self.pos >= self.halfway:
            _halfway()
        return super().read(n)


def main(spec):
    from os_brick.privileged import default
    default.set_client_mode(False)
    conf = cfg.CONF
    conf(args=[], default_config_files=[])
    stores.configure_multi_store(conf, {spec['backend']: spec['options']},
                                 spec['backend'])
    if spec['action'] == 'upload':
        image = StallingImage(spec['size'], spec['halfway'])
        multi_backend.add_with_multihash(
            conf, spec['image_id'], image,
            spec['size'] if spec['declare_size'] else 0,
            spec['backend'], 'sha256')
    else:
        uri = spec['uri']
        chunks, _size = multi_backend.get(uri, spec['backend'])
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if done >= spec['halfway']:
                _halfway()
    print('FINISHED', flush=True)


if __name__ == '__main__':
    main(json.loads(sys.argv[1]))
