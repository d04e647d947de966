"""One real glance-api serving a Datera and a file backend side by side.

glance-api is glance's own WSGI application under gunicorn, started by
:class:`datera_glance_dev.glance_api.GlanceApi` as the end-to-end
tests start it (as this process's user, root in CI, with its database
made once by ``glance-manage db_sync``), with

* ``datera1``: the Datera store against the run's simulator, with the
  run's ``datera_chunk_size``;
* ``file1``: glance's filesystem store, with glance's defaults.

The client is not the bottleneck: ``requests`` streams a generator of
the image's 8 MiB blocks (no copies) as the body of
``PUT /v2/images/<id>/file``, once with ``x-openstack-image-size`` and
once without, choosing the backend with ``X-Image-Meta-Store``, and
downloads with ``iter_content`` of 8 MiB, counting bytes; the same
client against a bare loopback peer (:class:`LoopbackPeer`) shows how
fast it is on its own. An image import
(``glance-direct``: stage, then import to one store) is timed from the
import call until the image is active. The ``glance`` CLI's upload and
download of the same image from a file are there for reference (they
include the CLI's start-up). Every upload is checked: active, its size,
and the md5 and sha512 glance recorded against the image's own.
"""

import os
import re
import socket
import threading

from oslo_utils import units
import requests

from benchmarks import measure
from benchmarks import stages
from datera_glance_dev import glance_api
from datera_glance_dev import polling

DATERA = 'datera1'
FILE = 'file1'
BACKENDS = (FILE, DATERA)
CLIENT_CHUNK = 8 * units.Mi
TIMEOUT = 900
_ID_RE = re.compile(r'\|\s*id\s*\|\s*([0-9a-f-]{36})\s*\|')


class ApiError(RuntimeError):
    """glance-api answered or stored otherwise than expected."""


class ImagesClient(object):
    """The bits of the image API v2 the benchmark uses, over ``requests``."""

    def __init__(self, url):
        self.url = url
        self.session = requests.Session()
        self.session.headers['X-Auth-Token'] = 'x'

    def close(self):
        self.session.close()

    def _check(self, response, *codes):
        if response.status_code not in codes:
            raise ApiError('%s %s: %d %s' % (
                response.request.method, response.request.url,
                response.status_code, response.text[:2000]))
        return response

    def create(self, name):
        response = self.session.post(
            self.url + '/v2/images', timeout=60,
            json={'name': name, 'disk_format': 'raw',
                  'container_format': 'bare'})
        return self._check(response, 201).json()['id']

    def show(self, image_id):
        response = self.session.get(
            '%s/v2/images/%s' % (self.url, image_id), timeout=60)
        return self._check(response, 200).json()

    def delete(self, image_id):
        response = self.session.delete(
            '%s/v2/images/%s' % (self.url, image_id), timeout=120)
        self._check(response, 204, 404)

    def put_data(self, image_id, image, backend=None, size=None,
                 stage=False):
        """PUT the image's blocks to /file (or /stage) as they come."""
        headers = {'Content-Type': 'application/octet-stream'}
        if backend is not None:
            headers['X-Image-Meta-Store'] = backend
        if size is not None:
            headers['x-openstack-image-size'] = str(size)
        response = self.session.put(
            '%s/v2/images/%s/%s' % (self.url, image_id,
                                    'stage' if stage else 'file'),
            data=image.chunks(), headers=headers, timeout=TIMEOUT)
        self._check(response, 204)

    def download(self, image_id):
        """GET the image's data; returns the number of bytes."""
        total = 0
        with self.session.get(
                '%s/v2/images/%s/file' % (self.url, image_id),
                stream=True, timeout=TIMEOUT) as response:
            self._check(response, 200)
            for piece in response.iter_content(CLIENT_CHUNK):
                total += len(piece)
        return total

    def start_import(self, image_id, backend):
        response = self.session.post(
            '%s/v2/images/%s/import' % (self.url, image_id), timeout=60,
            json={'method': {'name': 'glance-direct'},
                  'stores': [backend]})
        self._check(response, 202)

    def wait_active(self, image_id):
        def active():
            image = self.show(image_id)
            if image.get('os_glance_failed_import'):
                raise ApiError('import of %s failed to %s' % (
                    image_id, image['os_glance_failed_import']))
            if image['status'] in ('killed', 'deleted'):
                raise ApiError('image %s is %s' % (image_id,
                                                   image['status']))
            return image if image['status'] == 'active' else None
        return polling.wait_for(active, timeout=TIMEOUT, interval=0.02,
                                message='image %s active' % image_id)


class LoopbackPeer(object):
    """A one-request HTTP peer on 127.0.0.1, to time the client alone.

    ``sink``: reads a chunked request body to its end and answers 204;
    otherwise sends ``image``'s bytes with a Content-Length. It does the
    least a server can, so what limits the transfer is the client (and
    the loopback).
    """

    def __init__(self, image, sink):
        self.image = image
        self.sink = sink
        self.received = 0
        self.error = None
        self._server = socket.create_server(('127.0.0.1', 0))
        self.url = 'http://127.0.0.1:%d/x' % self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve,
                                        name='bench-peer', daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            conn, _addr = self._server.accept()
            with conn:
                if self.sink:
                    self._swallow(conn)
                    conn.sendall(b'HTTP/1.1 204 No Content\r\n'
                                 b'Content-Length: 0\r\n\r\n')
                else:
                    self._read_head(conn)
                    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: '
                                 b'application/octet-stream\r\n'
                                 b'Content-Length: %d\r\n\r\n'
                                 % self.image.size)
                    for buf in self.image.chunks():
                        conn.sendall(buf)
        except Exception as e:
            self.error = e
        finally:
            self._server.close()

    @staticmethod
    def _read_head(conn):
        head = b''
        while b'\r\n\r\n' not in head:
            piece = conn.recv(65536)
            if not piece:
                raise ApiError('the client closed before its request')
            head += piece

    def _swallow(self, conn):
        # The body is chunked: it ends with the zero-size chunk.
        buf = bytearray(4 * units.Mi)
        tail = b''
        while not tail.endswith(b'0\r\n\r\n'):
            n = conn.recv_into(buf)
            if not n:
                raise ApiError('the client closed before the end')
            self.received += n
            tail = (tail + bytes(buf[max(0, n - 5):n]))[-5:]

    def join(self):
        self._thread.join(TIMEOUT)
        if self.error is not None:
            raise self.error


def client_alone(ctx, image):
    """The client's own upload and download rates, against a bare peer."""
    session = requests.Session()
    try:
        peer = LoopbackPeer(image, sink=True)
        figure = ctx.figures.get(
            'api_client_upload', 'glance-api',
            'client alone: PUT to a bare peer', image.size, 'api_md5',
            'the client is not the bottleneck if well above md5')
        with measure.Probe() as probe:
            response = session.put(
                peer.url, data=image.chunks(), timeout=TIMEOUT,
                headers={'Content-Type': 'application/octet-stream'})
        peer.join()
        if response.status_code != 204 or peer.received < image.size:
            raise ApiError('the bare peer got %d bytes' % peer.received)
        figure.add_probe(probe)

        peer = LoopbackPeer(image, sink=False)
        figure = ctx.figures.get(
            'api_client_download', 'glance-api',
            'client alone: GET from a bare peer', image.size, 'api_md5',
            'iter_content(8 MiB)')
        total = 0
        with measure.Probe() as probe:
            with session.get(peer.url, stream=True,
                             timeout=TIMEOUT) as response:
                for piece in response.iter_content(CLIENT_CHUNK):
                    total += len(piece)
        peer.join()
        if total != image.size:
            raise ApiError('got %d bytes of %d from the bare peer'
                           % (total, image.size))
        figure.add_probe(probe)
    finally:
        session.close()


def _check_stored(client, image_id, image, digests, backend):
    record = client.show(image_id)
    problems = []
    if record['status'] != 'active':
        problems.append('status %s' % record['status'])
    if record.get('size') != image.size:
        problems.append('size %s' % record.get('size'))
    if record.get('checksum') != digests[0]:
        problems.append('md5 differs')
    if record.get('os_hash_value') not in (None, digests[1]):
        problems.append('sha512 differs')
    stored = record.get('stores', '')
    if backend not in stored.split(','):
        problems.append('stores %r' % stored)
    if problems:
        raise ApiError('image %s on %s: %s' % (image_id, backend,
                                               ', '.join(problems)))


def start_glance_api(ctx, work):
    """Configure, db_sync and start glance-api with both backends."""
    api = glance_api.GlanceApi(
        work,
        [glance_api.datera_backend(
            ctx.sim, name=DATERA, datera_chunk_size=ctx.chunk,
            datera_thin_provisioning=True),
         glance_api.file_backend(os.path.join(work, 'images'), name=FILE)],
        default=DATERA, debug=False)
    api.write_config()
    api.db_sync()
    api.start()
    return api


def glance_api_section(ctx):
    """Uploads, downloads and imports through glance-api, per backend.

    A small upload to each backend first, not counted: glance-api's first
    attach starts os-brick's privsep daemon and registers the host's
    initiator, once. Then the uploads, downloads and imports, repeated as
    the main operations are, the backends taking turns; the CLI once.
    """
    image = ctx.image.like(size=ctx.glance_size)
    digests = image.digests()
    work = os.path.join(ctx.work, 'glance-api')
    api = start_glance_api(ctx, work)
    client = ImagesClient(api.url)
    ctx.glance_api_log = api.log_file
    try:
        small = ctx.image.like(size=ctx.chunk)
        for backend in BACKENDS:
            image_id = client.create('bench-warm-up-%s' % backend)
            client.put_data(image_id, small, backend, small.size)
            client.download(image_id)
            client.delete(image_id)
        for _repetition in range(ctx.repeat):
            _md5(ctx, image)
            client_alone(ctx, image)
            for backend in BACKENDS:
                _uploads(ctx, client, backend, image, digests)
            for backend in BACKENDS:
                _import(ctx, client, backend, image, digests)
        path = image.write_to(os.path.join(ctx.work, 'glance-cli.img'))
        try:
            for backend in BACKENDS:
                _cli(ctx, api, client, backend, image, path)
        finally:
            os.unlink(path)
    except Exception:
        ctx.errors.append('glance-api log tail:\n' + api.log_tail(40))
        raise
    finally:
        client.close()
        api.stop()


def _md5(ctx, image):
    """md5 of the same data, in this section, for the download ratio."""
    md5 = ctx.figures.get('api_md5', 'glance-api', 'md5 alone', image.size,
                          None, 'same data, this section')
    with measure.Probe() as probe:
        stages.hash_stage(image, 'md5')
    md5.add_probe(probe)


def _uploads(ctx, client, backend, image, digests):
    figures, sized_id = ctx.figures, None
    for with_size in (True, False):
        kind = 'sized' if with_size else 'unsized'
        key = 'api_upload_%s_%s' % (backend, kind)
        figure = figures.get(
            key, 'glance-api', 'PUT /file to %s, %s' % (
                backend, 'with size' if with_size else 'no size'),
            image.size,
            None if backend == FILE else 'api_upload_%s_%s' % (FILE, kind),
            'x-openstack-image-size' if with_size else 'chunked, no size')
        image_id = client.create('bench-%s-%s' % (backend, kind))
        with measure.Probe(ctx.sim) as probe:
            client.put_data(image_id, image, backend,
                            image.size if with_size else None)
        figure.add_probe(probe)
        _check_stored(client, image_id, image, digests, backend)
        if with_size:
            sized_id = image_id
        else:
            client.delete(image_id)

    figure = figures.get(
        'api_download_%s' % backend, 'glance-api',
        'GET /file from %s' % backend, image.size, 'api_md5',
        'iter_content(8 MiB)')
    with measure.Probe(ctx.sim) as probe:
        total = client.download(sized_id)
    figure.add_probe(probe)
    if total != image.size:
        raise ApiError('downloaded %d bytes of %d from %s'
                       % (total, image.size, backend))
    client.delete(sized_id)


def _import(ctx, client, backend, image, digests):
    figures = ctx.figures
    image_id = client.create('bench-import-%s' % backend)
    stage = figures.get('api_stage_%s' % backend, 'glance-api',
                        'PUT /stage (for %s)' % backend, image.size, None,
                        'staging store: file')
    with measure.Probe() as probe:
        client.put_data(image_id, image, stage=True)
    stage.add_probe(probe)
    figure = figures.get(
        'api_import_%s' % backend, 'glance-api',
        'import glance-direct to %s' % backend, image.size,
        None if backend == FILE else 'api_import_%s' % FILE,
        'import call until active')
    with measure.Probe(ctx.sim) as probe:
        client.start_import(image_id, backend)
        client.wait_active(image_id)
    figure.add_probe(probe)
    _check_stored(client, image_id, image, digests, backend)
    client.delete(image_id)


def _cli(ctx, api, client, backend, image, path):
    figures = ctx.figures
    up = figures.get(
        'cli_upload_%s' % backend, 'glance CLI',
        'glance image-create --file --store %s' % backend, image.size,
        'api_upload_%s_sized' % backend, 'reference; includes start-up')
    with measure.Probe() as probe:
        result = api.run_glance(
            'image-create', '--name', 'bench-cli-%s' % backend,
            '--disk-format', 'raw', '--container-format', 'bare',
            '--file', path, '--store', backend, timeout=TIMEOUT)
    up.add_probe(probe)
    match = _ID_RE.search(result.stdout)
    if not match:
        raise ApiError('no image id in glance image-create output:\n%s'
                       % result.stdout)
    image_id = match.group(1)
    record = client.show(image_id)
    if record['status'] != 'active' or record.get('size') != image.size:
        raise ApiError('glance CLI upload to %s: %s, %s bytes' % (
            backend, record['status'], record.get('size')))
    down = figures.get(
        'cli_download_%s' % backend, 'glance CLI',
        'glance image-download from %s' % backend, image.size,
        'api_download_%s' % backend, 'reference; includes start-up')
    with measure.Probe() as probe:
        api.run_glance('image-download', '--file', os.devnull, image_id,
                       timeout=TIMEOUT)
    down.add_probe(probe)
    client.delete(image_id)
