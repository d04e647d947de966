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

"""Sessions: the keys ``PUT /login`` hands out, and their end."""

import secrets

from datera_edf_sim import exceptions

# dfs_sdk logs in again (once) only when a 401 carries exactly this text;
# any other 401 message is logged as a warning before it does the same.
EXPIRED_KEY_MESSAGE = ('The key provided with the request does not '
                       'correspond to a valid session.')


class SessionsMixin(object):
    """Login, session keys and their expiry."""

    def login(self, name, password, remote_server=None):
        """Check credentials and open a session.

        ``remote_server`` (an LDAP server name) is accepted and ignored:
        the simulator checks every user against its one account.

        :returns: the session key.
        """
        if name != self.username or password != self.password:
            raise exceptions.AuthError('Invalid user name or password')
        key = secrets.token_hex(16)
        expires = (self.clock() + self.key_ttl
                   if self.key_ttl is not None else None)
        with self._write() as db:
            # Forget dead sessions so the table does not grow forever.
            db.execute('DELETE FROM sessions WHERE expires < ?',
                       (self.clock(),))
            db.execute('INSERT INTO sessions VALUES (?, ?, ?)',
                       (key, name, expires))
        return key

    def check_key(self, key):
        """Raise AuthError unless ``key`` names a live session."""
        if key:
            row = self._read().execute(
                'SELECT expires FROM sessions WHERE key=?', (key,)).fetchone()
            if row is not None and (row['expires'] is None or
                                    row['expires'] > self.clock()):
                return
        raise exceptions.AuthError(EXPIRED_KEY_MESSAGE)

    def logout(self, key):
        with self._write() as db:
            db.execute('DELETE FROM sessions WHERE key=?', (key,))

    def expire_all_keys(self):
        """End every session now, as a cluster does when keys time out."""
        with self._write() as db:
            db.execute('DELETE FROM sessions')
