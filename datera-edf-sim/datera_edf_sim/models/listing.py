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

"""Filtering, sorting and paging of list answers.

The REST layer lists every entity through the model, then applies a
request's ``filter``, ``sort``, ``offset`` and ``limit`` with
:func:`query`.
"""

import re

from datera_edf_sim import exceptions

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000

# Filters ("filter=" in list requests): the subset of the API's query
# language that OpenStack drivers use.
_EQ_RE = re.compile(r'^(?P<field>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$')
_MATCH_RE = re.compile(
    r'^match\((?P<field>[A-Za-z_][A-Za-z0-9_]*),(?P<regex>.*)\)$')


def compile_filter(expression):
    """Compile a list filter into a predicate over entity dictionaries.

    Supported: ``field=value`` (exact, compared as text) and
    ``match(field,REGEX)`` (the whole field must match REGEX).
    """
    if expression is None or expression == '':
        return lambda entity: True
    m = _MATCH_RE.match(expression)
    if m:
        try:
            regex = re.compile(m.group('regex'))
        except re.error as e:
            raise exceptions.BadRequest(
                'Invalid regular expression in filter %r: %s'
                % (expression, e))
        field = m.group('field')
        return lambda entity: (
            field in entity and
            regex.fullmatch(str(entity[field])) is not None)
    m = _EQ_RE.match(expression)
    if m:
        field, value = m.group('field'), m.group('value')
        return lambda entity: (
            field in entity and str(entity[field]) == value)
    raise exceptions.BadRequest(
        'Unsupported filter expression %r' % expression)


def query(entities, filter=None, sort=None, offset=0, limit=None):
    """Filter, sort and page a list of entities.

    :returns: ``(page, total_count, limit)`` where ``total_count`` counts
        the entities after filtering and ``limit`` is the page size used.
    """
    predicate = compile_filter(filter)
    matches = [e for e in entities if predicate(e)]
    if sort:
        reverse = sort.startswith('-')
        key = sort.lstrip('-+')
        matches.sort(key=lambda e: str(e.get(key, '')), reverse=reverse)
    total = len(matches)
    if not limit:
        # Zero or absent: the default page size, or everything if smaller.
        limit = DEFAULT_LIST_LIMIT
    offset = offset or 0
    return matches[offset:offset + limit], total, limit
