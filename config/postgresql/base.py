"""Django's PostgreSQL backend with two changes: a quiet connection passes its health check
without a query, and public ids get no ``LIKE`` index (``schema``).

With ``CONN_HEALTH_CHECKS``, Django runs ``SELECT 1`` on a persistent connection before the
first query of every request (and of every relay message, and every task): a whole round trip,
and a second PostgreSQL statement for an API send whose own work is one. The check exists to
replace a connection the server closed while it sat idle. An idle connection is sent nothing
unless the server is ending it: a backend that is terminated, shut down or timed out sends an
error and closes the socket, and either makes the socket readable. So a socket with nothing to
read is usable without asking; one with data waiting (or a closed one) gets Django's own check,
then a reconnect when it fails. A connection that breaks during a request still fails that
request and is replaced before the next one, as with Django's check.
"""

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper

from config.postgresql.schema import DatabaseSchemaEditor


def socket_is_quiet(connection) -> bool:
    """Whether nothing has arrived on this open psycopg connection since its last use."""
    if connection is None or connection.closed:
        return False
    poller = select.poll()
    poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class DatabaseWrapper(PostgresDatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor

    def is_usable(self):
        return socket_is_quiet(self.connection) or super().is_usable()
