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

"""Image contents, a file server and an image's status, for the demo and
the end-to-end tests alike."""

import contextlib
import functools
import hashlib
import http.server
import io
import random
import threading

from datera_glance_dev import polling

MiB = 1024 * 1024


class ImageData(object):
    """Deterministic, incompressible image contents of any size.

    Every MiB differs (it starts with its own index), so data read from
    the wrong offset never matches by accident, yet the contents cost no
    time to produce.
    """

    def __init__(self, size, seed=0):
        self.size = size
        self._base = random.Random(seed).randbytes(MiB)

    def block(self, index):
        return index.to_bytes(8, 'big') + self._base[8:]

    def chunks(self):
        """The contents as a generator of 1 MiB pieces."""
        left, index = self.size, 0
        while left:
            data = self.block(index)[:left]
            yield data
            left -= len(data)
            index += 1

    def read(self, offset, length):
        out = bytearray()
        while length > 0 and offset < self.size:
            index, skip = divmod(offset, MiB)
            piece = self.block(index)[skip:skip + length]
            piece = piece[:self.size - offset]
            out += piece
            offset += len(piece)
            length -= len(piece)
        return bytes(out)

    def bytes(self):
        return b''.join(self.chunks())

    def file(self):
        """A file object streaming the contents (what glanceclient reads)."""
        return _ImageDataReader(self)

    @functools.cached_property
    def digests(self):
        """(md5, sha512) hex digests, as glance records them."""
        return digests_of(self.chunks())

    def write_to(self, path):
        with open(path, 'wb') as f:
            for piece in self.chunks():
                f.write(piece)
        return path


class _ImageDataReader(io.RawIOBase):
    def __init__(self, data):
        self.data = data
        self.offset = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        piece = self.data.read(self.offset, len(buffer))
        buffer[:len(piece)] = piece
        self.offset += len(piece)
        return len(piece)


def digests_of(pieces):
    """(md5, sha512) hex digests of byte strings taken in order."""
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    for piece in pieces:
        md5.update(piece)
        sha512.update(piece)
    return md5.hexdigest(), sha512.hexdigest()


def file_digests(path):
    """(md5, sha512) hex digests of a file."""
    with open(path, 'rb') as f:
        return digests_of(iter(functools.partial(f.read, 4 * MiB), b''))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


@contextlib.contextmanager
def serve_folder(folder):
    """Serve ``folder`` over HTTP on a free port of 127.0.0.1.

    For web-download imports; yields the base URL.
    """
    handler = functools.partial(_QuietHandler, directory=folder)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield 'http://127.0.0.1:%d' % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class ImportFailed(AssertionError):
    """The image went ``killed`` or ``deleted``, or its import failed."""


def wait_for_status(fetch, image_id, wanted, timeout=300):
    """Poll ``fetch(image_id)`` (an image as a dict) until it is ``wanted``.

    :raises ImportFailed: the image went killed or deleted, or glance
        recorded a failed import.
    :raises AssertionError: ``timeout`` seconds passed first.
    """
    def reached():
        image = fetch(image_id)
        status = image.get('status')
        if status == wanted:
            return image
        failed = image.get('os_glance_failed_import')
        if status in ('killed', 'deleted') or failed:
            raise ImportFailed('image %s went %s (failed import: %s)' % (
                image_id, status, failed))
        return None
    return polling.wait_for(reached, timeout=timeout, interval=0.5,
                            message='image %s %s' % (image_id, wanted))
