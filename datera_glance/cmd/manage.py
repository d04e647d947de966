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

"""``datera-glance-manage``: what the Datera store keeps on its cluster.

Reads glance-api's own configuration files and acts on one Datera backend
as glance-api would::

    datera-glance-manage --config-file /etc/glance/glance-api.conf list
    datera-glance-manage ... verify --all
    datera-glance-manage ... purge --older-than 1d --glance-db mysql+...
    datera-glance-manage ... exports --cleanup

Every error is one line on standard error and a non-zero exit status.
"""

import json
import logging as std_logging
import os
import re
import sys
import warnings

from oslo_config import cfg
import prettytable

from datera_glance.i18n import _
from datera_glance import inventory

PROG = 'datera-glance-manage'
STORE_TYPE = 'datera'
_DURATION = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$')
_SECONDS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class CommandError(Exception):
    """An error to report in one line, with an exit status."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def parse_duration(text):
    """Seconds in ``30s``, ``15m``, ``1h``, ``1d``, ``2w`` or ``90``."""
    match = _DURATION.match(str(text))
    if not match:
        raise CommandError(_('invalid duration %r (e.g. 30m, 1h, 1d, 0s)')
                           % text, 2)
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _add_commands(subparsers):
    sub = subparsers.add_parser(
        'list', help=_('one row per image app instance of the tenant'))
    sub.add_argument('--state', default='all',
                     choices=('all',) + inventory.STATES)
    sub.add_argument('--format', default='table', choices=('table', 'json'))

    sub = subparsers.add_parser(
        'verify', help=_('re-read complete images and compare checksums'))
    sub.add_argument('image_ids', nargs='*', metavar='IMAGE_ID')
    sub.add_argument('--all', action='store_true',
                     help=_('every complete image'))

    sub = subparsers.add_parser(
        'purge', help=_('remove abandoned uploads and, given glance\'s '
                        'database, images glance no longer has'))
    sub.add_argument('--older-than', default='1h', metavar='DURATION',
                     help=_('idle time before an incomplete upload goes '
                            '(default 1h; 0s allowed)'))
    sub.add_argument('--glance-db', metavar='URL',
                     help=_('glance\'s database URL ([database] '
                            'connection) to find orphans'))
    sub.add_argument('--yes', action='store_true',
                     help=_('remove; without it, only say what would go'))

    sub = subparsers.add_parser(
        'exports', help=_('this host\'s exports no live process holds'))
    sub.add_argument('--cleanup', action='store_true',
                     help=_('release them'))


CLI_OPTS = [
    cfg.BoolOpt('verbose', short='v', default=False,
                help=_('log what the store does on standard error')),
    cfg.StrOpt('backend',
               help=_('Datera backend of enabled_backends to act on '
                      '(default: the default backend if it is Datera, '
                      'else the only Datera backend)')),
    cfg.SubCommandOpt('command', title=_('commands'), handler=_add_commands),
]
_CONFIG_OPTS = [cfg.DictOpt('enabled_backends', default={})]
_GLANCE_STORE_OPTS = [cfg.StrOpt('default_backend'),
                      cfg.ListOpt('stores', default=[])]


def _backend(conf):
    """The backend group to read the Datera options from."""
    datera = sorted(name for name, kind in conf.enabled_backends.items()
                    if kind == STORE_TYPE)
    if conf.backend:
        if conf.backend not in datera:
            raise CommandError(_('%(name)s is not a Datera backend of '
                                 'enabled_backends (Datera backends: '
                                 '%(all)s)') % {
                'name': conf.backend, 'all': ', '.join(datera) or '-'}, 2)
        return conf.backend
    if datera:
        default = conf.glance_store.default_backend
        if default in datera:
            return default
        if len(datera) == 1:
            return datera[0]
        raise CommandError(_('several Datera backends (%s): choose one '
                             'with --backend') % ', '.join(datera), 2)
    if STORE_TYPE in conf.glance_store.stores:
        return None     # legacy [glance_store] layout
    raise CommandError(_('no Datera backend in the configuration: set '
                         'enabled_backends = <name>:datera, or stores = '
                         'datera in [glance_store]'), 2)


def load_store(conf):
    """The configured Datera store, as glance-api would build it."""
    from datera_glance import store as store_module

    backend = _backend(conf)
    store = store_module.Store(conf, backend=backend)
    store.configure_add()
    return store


def _state_label(volume):
    if volume.state != inventory.INCOMPLETE:
        return volume.state
    return '%s (%s)' % (volume.state, _('in progress') if volume.in_progress
                        else _('abandoned'))


def _print_table(volumes):
    table = prettytable.PrettyTable([
        _('Image ID'), _('State'), _('Size (bytes)'), _('Volume GiB'),
        _('MD5'), _('Multihash'), _('Created'), _('Exported to')])
    table.align = 'l'
    for v in volumes:
        table.add_row([
            v.image_id, _state_label(v),
            '-' if v.size is None else v.size,
            '-' if v.volume_gib is None else v.volume_gib,
            v.checksum or '-', v.hash_algo or '-',
            inventory.iso_time(v.created) or '-',
            ', '.join(v.exported_to) or '-'])
    print(table)


def cmd_list(conf, store):
    volumes = inventory.image_volumes(store)
    wanted = conf.command.state
    if wanted != 'all':
        volumes = [v for v in volumes if v.state == wanted]
    if conf.command.format == 'json':
        rows = []
        for v in volumes:
            row = v.as_dict()
            row['exported_to'] = v.exported_to
            rows.append(row)
        print(json.dumps(rows, indent=2, sort_keys=True))
    else:
        _print_table(volumes)
    return 0


class _Progress:
    """A progress bar on a terminal, nothing elsewhere."""

    def __init__(self, image_id, total):
        self._bar = None
        if sys.stdout.isatty():
            import tqdm
            self._bar = tqdm.tqdm(total=total, unit='B', unit_scale=True,
                                  unit_divisor=1024, desc=image_id[:8],
                                  leave=False)

    def __call__(self, n):
        if self._bar is not None:
            self._bar.update(n)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def cmd_verify(conf, store):
    ids = conf.command.image_ids
    if not ids and not conf.command.all:
        raise CommandError(_('name images to verify, or use --all'), 2)
    volumes = {v.image_id: v for v in inventory.image_volumes(store)}
    if conf.command.all:
        ids = sorted(set(ids) | {i for i, v in volumes.items()
                                 if v.state == inventory.COMPLETE})
    failed = []
    for image_id in ids:
        volume = volumes.get(image_id)
        if volume is None:
            ok, detail = False, _('no such image on this store')
        elif volume.state != inventory.COMPLETE:
            ok, detail = False, _('not a complete image (%s)') % (
                volume.state)
        else:
            progress = _Progress(image_id, volume.size)
            try:
                ok, detail = inventory.verify(store, volume, progress)
            finally:
                progress.close()
        print('%s %s: %s' % (_('OK') if ok else _('FAILED'), image_id,
                             detail), flush=True)
        if not ok:
            failed.append(image_id)
    if failed:
        raise CommandError(_('%(n)d of %(all)d images failed verification: '
                             '%(ids)s') % {'n': len(failed), 'all': len(ids),
                                           'ids': ', '.join(failed)})
    print(_('%d images verified') % len(ids))
    return 0


def _glance_images(url, image_ids):
    """{image id: status} of these images in glance's database."""
    import sqlalchemy

    if not image_ids:
        return {}
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as db:
            rows = db.execute(sqlalchemy.text(
                'SELECT id, status, deleted FROM images WHERE id IN :ids'
            ).bindparams(sqlalchemy.bindparam('ids', expanding=True)),
                {'ids': list(image_ids)}).fetchall()
    except Exception as e:
        raise CommandError(_('cannot read glance\'s database (--glance-db): '
                           '%s') % str(e).splitlines()[0])
    return {row[0]: ('deleted' if row[2] else row[1]) for row in rows}


def cmd_purge(conf, store):
    older_than = parse_duration(conf.command.older_than)
    volumes = inventory.image_volumes(store)
    glance_images = None
    if conf.command.glance_db:
        glance_images = _glance_images(conf.command.glance_db,
                                       [v.image_id for v in volumes])
    picked = inventory.purge_candidates(volumes, older_than, glance_images)
    if not picked:
        print(_('Nothing to purge.'))
        return 0
    errors = 0
    for volume, reason in picked:
        if not conf.command.yes:
            print(_('Would remove %(id)s: %(reason)s') % {
                'id': volume.image_id, 'reason': reason})
            continue
        try:
            inventory.remove(store, volume)
        except Exception as e:
            errors += 1
            print(_('Could not remove %(id)s: %(e)s') % {
                'id': volume.image_id, 'e': e})
            continue
        print(_('Removed %(id)s: %(reason)s') % {
            'id': volume.image_id, 'reason': reason})
    if not conf.command.yes:
        print(_('Dry run: nothing was removed; add --yes to remove '
                '%d app instances.') % len(picked))
    if errors:
        raise CommandError(_('%d app instances could not be removed') %
                           errors)
    return 0


def cmd_exports(conf, store):
    stale = inventory.stale_exports(store, inventory.image_volumes(store))
    iqn = store.attacher.initiator_iqn
    if not stale:
        print(_('No export of this host (%s) is left without a holder.')
              % iqn)
        return 0
    errors = 0
    for volume in stale:
        if not conf.command.cleanup:
            print(_('%(id)s is exported to this host (%(iqn)s) and held by '
                    'no process') % {'id': volume.image_id, 'iqn': iqn})
        elif inventory.release(store, volume.image_id):
            print(_('Released %s') % volume.image_id)
        else:
            errors += 1
            print(_('Could not release %s') % volume.image_id)
    if errors:
        raise CommandError(_('%d exports could not be released') % errors)
    return 0


COMMANDS = {'list': cmd_list, 'verify': cmd_verify, 'purge': cmd_purge,
            'exports': cmd_exports}


def _setup_privsep():
    # As root, os-brick's privileged calls run in this process; otherwise
    # they go through rootwrap, as glance-api's do.
    if os.geteuid() == 0:
        from os_brick.privileged import default
        default.set_client_mode(False)


def main(argv=None):
    # Libraries below the store warn about their own dependencies
    # (eventlet); an operator's terminal is not the place for that.
    warnings.simplefilter('ignore')
    conf = cfg.CONF
    conf.register_cli_opts(CLI_OPTS)
    conf.register_opts(_CONFIG_OPTS)
    conf.register_opts(_GLANCE_STORE_OPTS, group='glance_store')
    try:
        conf(sys.argv[1:] if argv is None else argv, project='glance',
             prog=PROG, default_config_files=cfg.find_config_files(
                 project='glance', prog='glance-api'))
        # The store's log lines are for glance-api's log; here the error,
        # if any, is said once, below.
        std_logging.basicConfig(
            level=std_logging.INFO if conf.verbose else std_logging.CRITICAL,
            stream=sys.stderr, format='%(levelname)s %(name)s %(message)s')
        _setup_privsep()
        store = load_store(conf)
        return COMMANDS[conf.command.name](conf, store)
    except CommandError as e:
        print('%s: %s' % (PROG, e), file=sys.stderr)
        return e.status
    except cfg.Error as e:
        print('%s: %s' % (PROG, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        message = str(e).strip().splitlines()
        print('%s: %s' % (PROG, message[0] if message else
                          type(e).__name__), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
