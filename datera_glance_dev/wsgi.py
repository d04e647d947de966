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

"""glance-api's WSGI application for the test glance-api.

The same ``glance.wsgi.api:application`` operators serve, with one change
to how it talks to SQLite, the database that stands in for glance's MySQL
here: oslo.db opens every SQLite transaction with a deferred ``BEGIN``, so
two requests served at once that both read and then write (two uploads
moving their images to ``saving``) deadlock, and SQLite fails one of them
at once with "database is locked". Opening transactions with ``BEGIN
IMMEDIATE`` makes the second one wait for the first (up to the
connection's timeout) instead. Nothing here touches the store driver.
"""

import sqlalchemy
from sqlalchemy import event


def _begin_immediate(conn, cursor, statement, parameters, context,
                     executemany):
    if conn.dialect.name == 'sqlite' and statement.strip() == 'BEGIN':
        statement = 'BEGIN IMMEDIATE'
    return statement, parameters


event.listen(sqlalchemy.engine.Engine, 'before_cursor_execute',
             _begin_immediate, retval=True)

from glance.wsgi.api import application  # noqa: E402,F401,H306
