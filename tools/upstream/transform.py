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

"""Source transformations for the in-tree copy of the driver.

Every function here takes source text and returns source text; nothing
touches the file system. :func:`transform_module` chains them in the
order the generator uses:

1. the module's checked edits (:class:`Replace`, :class:`DropDefinition`,
   :class:`DropStatement`, :class:`DropListItem`), each of which must find
   exactly what it expects, so that a change to the driver that an edit
   no longer fits stops the generator with a message naming the edit
   instead of producing a silently different driver;
2. :func:`rename_modules`: ``datera_glance.X`` becomes
   ``glance_store._drivers.datera.X`` (and ``datera_glance.i18n``
   ``glance_store.i18n``), in code, docstrings and comments alike;
3. :func:`regroup_imports`: glance_store's own imports, wherever the
   renaming left them, become one sorted group after the others, as in
   glance_store's drivers (and as hacking's H306 wants them);
4. :func:`drop_unused_imports`: imports that the edits left unused;
5. :func:`reflow_long_lines`: comments and docstring paragraphs that the
   longer names pushed past 79 columns are wrapped again;
6. :func:`validate`: the result compiles, pyflakes has nothing to say
   and no line is longer than 79 columns.
"""

import ast
import dataclasses
import re
import textwrap

from pyflakes import checker as pyflakes_checker
from pyflakes import messages as pyflakes_messages

MAX_LINE = 79
#: Width of reflowed comments and docstring paragraphs (as the driver's).
REFLOW_WIDTH = 76


class TransformError(Exception):
    """The driver's source no longer fits an edit, or the result is bad."""


# -- line surgery -----------------------------------------------------------

def _is_blank(line):
    return not line.strip()


def _is_comment(line):
    return line.lstrip().startswith('#')


def _remove_lines(lines, start, end, with_comments=True):
    """Remove ``lines[start:end]`` and keep the blank lines around it sane.

    The comment lines directly above the block (no blank line between)
    describe it and go with it. The blank lines above and below the
    removed block are merged into the longer of the two runs, so that
    removing a definition between two others keeps two blank lines, and
    removing a statement inside a function keeps at most one.
    """
    if with_comments:
        while start > 0 and _is_comment(lines[start - 1]):
            start -= 1
    above = 0
    while start - above > 0 and _is_blank(lines[start - above - 1]):
        above += 1
    below = 0
    while end + below < len(lines) and _is_blank(lines[end + below]):
        below += 1
    keep = max(above, below)
    if start - above == 0 or end + below == len(lines):
        keep = 0        # no blank lines at either end of the file
    return lines[:start - above] + ['\n'] * keep + lines[end + below:]


def _node_lines(node):
    """0-based [start, end) line range of a node, decorators included."""
    start = node.lineno
    for decorator in getattr(node, 'decorator_list', ()):
        start = min(start, decorator.lineno)
    return start - 1, node.end_lineno


def _parse(text, where):
    try:
        return ast.parse(text)
    except SyntaxError as e:
        raise TransformError('%s: not valid Python after the edits: %s'
                             % (where, e))


def _scope(tree, qualname, where):
    """The module (qualname None) or the class/function named qualname."""
    node = tree
    if not qualname:
        return node
    for part in qualname.split('.'):
        found = [child for child in getattr(node, 'body', ())
                 if isinstance(child, (ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef)) and
                 child.name == part]
        if len(found) != 1:
            raise TransformError('%s: no single definition %s (of %s)'
                                 % (where, part, qualname))
        node = found[0]
    return node


def _defined_names(node):
    if isinstance(node, (ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


# -- checked edits ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Replace:
    """Replace text that must occur exactly ``count`` times."""

    old: str
    new: str
    count: int = 1

    def apply(self, text, where):
        found = text.count(self.old)
        if found != self.count:
            raise TransformError(
                '%s: Replace(%r...) found the text %d times, expected %d; '
                'update the edit in tools/upstream/driver.py'
                % (where, self.old[:60], found, self.count))
        return text.replace(self.old, self.new)


@dataclasses.dataclass(frozen=True)
class DropDefinition:
    """Remove a function, class or assignment, with its comment lines.

    ``qualname`` is ``name`` (module level) or ``Class.name``.
    """

    qualname: str

    def apply(self, text, where):
        tree = _parse(text, where)
        scope_name, _dot, name = self.qualname.rpartition('.')
        scope = _scope(tree, scope_name, where)
        found = [node for node in scope.body if name in _defined_names(node)]
        if len(found) != 1:
            raise TransformError(
                '%s: DropDefinition(%r) found %d definitions, expected 1; '
                'update the edit in tools/upstream/driver.py'
                % (where, self.qualname, len(found)))
        lines = text.splitlines(keepends=True)
        start, end = _node_lines(found[0])
        return ''.join(_remove_lines(lines, start, end))


@dataclasses.dataclass(frozen=True)
class DropStatement:
    """Remove the one statement of a scope whose first line starts so.

    ``scope`` is None for the module, else ``func`` or ``Class.method``;
    only the statements directly in that scope's body are looked at.
    """

    scope: str
    startswith: str

    def apply(self, text, where):
        tree = _parse(text, where)
        scope = _scope(tree, self.scope, where)
        lines = text.splitlines(keepends=True)
        found = [node for node in scope.body
                 if lines[node.lineno - 1].strip().startswith(
                     self.startswith)]
        if len(found) != 1:
            raise TransformError(
                '%s: DropStatement(%r, %r) found %d statements, expected 1; '
                'update the edit in tools/upstream/driver.py'
                % (where, self.scope, self.startswith, len(found)))
        start, end = _node_lines(found[0])
        return ''.join(_remove_lines(lines, start, end))


@dataclasses.dataclass(frozen=True)
class DropListItem:
    """Remove calls named by their first argument from a module-level list.

    For option lists: ``DropListItem('_OPTS', ('opt_a', 'opt_b'))``
    removes ``cfg.XxxOpt('opt_a', ...)`` and ``cfg.XxxOpt('opt_b', ...)``.
    Every name must be found, each item on lines of its own.
    """

    variable: str
    names: tuple

    def apply(self, text, where):
        for name in self.names:
            text = self._drop(text, name, where)
        return text

    def _drop(self, text, name, where):
        tree = _parse(text, where)
        lists = [node.value for node in tree.body
                 if self.variable in _defined_names(node) and
                 isinstance(node.value, ast.List)]
        if len(lists) != 1:
            raise TransformError('%s: DropListItem: no single list %s'
                                 % (where, self.variable))
        items = [elt for elt in lists[0].elts
                 if isinstance(elt, ast.Call) and elt.args and
                 isinstance(elt.args[0], ast.Constant) and
                 elt.args[0].value == name]
        if len(items) != 1:
            raise TransformError(
                '%s: DropListItem(%r): found %d items named %r, expected 1; '
                'update the edit in tools/upstream/driver.py'
                % (where, self.variable, len(items), name))
        item = items[0]
        lines = text.splitlines(keepends=True)
        before = lines[item.lineno - 1][:item.col_offset]
        after = lines[item.end_lineno - 1][item.end_col_offset:]
        if before.strip() or after.strip() not in (',', ''):
            raise TransformError('%s: DropListItem: %r does not stand on '
                                 'lines of its own' % (where, name))
        return ''.join(_remove_lines(lines, item.lineno - 1,
                                     item.end_lineno, with_comments=False))


def apply_edits(text, edits, where):
    """Apply the edits in order; see the classes above."""
    for edit in edits:
        text = edit.apply(text, where)
    return text


# -- renaming -----------------------------------------------------------------

def rename_modules(text, module_map):
    """Rewrite dotted module names by their longest prefix in module_map.

    ``module_map`` maps old dotted names to new ones, for example
    ``{'datera_glance': 'glance_store._drivers.datera',
    'datera_glance.i18n': 'glance_store.i18n'}``. A name is rewritten
    wherever it stands as a whole word: ``from datera_glance import x``,
    ``datera_glance.store``, ``'datera_glance'`` and prose alike, but not
    ``datera_glance_rootwrap_path``, which merely starts the same way.
    """
    roots = sorted({old.split('.')[0] for old in module_map},
                   key=len, reverse=True)
    pattern = re.compile(r'(?<![\w.])((?:%s)(?:\.[A-Za-z_]\w*)*)(?!\w)'
                         % '|'.join(re.escape(r) for r in roots))
    keys = sorted(module_map, key=len, reverse=True)

    def replace(match):
        name = match.group(1)
        for old in keys:
            if name == old or name.startswith(old + '.'):
                return module_map[old] + name[len(old):]
        return name

    return pattern.sub(replace, text)


# -- imports ----------------------------------------------------------------

def _import_module(node):
    if isinstance(node, ast.ImportFrom):
        return node.module if not node.level else None
    names = {alias.name for alias in node.names}
    return names.pop() if len(names) == 1 else None


def _in_package(module, package):
    return module is not None and (module == package or
                                   module.startswith(package + '.'))


def import_sort_key(line):
    """hacking's H306 order of one import line (``import_normalize``).

    ``from a.b import c`` sorts as ``import a.b.c``; comparison is
    case-insensitive.
    """
    words = line.split()
    if (line.startswith('from ') and ',' not in line and
            len(words) >= 4 and words[2] == 'import' and words[3] != '*' and
            (len(words) == 4 or (len(words) == 6 and words[4] == 'as'))):
        return '%s.%s' % (words[1], words[3])
    return words[1] if len(words) > 1 else line


def regroup_imports(text, package='glance_store'):
    """Move the package's top-level imports into one last, sorted group.

    Only the import block at the top of the module is touched: the
    imports before the first other statement. Other imports, blank lines
    and comments between them keep their order.
    """
    tree = ast.parse(text)
    header = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            header.append(node)
        elif header:
            break
    ours = [node for node in header
            if _in_package(_import_module(node), package)]
    if not ours:
        return text
    lines = text.splitlines(keepends=True)
    first, last = header[0].lineno - 1, header[-1].end_lineno
    moved = set()
    group = []
    for node in ours:
        start, end = _node_lines(node)
        moved.update(range(start, end))
        group.append(''.join(lines[start:end]))
    kept = []
    for index in range(first, last):
        if index in moved:
            continue
        line = lines[index]
        if _is_blank(line) and (not kept or _is_blank(kept[-1])):
            continue
        kept.append(line)
    while kept and _is_blank(kept[-1]):
        kept.pop()
    group.sort(key=lambda line: import_sort_key(line).lower())
    block = kept + (['\n'] if kept else []) + group
    return ''.join(lines[:first] + block + lines[last:])


def drop_unused_imports(text, filename='<driver>'):
    """Remove the import statements pyflakes reports as unused.

    An import marked ``# noqa`` is kept: it is there for its side effect.
    """
    while True:
        tree = _parse(text, filename)
        messages = pyflakes_checker.Checker(tree, filename=filename).messages
        lines = text.splitlines(keepends=True)
        unused = sorted({m.lineno for m in messages
                         if isinstance(m, pyflakes_messages.UnusedImport) and
                         '# noqa' not in lines[m.lineno - 1]})
        if not unused:
            return text
        lineno = unused[-1]
        nodes = [node for node in ast.walk(tree)
                 if isinstance(node, (ast.Import, ast.ImportFrom)) and
                 node.lineno == lineno]
        if len(nodes) != 1 or len(nodes[0].names) != 1:
            raise TransformError('%s:%d: an unused name in an import of '
                                 'several names' % (filename, lineno))
        start, end = _node_lines(nodes[0])
        text = ''.join(_remove_lines(lines, start, end))


# -- long lines ---------------------------------------------------------------

def _docstring_ranges(tree):
    """0-based inclusive line ranges of every docstring."""
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                             ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and
                    isinstance(first.value, ast.Constant) and
                    isinstance(first.value.value, str)):
                ranges.append((first.lineno - 1, first.end_lineno - 1))
    return ranges


def _wrap(words_lines, indent, prefix=''):
    text = ' '.join(line.strip()[len(prefix):].strip()
                    for line in words_lines)
    lead = indent + prefix
    wrapped = textwrap.fill(text, width=REFLOW_WIDTH, initial_indent=lead,
                            subsequent_indent=lead, break_long_words=False,
                            break_on_hyphens=False)
    return [line + '\n' for line in wrapped.split('\n')]


def _paragraph(lines, index, low, high, same):
    """[start, end) of the run of lines around index for which same()."""
    start = index
    while start - 1 >= low and same(lines[start - 1]):
        start -= 1
    end = index + 1
    while end <= high and same(lines[end]):
        end += 1
    return start, end


def _comment_block(lines, index, indent):
    """The comment block around lines[index], wrapped again."""
    def same(other):
        return other.startswith(indent + '# ')
    start, end = _paragraph(lines, index, 0, len(lines) - 1, same)
    return start, end, _wrap(lines[start:end], indent, '# ')


def reflow_comments(text):
    """Wrap again the comment blocks with lines past 79 columns.

    For files that are not Python (rootwrap filters): other lines are
    left as they are.
    """
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _is_comment(line) and len(line.rstrip('\n')) > MAX_LINE:
            indent = line[:len(line) - len(line.lstrip())]
            start, end, new = _comment_block(lines, index, indent)
            lines[start:end] = new
            index = start + len(new)
        else:
            index += 1
    return ''.join(lines)


def reflow_long_lines(text, filename='<driver>'):
    """Wrap again comment blocks and docstring paragraphs past 79 columns.

    Code lines that are too long are left for :func:`validate` to report:
    they need a change in the generator, not a reflow.
    """
    while True:
        lines = text.splitlines(keepends=True)
        long_lines = [i for i, line in enumerate(lines)
                      if len(line.rstrip('\n')) > MAX_LINE]
        if not long_lines:
            return text
        index = long_lines[0]
        line = lines[index]
        indent = line[:len(line) - len(line.lstrip())]
        if _is_comment(line):
            start, end, new = _comment_block(lines, index, indent)
        else:
            ranges = [(low, high) for low, high in
                      _docstring_ranges(ast.parse(text))
                      if low < index < high]
            if not ranges:
                raise TransformError('%s:%d: line too long after renaming, '
                                     'not in a comment or docstring'
                                     % (filename, index + 1))
            low, high = ranges[0]

            def same(other, indent=indent):
                return (other.strip() and
                        other[:len(indent)] == indent and
                        not other[len(indent)].isspace() and
                        not other.lstrip()[:1] in (':', '*', '-', '.'))
            start, end = _paragraph(lines, index, low + 1, high - 1, same)
            new = _wrap(lines[start:end], indent)
        if any(len(n.rstrip('\n')) > MAX_LINE for n in new):
            raise TransformError('%s:%d: cannot wrap this line under %d '
                                 'columns' % (filename, index + 1, MAX_LINE))
        text = ''.join(lines[:start] + new + lines[end:])


# -- checks -------------------------------------------------------------------

def validate(text, filename='<driver>'):
    """Raise TransformError unless the module compiles and is clean."""
    try:
        tree = ast.parse(text, filename)
        compile(tree, filename, 'exec')
    except SyntaxError as e:
        raise TransformError('%s: does not compile: %s' % (filename, e))
    lines = text.splitlines()
    problems = ['%s:%d: %s' % (filename, m.lineno,
                               m.message % m.message_args)
                for m in pyflakes_checker.Checker(
                    tree, filename=filename).messages
                if '# noqa' not in lines[m.lineno - 1]]
    problems += ['%s:%d: longer than %d columns' % (filename, i, MAX_LINE)
                 for i, line in enumerate(lines, 1)
                 if len(line) > MAX_LINE]
    if problems:
        raise TransformError('\n'.join(problems))


def transform_module(text, edits, module_map, filename,
                     package='glance_store'):
    """The whole chain for one driver module; see the module docstring."""
    text = apply_edits(text, edits, filename)
    text = rename_modules(text, module_map)
    text = regroup_imports(text, package)
    text = drop_unused_imports(text, filename)
    text = reflow_long_lines(text, filename)
    validate(text, filename)
    return text
