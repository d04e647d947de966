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

"""``python -m datera_glance_dev.demo [--keep]``: the Datera store, end to end.

What ``make demo`` runs. It starts the Datera EDF simulator (HTTPS, verified
with the simulator's own CA) and a real glance-api (glance from PyPI under
gunicorn, SQLite, no keystone) whose default backend is the Datera store,
then drives it with the real ``glance`` command-line client:

1. creates an image from a generated file spanning several chunks;
2. shows ``stores-info``;
3. downloads the image and compares its checksum and multihash;
4. imports a second image with the interoperable import flow
   (``web-download`` from a local HTTP server);
5. downloads a byte range;
6. deletes both images and shows from the simulator that nothing is left.

Each step prints one line with its result, size, time and throughput. The
exit status is non-zero when any step fails. Every process started here is
stopped at the end, also on Ctrl-C, unless ``--keep`` is given: then the
services stay up and the ``glance`` command line to use them is printed.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from datera_glance_dev import glance_api
from datera_glance_dev import images

BACKEND = 'datera1'
MiB = 1024 * 1024


class DemoFailure(Exception):
    """A step did not do what it should."""


def parse_table(text):
    """Parse the ``| Property | Value |`` table the glance CLI prints.

    The CLI wraps long values (hashes) onto continuation rows whose first
    column is empty; their pieces are joined back without a separator.
    """
    values = {}
    key = None
    for line in text.splitlines():
        if not line.startswith('|'):
            continue
        cells = [c.strip() for c in line.strip().strip('|').split('|', 1)]
        if len(cells) != 2 or cells[0] == 'Property':
            continue
        if cells[0]:
            key = cells[0]
            values[key] = cells[1]
        elif key is not None:
            values[key] += cells[1]
    return values


def default_chunk_size():
    """The driver's ``datera_chunk_size`` default, read from its options."""
    from datera_glance import options
    for _group, opts in options.list_opts():
        for opt in opts:
            if opt.name == 'datera_chunk_size':
                return opt.default
    raise DemoFailure('the driver has no datera_chunk_size option')


def human(size):
    if size >= MiB:
        return '%.1f MiB' % (size / MiB)
    return '%d B' % size


class Report:
    """Prints one line per step: result, what, size, time, throughput."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.failed = False
        #: The step under way, named in the failure line.
        self.current = 'start'

    def say(self, text=''):
        self.out.write(text + '\n')
        self.out.flush()

    def begin(self, title):
        self.current = title

    def step(self, title, size=None, seconds=None, detail=''):
        size_text = human(size) if size is not None else ''
        time_text = '%.2f s' % seconds if seconds is not None else ''
        rate_text = ''
        if size and size >= MiB and seconds:
            rate_text = '%.1f MiB/s' % (size / MiB / seconds)
        self.say(' ok   %-32s %10s %8s %12s  %s' % (
            title, size_text, time_text, rate_text, detail))

    def fail(self, error):
        self.failed = True
        self.say(' FAIL %-32s %s' % (self.current, error))


def check_image(image, md5, sha512, size):
    """The image record glance shows matches the local file."""
    problems = []
    if image.get('status') != 'active':
        problems.append('status %s' % image.get('status'))
    if image.get('size') != str(size):
        problems.append('size %s != %d' % (image.get('size'), size))
    if image.get('checksum') != md5:
        problems.append('checksum %s != %s' % (image.get('checksum'), md5))
    if image.get('os_hash_algo') != 'sha512' or (
            image.get('os_hash_value') != sha512):
        problems.append('multihash differs')
    if image.get('stores') != BACKEND:
        problems.append('stored in %r, not %r' % (image.get('stores'),
                                                  BACKEND))
    if problems:
        raise DemoFailure('; '.join(problems))


def app_instances(sim):
    return [ai for ai in sim.state().get('app_instances', [])]


def sim_status_text(sim):
    """What ``datera-edf-sim status`` prints for the simulator."""
    result = subprocess.run(
        [sys.executable, '-m', 'datera_edf_sim.cli', 'status',
         '--data-dir', sim.data_dir], capture_output=True, text=True)
    if result.returncode:
        raise DemoFailure('datera-edf-sim status failed: %s' % result.stderr)
    return result.stdout


def exported_links(sim):
    links = []
    for root, _dirs, files in os.walk(sim.export_dir):
        links.extend(os.path.join(root, f) for f in files)
    return links


def KeptSimulator(data_dir, **options):
    """A simulator process that outlives the demo (``--keep``).

    The fixture's simulator stops itself when its parent goes away, which
    is what tests want; ``--keep`` wants the opposite.
    """
    from datera_edf_sim import fixture

    class _Kept(fixture.SimulatorProcess):
        def command(self):
            return [arg for arg in super(_Kept, self).command()
                    if arg != '--watch-stdin']

    return _Kept(data_dir, **options)


class Demo:
    """The demo's steps, sharing the services they start."""

    def __init__(self, work_dir, size, import_size, report, keep=False):
        self.work_dir = work_dir
        self.keep = keep
        self.size = size
        self.import_size = import_size
        self.report = report
        self.stack = contextlib.ExitStack()
        self.sim = None
        self.api = None
        self.chunk = None
        self.files = os.path.join(work_dir, 'files')
        self.path = os.path.join(self.files, 'demo.raw')
        self.digests = None
        self.image_id = None
        self.import_id = None
        self.source_port = None
        self.source_url = None

    def run(self):
        """Run every step in order; the first failure raises."""
        steps = [
            ('start EDF simulator', self.start_simulator),
            ('start glance-api', self.start_glance_api),
            ('generate image file', self.generate_file),
            ('glance image-create --file', self.create_image),
            ('glance stores-info', self.stores_info),
            ('glance image-download', self.download_image),
            ('glance image-create-via-import', self.import_image),
            ('ranged download (HTTP Range)', self.ranged_download),
            ('simulator holds both images', self.check_simulator),
            ('glance image-delete (both)', self.delete_images),
        ]
        self.report.say('      %-32s %10s %8s %12s  %s' % (
            'step', 'size', 'time', 'throughput', 'result'))
        for title, step in steps:
            self.report.begin(title)
            # Steps that go through glance-api to the store.
            counting = title.startswith(('glance ', 'ranged '))
            if counting:
                self.sim.clear_requests()
            start = time.monotonic()
            size, detail = step()
            elapsed = time.monotonic() - start
            if counting:
                # What the store asked of the cluster for this step.
                detail += '; %d Datera API calls' % len(self.sim.requests())
            self.report.step(title, size, elapsed, detail)
        self.report.say('(times of glance commands include the client\'s own '
                        'start-up, about the time of stores-info)')
        self.report.say()
        self.report.say('$ datera-edf-sim status --data-dir %s'
                        % self.sim.data_dir)
        self.report.say(sim_status_text(self.sim).rstrip())

    def start_simulator(self):
        from datera_edf_sim import fixture
        # Loop devices when root can make them, as a real volume would be.
        block = os.geteuid() == 0 and shutil.which('losetup') is not None
        factory = (KeptSimulator if self.keep
                   else fixture.SimulatorProcess)
        self.sim = factory(os.path.join(self.work_dir, 'simulator'),
                           block_devices=block)
        self.sim.start()
        self.stack.callback(self.sim.stop)
        return None, '%s (%s)' % (self.sim.api_url, 'loop devices'
                                  if block else 'sparse files')

    def start_glance_api(self):
        os.makedirs(self.files)
        self.source_url = self.stack.enter_context(
            images.serve_folder(self.files))
        self.source_port = int(self.source_url.rsplit(':', 1)[1])
        backend = glance_api.datera_backend(self.sim, name=BACKEND)
        self.api = glance_api.GlanceApi(
            os.path.join(self.work_dir, 'glance'), [backend], debug=False,
            stop_with_parent=not self.keep,
            # web-download refuses loopback addresses unless allowed: allow
            # the local server's address and port only.
            extra_config={'import_filtering_opts': {
                'allowed_hosts': '[127.0.0.1]',
                'allowed_ports': '[%d]' % self.source_port}})
        self.api.start()
        self.stack.callback(self.api.stop)
        return None, '%s, default backend %s:datera, TLS verified with %s' % (
            self.api.url, BACKEND, self.sim.ca_file)

    def generate_file(self):
        self.chunk = default_chunk_size()
        images.ImageData(self.size, seed=1).write_to(self.path)
        self.digests = images.file_digests(self.path)
        # No size: the time is the generator's, not the store's.
        chunks = -(-self.size // self.chunk)
        return None, '%s of incompressible data, %d chunks of %s' % (
            human(self.size), chunks, human(self.chunk))

    def create_image(self):
        out = self.api.run_glance(
            'image-create', '--name', 'demo-image', '--disk-format', 'raw',
            '--container-format', 'bare', '--file', self.path).stdout
        image = parse_table(out)
        self.image_id = image.get('id')
        check_image(image, *self.digests, self.size)
        return self.size, 'id %s, checksum and multihash match' % (
            self.image_id)

    def stores_info(self):
        stores = json.loads(parse_table(
            self.api.run_glance('stores-info').stdout)['stores'])
        default = [s['id'] for s in stores if s.get('default') == 'true']
        if default != [BACKEND]:
            raise DemoFailure('default store is %s, not %s'
                              % (default, BACKEND))
        return None, ', '.join('%s (%s)%s' % (
            s['id'], s.get('description', ''),
            ', default' if s.get('default') else '') for s in stores)

    def download_image(self):
        out_path = os.path.join(self.work_dir, 'downloaded.raw')
        self.api.run_glance('image-download', '--file', out_path,
                            self.image_id)
        got = images.file_digests(out_path)
        os.unlink(out_path)
        if got != self.digests:
            raise DemoFailure('downloaded data differs: md5 %s' % got[0])
        return self.size, 'md5 and sha512 match the file'

    def import_image(self):
        import_path = os.path.join(self.files, 'imported.raw')
        images.ImageData(self.import_size, seed=2).write_to(import_path)
        digests = images.file_digests(import_path)
        url = self.source_url + '/imported.raw'
        out = self.api.run_glance(
            'image-create-via-import', '--name', 'demo-import',
            '--disk-format', 'raw', '--container-format', 'bare',
            '--import-method', 'web-download', '--uri', url).stdout
        self.import_id = parse_table(out).get('id')
        check_image(self.wait_until_active(self.import_id), *digests,
                    self.import_size)
        return self.import_size, 'web-download from %s' % url

    def wait_until_active(self, image_id, timeout=300):
        """The image once ``glance image-show`` says it is active."""
        def show(image_id):
            return parse_table(
                self.api.run_glance('image-show', image_id).stdout)
        try:
            return images.wait_for_status(show, image_id, 'active',
                                          timeout=timeout)
        except AssertionError as e:     # ImportFailed too
            raise DemoFailure(str(e)) from e

    def ranged_download(self):
        # A range across the first chunk boundary.
        start = min(self.chunk, self.size // 2) - 1000
        end = start + 5999
        request = urllib.request.Request(
            '%s/v2/images/%s/file' % (self.api.url, self.image_id),
            headers={'Range': 'bytes=%d-%d' % (start, end),
                     'X-Auth-Token': 'no-keystone'})
        with urllib.request.urlopen(request, timeout=60) as response:
            status, part = response.status, response.read()
        with open(self.path, 'rb') as f:
            f.seek(start)
            expected = f.read(end - start + 1)
        if status != 206 or part != expected:
            raise DemoFailure('bytes=%d-%d: HTTP %d, %d bytes, %s' % (
                start, end, status, len(part),
                'matching' if part == expected else 'not matching'))
        return len(part), 'bytes=%d-%d, HTTP 206, matches' % (start, end)

    def check_simulator(self):
        names = sorted(ai['name'] for ai in app_instances(self.sim))
        wanted = sorted('OS-IMAGE-' + i
                        for i in (self.image_id, self.import_id))
        if names != wanted:
            raise DemoFailure('simulator holds %s, expected %s'
                              % (names, wanted))
        return None, ', '.join(names)

    def delete_images(self):
        self.api.run_glance('image-delete', self.image_id, self.import_id)
        left = app_instances(self.sim)
        links = exported_links(self.sim)
        if left or links:
            raise DemoFailure('left behind: %s %s' % (
                [ai['name'] for ai in left], links))
        return None, 'no app instance and no export left'

    def print_usage(self):
        """How to use the services left running by --keep."""
        say = self.report.say
        say()
        say('The services stay up (--keep). Use them with:')
        say('  %s image-list' % ' '.join(self.api.glance_command()))
        say('  %s -m datera_edf_sim.cli status --data-dir %s'
            % (sys.executable, self.sim.data_dir))
        say('glance-api config %s, log %s'
            % (self.api.config_dir, self.api.log_file))
        say('Stop them with: kill %d %d; then rm -rf %s'
            % (self.api.process.pid, self.sim.process.pid, self.work_dir))

    def log_tails(self):
        """The last errors and warnings of glance-api, and where logs are."""
        say = self.report.say
        if self.api is not None:
            lines = [line for line in self.api.read_log().splitlines()
                     if (' ERROR ' in line or ' WARNING ' in line) and
                     'oslo_policy' not in line and 'stevedore' not in line]
            say('--- last errors and warnings of glance-api ---')
            say('\n'.join(lines[-20:]))
            say('--- logs kept: %s, %s'
                % (self.api.log_file, self.sim.log_file if self.sim else ''))


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m datera_glance_dev.demo',
        description='Run glance-api with the Datera store against the EDF '
                    'simulator and exercise it with the glance CLI.')
    parser.add_argument('--keep', action='store_true',
                        help='leave the simulator and glance-api running')
    parser.add_argument('--size-mib', type=int, default=96,
                        help='size of the first image (default %(default)s '
                             'MiB, plus a few odd bytes)')
    args = parser.parse_args(argv)
    # A kill (SIGTERM) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)

    report = Report()
    work_dir = tempfile.mkdtemp(prefix='datera-glance-demo-')
    demo = Demo(work_dir, args.size_mib * MiB + 12345, 40 * MiB + 777,
                report, keep=args.keep)
    report.say('Datera glance store demo (work folder %s)' % work_dir)
    status = 0
    try:
        demo.run()
        report.say()
        report.say('All steps passed.')
    except KeyboardInterrupt:
        report.say('interrupted')
        status = 130
    except Exception as e:
        report.fail('%s: %s' % (type(e).__name__, e))
        demo.log_tails()
        status = 1
    finally:
        if args.keep and status != 130 and demo.api and demo.api.process:
            demo.stack.pop_all()
            demo.print_usage()
        else:
            demo.stack.close()
            if status == 1:
                # The logs explain the failure; the image files do not.
                shutil.rmtree(demo.files, ignore_errors=True)
                report.say('work folder kept for its logs: %s' % work_dir)
            else:
                shutil.rmtree(work_dir, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
