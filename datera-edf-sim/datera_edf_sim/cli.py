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

"""``datera-edf-sim``: run a Datera EDF simulator or show its state.

``datera-edf-sim serve --data-dir DIR`` serves until SIGTERM or SIGINT and,
once it accepts requests, prints one JSON line on stdout (URLs, CA file,
export folder, credentials); everything else goes to stderr. With
``--iscsi-target`` a real iSCSI target (tgtd) serves the exports too, and
the ready line's ``iscsi_target`` names its portals and control port.

``datera-edf-sim status --data-dir DIR`` prints the tenants, app instances,
sizes, states and exports kept in DIR, whether or not a simulator is
serving it.
"""

import argparse
import grp
import json
import logging
import os
import pwd
import re
import signal
import sys

import prettytable

from datera_edf_sim import dataplane
from datera_edf_sim import defaults
from datera_edf_sim import models
from datera_edf_sim import parent
from datera_edf_sim import server

LOG = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_LINK_RE = re.compile(r'^ip-(?P<ip>.+):\d+-iscsi-(?P<target>.+)-lun-\d+$')


def _csv(value):
    return [item.strip() for item in value.split(',') if item.strip()]


_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')


def _flag(value):
    """yes/no, true/false, on/off, 1/0 (any case) as a bool."""
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError('%s is not yes or no' % value)


def _port(value):
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError('%s is not a port number' % value)
    return port


def _owner(value):
    """USER[:GROUP] (names or numbers) as (uid, gid)."""
    user, _sep, group = value.partition(':')
    try:
        entry = (pwd.getpwuid(int(user)) if user.isdigit()
                 else pwd.getpwnam(user))
    except (KeyError, OverflowError):
        raise argparse.ArgumentTypeError('no such user: %s' % user)
    gid = entry.pw_gid
    if group:
        try:
            gid = (int(group) if group.isdigit()
                   else grp.getgrnam(group).gr_gid)
        except KeyError:
            raise argparse.ArgumentTypeError('no such group: %s' % group)
    return entry.pw_uid, gid


def build_parser():
    parser = argparse.ArgumentParser(
        prog='datera-edf-sim',
        description='A simulated Datera EDF cluster for tests and demos.')
    sub = parser.add_subparsers(dest='command', required=True)

    serve = sub.add_parser(
        'serve', help='serve the REST API (HTTPS and HTTP) until stopped')
    serve.add_argument('--data-dir', required=True,
                       help='state, volumes, exports and TLS files')
    serve.add_argument('--port', type=_port, default=defaults.PORT,
                       help='HTTPS port, 0 picks a free one (default '
                            '%(default)s)')
    serve.add_argument('--http-port', type=_port,
                       default=defaults.HTTP_PORT,
                       help='HTTP port, 0 picks a free one (default '
                            '%(default)s)')
    serve.add_argument('--bind', default=defaults.BIND,
                       help='listen address (default %(default)s)')
    serve.add_argument('--block-devices', action='store_true',
                       help='export loop devices instead of files '
                            '(needs root)')
    serve.add_argument('--export-owner', type=_owner, metavar='USER[:GROUP]',
                       help='hand exported devices to this user (name or '
                            'uid) and group (default: the user\'s), so a '
                            'glance-api that does not run as root can open '
                            'them (needs root)')
    # An optional value, so that "--iscsi-target false" (how the test
    # fixture passes every option, as "--name value") turns it off.
    serve.add_argument('--iscsi-target', type=_flag, nargs='?', const=True,
                       default=False, metavar='yes|no',
                       help='also serve every export with a real iSCSI '
                            'target: a tgtd of its own on port 3260 of the '
                            'data IPs (default: two fresh loopback '
                            'addresses 127.x.y.1 and 127.x.y.2). Needs root '
                            'and tgtd (Debian package tgt)')
    serve.add_argument('--username', default=defaults.USERNAME)
    serve.add_argument('--password', default=defaults.PASSWORD)
    serve.add_argument('--sw-version',
                       help='the system sw_version, e.g. %s'
                            % defaults.SW_VERSION)
    serve.add_argument('--key-ttl', type=float,
                       help='seconds a login key stays valid')
    serve.add_argument('--resize-seconds', type=float,
                       help='seconds a volume stays in its resizing state')
    serve.add_argument('--snapshot-seconds', type=float,
                       help='seconds a new volume snapshot stays in its '
                            'creating state')
    serve.add_argument('--data-ips', type=_csv,
                       help='comma-separated iSCSI portal addresses, '
                            'e.g. %s' % ','.join(defaults.DATA_IPS))
    serve.add_argument('--watch-stdin', action='store_true',
                       help='stop when stdin reaches end of file (the '
                            'parent that holds the pipe exited)')
    serve.add_argument('--log-level', default='INFO',
                       choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])

    status = sub.add_parser(
        'status', help='print the state kept in a data directory')
    status.add_argument('--data-dir', required=True)
    status.add_argument('--json', action='store_true',
                        help='print the raw snapshot as JSON')
    return parser


def serve(args):
    # Block the stop signals before any thread starts so every thread
    # inherits the mask and only the main thread's sigwait sees them.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    sim = server.Simulator(
        args.data_dir, port=args.port, http_port=args.http_port,
        bind=args.bind, block_devices=args.block_devices,
        export_owner=args.export_owner, iscsi_target=args.iscsi_target,
        username=args.username, password=args.password,
        sw_version=args.sw_version, key_ttl=args.key_ttl,
        resize_seconds=args.resize_seconds,
        snapshot_seconds=args.snapshot_seconds, data_ips=args.data_ips)
    try:
        sim.start()
    except dataplane.DataPlaneError as e:
        LOG.error('simulator failed to start: %s', e)
        return 1
    except Exception as e:
        LOG.exception('simulator failed to start: %s', e)
        return 1
    if args.watch_stdin:
        parent.stop_when_stdin_closes(signal.SIGTERM)
    try:
        sys.stdout.write(json.dumps(sim.ready_info(), sort_keys=True) + '\n')
        sys.stdout.flush()
        # The ready line is all stdout carries: whoever reads it may stop
        # reading, and a full pipe must never block the server.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        while sim.alive():
            name = stop_signal(signal.sigtimedwait(_STOP_SIGNALS, 1.0))
            if name is not None:
                LOG.info('received %s, stopping', name)
                break
        else:
            LOG.error('a server thread died, stopping')
            return 1
    finally:
        sim.stop()
    return 0


def load_snapshot(data_dir):
    """The model's snapshot of a data directory, server running or not.

    ``exported_to`` of each storage instance comes from the export links
    on disk, which is what hosts see.
    """
    model = models.Model(data_dir)
    try:
        snapshot = model.snapshot()
    finally:
        model.close()
    exports = exports_on_disk(server.export_path(data_dir))
    for ai in snapshot['app_instances']:
        for si in ai['storage_instances']:
            si['exported_to'] = sorted(exports.get(si['iqn'], ()))
    return snapshot


def exports_on_disk(export_dir):
    """``{target_iqn: {initiator_iqn, ...}}`` from the export links."""
    found = {}
    if not os.path.isdir(export_dir):
        return found
    for host in sorted(os.listdir(export_dir)):
        host_dir = os.path.join(export_dir, host)
        if not os.path.isdir(host_dir):
            continue
        for name in os.listdir(host_dir):
            match = _LINK_RE.match(name)
            if match:
                found.setdefault(match.group('target'), set()).add(host)
    return found


def format_snapshot(snapshot):
    """A snapshot as readable text tables."""
    system = snapshot.get('system', {})
    capacity = snapshot.get('capacity_gib')
    ais = snapshot.get('app_instances', [])
    provisioned = sum(v['size'] for ai in ais
                      for si in ai['storage_instances']
                      for v in si['volumes'])
    lines = [
        'System: %s  sw_version %s  capacity %s  provisioned %d GiB' % (
            system.get('name', '?'), system.get('sw_version', '?'),
            'unlimited' if capacity is None else '%s GiB' % capacity,
            provisioned),
        'Tenants: %s' % ', '.join(snapshot.get('tenants', [])),
        '',
    ]
    rows = [('TENANT', 'APP INSTANCE', 'NAME', 'STATE', 'SI', 'VOLUME',
             'GiB', 'VOL STATE', 'ACL', 'EXPORTED TO')]
    for ai in ais:
        for si in ai['storage_instances'] or [{}]:
            acl = si.get('acl_policy') or {}
            acl_names = ([p.rsplit('/', 1)[-1]
                          for p in _ref_paths(acl.get('initiators'))]
                         + ['group:' + p.rsplit('/', 1)[-1]
                            for p in _ref_paths(acl.get('initiator_groups'))])
            for vol in si.get('volumes') or [{}]:
                rows.append((
                    ai['tenant'], ai['id'], ai['name'], ai['admin_state'],
                    si.get('name', '-'), vol.get('name', '-'),
                    str(vol.get('size', '-')), vol.get('op_state', '-'),
                    ','.join(acl_names) or '-',
                    ','.join(si.get('exported_to') or []) or '-'))
    if len(rows) == 1:
        lines.append('No app instances.')
    else:
        lines.extend(_table(rows))
    initiators = snapshot.get('initiators') or []
    if initiators:
        lines.append('')
        lines.extend(_table(
            [('TENANT', 'INITIATOR', 'NAME')]
            + [(i.get('tenant', '-'), i.get('id', '-'), i.get('name', '-'))
               for i in initiators]))
    return '\n'.join(lines) + '\n'


def _ref_paths(refs):
    paths = []
    for ref in refs or ():
        paths.append(ref.get('path', '') if isinstance(ref, dict) else ref)
    return paths


def _table(rows):
    table = prettytable.PrettyTable(rows[0], border=False, align='l',
                                    left_padding_width=0,
                                    right_padding_width=2)
    table.add_rows(rows[1:])
    return [line.rstrip() for line in table.get_string().splitlines()]


def stop_signal(received):
    """The name of the stop signal ``sigtimedwait`` returned, else None.

    Some sandboxed kernels wake ``sigtimedwait`` with a siginfo that names
    no signal at all (seen: si_signo 1799853328, while nothing was sent);
    that is not a request to stop.
    """
    if received is None or received.si_signo not in _STOP_SIGNALS:
        if received is not None:
            LOG.warning('ignoring a wake-up without a stop signal '
                        '(si_signo %r)', received.si_signo)
        return None
    return signal.Signals(received.si_signo).name


def status(args):
    if not os.path.exists(server.state_path(args.data_dir)):
        sys.stderr.write('no simulator state in %s\n' % args.data_dir)
        return 1
    snapshot = load_snapshot(args.data_dir)
    if args.json:
        sys.stdout.write(json.dumps(snapshot, indent=2, sort_keys=True)
                         + '\n')
    else:
        sys.stdout.write(format_snapshot(snapshot))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == 'serve':
        logging.basicConfig(
            stream=sys.stderr, level=getattr(logging, args.log_level),
            format='%(asctime)s %(levelname)s %(name)s %(message)s')
        return serve(args)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    return status(args)


if __name__ == '__main__':
    sys.exit(main())
