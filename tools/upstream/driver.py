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

"""The in-tree driver: which of ``datera_glance`` goes upstream, and how.

Every module of ``datera_glance`` goes to ``glance_store/_drivers/datera/``
unless :data:`EXCLUDED` names it, so a module added to the driver comes
along without a change here. What stays out:

- ``i18n.py``: glance_store has its own (``glance_store.i18n``);
- ``inventory.py`` and ``cmd/``: ``datera-glance-manage``, an operator
  command of this package, not part of a store driver.

What changes on the way (:data:`EDITS`):

- the ``local`` transport is left out. It attaches the volumes that the
  EDF simulator of this repository exports; glance_store has no
  simulator, so in-tree it would be a test-only transport among the
  operator options. The options ``datera_transport``,
  ``datera_local_export_dir`` and ``datera_initiator_name`` (the last one
  only applies to ``local``) are not declared in-tree, the store always
  attaches with os-brick's iSCSI connector, and the code behind ``local``
  (``LocalTransport``, ``local_device_path``, the derived initiator name,
  the simulator's export link name) is removed;
- ``options.allow_default_store()`` patched ``default_store``'s choices
  at run time; in-tree ``'datera'`` is one of the choices in
  ``glance_store/backend.py`` itself, so the function and its call go,
  and so does ``list_opts()``: glance_store lists a driver's options
  through its ``OPTIONS`` attribute;
- dfs_sdk and os-brick are optional in glance_store (the ``datera``
  extra, as ``cinder`` and ``s3`` are): the store module imports without
  them, so that listing the options of every installed driver keeps
  working, and ``configure_add`` disables the store, naming the extra,
  when they are missing;
- the privsep context of the store's own privileged step is named after
  the in-tree package, and the rootwrap filters file is
  ``glance_datera_store.filters`` (glance_store's is
  ``glance_cinder_store.filters``).
"""

import ast
import os

from tools.upstream import transform

SOURCE_PACKAGE = 'datera_glance'
TARGET_PACKAGE = 'glance_store._drivers.datera'
TARGET_DIR = 'glance_store/_drivers/datera'

MODULE_MAP = {
    'datera_glance': TARGET_PACKAGE,
    'datera_glance.i18n': 'glance_store.i18n',
}

#: Paths under datera_glance/ that stay out (a trailing / is a folder).
EXCLUDED = ('i18n.py', 'inventory.py', 'cmd/')

#: Out-of-tree options that are not declared in-tree (the local transport).
LEFT_OUT_OPTIONS = ('datera_transport', 'datera_local_export_dir',
                    'datera_initiator_name')

ROOTWRAP_SOURCE = 'etc/glance/rootwrap.d/datera.filters'
ROOTWRAP_TARGET = 'etc/glance/rootwrap.d/glance_datera_store.filters'

R = transform.Replace

EDITS = {
    'store.py': [
        # default_store accepts 'datera' in-tree (glance_store/backend.py).
        transform.DropStatement(None, 'options.allow_default_store()'),
        # dfs_sdk and os-brick come with the optional 'datera' extra.
        R('from datera_glance import attach\n'
          'from datera_glance import edf\n', ''),
        R('\nLOG = logging.getLogger(__name__)\n',
          '\ntry:\n'
          '    from datera_glance import attach\n'
          '    from datera_glance import edf\n'
          'except ImportError:\n'
          '    # dfs_sdk or os-brick is missing: the datera extra\n'
          '    attach = None\n'
          '    edf = None\n'
          '\nLOG = logging.getLogger(__name__)\n'),
        R('        try:\n'
          '            edf_settings, attach_settings = '
          'self._read_options()\n',
          '        if edf is None or attach is None:\n'
          '            raise self._bad_config(_(\n'
          '                \'dfs_sdk and os-brick are not available \'\n'
          '                \'(pip install glance_store[datera])\'))\n'
          '        try:\n'
          '            edf_settings, attach_settings = '
          'self._read_options()\n'),
        # The local transport stays out of tree.
        transform.DropStatement('Store._read_options',
                                "if (conf.datera_transport == 'local'"),
        R('            transport=conf.datera_transport,\n', ''),
        R('            local_export_dir=conf.datera_local_export_dir,\n'
          '            initiator_name=conf.datera_initiator_name,\n', ''),
    ],
    'options.py': [
        transform.DropListItem('_DATERA_OPTS', LEFT_OUT_OPTIONS),
        R('    * True\n\nRelated options:\n    * datera_transport\n',
          '    * True\n\nRelated options:\n    * None\n'),
        transform.DropStatement('check', 'name = conf.datera_initiator_name'),
        transform.DropStatement('check', 'if name is not None'),
        transform.DropStatement('check',
                                "if conf.datera_transport == 'local'"),
        transform.DropDefinition('_IQN_RE'),
        R('``datera.filters`` file installed with this driver',
          '``glance_datera_store.filters`` file installed with glance_store'),
        transform.DropDefinition('list_opts'),
        transform.DropDefinition('allow_default_store'),
    ],
    'attach.py': [
        R("``extend``. ``iscsi`` is os-brick's iSCSI connector (what "
          "production\nuses); ``local`` is os-brick's LOCAL connector "
          "pointed at the by-path link\nthat the EDF simulator exports for "
          "this host, the way the iSCSI connector\nfinds its device under "
          "/dev/disk/by-path.\n",
          "``extend``: ``iscsi`` is os-brick's iSCSI connector.\n"),
        R('(see etc/glance/rootwrap.d/datera.filters)',
          '(see etc/glance/rootwrap.d/glance_datera_store.filters)'),
        R("    ``initiator_name`` None means os-brick's (the host's iSCSI "
          "initiator\n    name), else a stable name derived from the host "
          "name. ``lock_path``\n    None means ``[oslo_concurrency] "
          "lock_path``, else a private folder.\n",
          "    ``lock_path`` None means ``[oslo_concurrency] lock_path``, "
          "else a\n    private folder.\n"),
        R("    transport: str = 'iscsi'          # 'iscsi' | 'local'\n",
          "    transport: str = 'iscsi'\n"),
        R('    local_export_dir: str | None = None\n'
          '    initiator_name: str | None = None\n', ''),
        transform.DropDefinition('local_device_path'),
        R('def connection_properties(access, transport=\'iscsi\', '
          'use_multipath=False,\n'
          '                          initiator_iqn=None, '
          'local_export_dir=None):\n',
          'def connection_properties(access, transport=\'iscsi\', '
          'use_multipath=False):\n'),
        R('    IQN, LUN 0, not discovered; with multipath also every portal. '
          'For the\n    ``local`` transport it also holds ``device_path``, '
          'the export link\n    of the first portal for ``initiator_iqn`` '
          'under ``local_export_dir``.\n',
          '    IQN, LUN 0, not discovered; with multipath also every '
          'portal.\n'),
        transform.DropStatement('connection_properties',
                                "if transport == 'local'"),
        R("            'datera.filters (glance-api\\'s log shows the command "
          "after '\n",
          "            'glance_datera_store.filters (glance-api\\'s log shows "
          "the '\n            'command after '\n"),
        transform.DropDefinition('LocalTransport'),
        transform.DropDefinition('derived_initiator_name'),
        transform.DropDefinition('IQN_PREFIX'),
        R('    One per Store; two Attachers with different initiator names '
          'act as\n    two hosts (that is how tests prove multi-host '
          'behaviour in one\n    process).\n',
          '    One per Store.\n'),
        R('        Under ``iscsi`` that is the host\'s own name, the one '
          'iscsiadm\n        presents (``/etc/iscsi/initiatorname.iscsi``): '
          'a host without one\n        cannot attach, and '
          '``datera_initiator_name`` cannot change it, so\n        both are '
          'configuration errors. The ``local`` transport (the\n        '
          'simulator) presents ``datera_initiator_name``, else a stable '
          'name\n        derived from the host name.\n',
          '        That is the host\'s own name, the one iscsiadm presents\n'
          '        (``/etc/iscsi/initiatorname.iscsi``): a host without one '
          'cannot\n        attach, a configuration error.\n'),
        transform.DropStatement('Attacher._initiator_name',
                                "if self.settings.transport == 'local'"),
        transform.DropStatement('Attacher._initiator_name',
                                'if self.settings.initiator_name'),
        R("                'datera_glance_rootwrap_config "
          "(datera_transport = '\n"
          "                'iscsi)') % {'reason': reason, "
          "'file': INITIATOR_NAME_FILE})\n",
          "                'datera_glance_rootwrap_config') % {\n"
          "                    'reason': reason, "
          "'file': INITIATOR_NAME_FILE})\n"),
        R('            access, self.settings.transport, '
          'self.settings.use_multipath,\n'
          '            self.initiator_iqn, self.settings.local_export_dir)\n',
          '            access, self.settings.transport, '
          'self.settings.use_multipath)\n'),
    ],
    'names.py': [
        R('"""Names the driver and the EDF simulator must agree on.\n\n'
          'Kept apart, with nothing but the standard library and oslo.utils, '
          'so that\nboth import the one definition.\n"""',
          '"""iSCSI names as os-brick and udev write them."""'),
        transform.DropDefinition('export_link_name'),
    ],
    'privileged.py': [
        R("cfg_section='datera_glance_privileged'",
          "cfg_section='glance_store_datera_privileged'"),
    ],
    'edf/__init__.py': [
        transform.DropStatement(None, '_private_dir = '),
    ],
}


def source_modules(source_dir):
    """Relative paths of the driver's modules that go in-tree, sorted."""
    found = []
    for folder, dirs, files in os.walk(source_dir):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        for name in files:
            if not name.endswith('.py'):
                continue
            rel = os.path.relpath(os.path.join(folder, name), source_dir)
            rel = rel.replace(os.sep, '/')
            if not any(rel == e or (e.endswith('/') and rel.startswith(e))
                       for e in EXCLUDED):
                found.append(rel)
    return sorted(found)


def build(source_dir, rootwrap_file=None):
    """The in-tree driver's files: {path in glance_store: text}.

    :param source_dir: the ``datera_glance`` package folder
    :param rootwrap_file: the driver's rootwrap filters file, if any
    :raises transform.TransformError: an edit no longer fits the driver,
        or a generated module is not clean
    """
    files = {}
    modules = source_modules(source_dir)
    unused = set(EDITS) - set(modules)
    if unused:
        raise transform.TransformError(
            'edits for modules that are not in-tree: %s' % sorted(unused))
    for rel in modules:
        with open(os.path.join(source_dir, rel)) as f:
            text = f.read()
        files['%s/%s' % (TARGET_DIR, rel)] = transform.transform_module(
            text, EDITS.get(rel, ()), MODULE_MAP,
            '%s/%s' % (SOURCE_PACKAGE, rel))
    _check_no_excluded_imports(files)
    if rootwrap_file:
        with open(rootwrap_file) as f:
            files[ROOTWRAP_TARGET] = rootwrap_filters(f.read())
    return files


def _check_no_excluded_imports(files):
    """No generated module may use a module that stayed out of tree."""
    out = []
    for rel in EXCLUDED:
        name = rel.rstrip('/')
        if name.endswith('.py'):
            name = name[:-3]
        dotted = '%s.%s' % (TARGET_PACKAGE, name.replace('/', '.'))
        if name != 'i18n':
            out.append(dotted)
    for path, text in files.items():
        for dotted in out:
            head, _dot, tail = dotted.rpartition('.')
            if (dotted in text or
                    'from %s import %s\n' % (head, tail) in text):
                raise transform.TransformError(
                    '%s uses %s, which stays out of tree' % (path, dotted))


def rootwrap_filters(text):
    """The driver's rootwrap filters with the in-tree privsep context."""
    text = transform.Replace(
        '# glance-rootwrap command filters for the Datera glance store\n'
        '# (datera_glance).',
        '# glance-rootwrap command filters for the Datera EDF store of\n'
        '# glance_store (datera_glance).').apply(text, ROOTWRAP_SOURCE)
    return transform.reflow_comments(
        transform.rename_modules(text, MODULE_MAP))


def option_names(files):
    """The in-tree store's option names, in declaration order.

    Read from the generated options module's source (it is not importable
    here: its package is glance_store's).
    """
    tree = ast.parse(files['%s/options.py' % TARGET_DIR])
    for node in tree.body:
        if (isinstance(node, ast.Assign) and
                any(getattr(t, 'id', None) == '_DATERA_OPTS'
                    for t in node.targets)):
            return [elt.args[0].value for elt in node.value.elts]
    raise transform.TransformError('no _DATERA_OPTS in options.py')
