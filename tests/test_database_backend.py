"""config.postgresql: CONN_HEALTH_CHECKS without a SELECT 1 on a connection that is still open."""

import time

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoPostgresWrapper

from config.postgresql.base import DatabaseWrapper, socket_is_quiet

pytestmark = pytest.mark.django_db


@pytest.fixture
def persistent(requires_postgres):
    """A second connection to the test database, persistent and health-checked as in production."""
    wrapper = connections.create_connection("default")
    wrapper.settings_dict.update(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True)
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _new_request(wrapper) -> None:
    """What close_old_connections does at the start of a request, then the request's first query."""
    wrapper.close_if_unusable_or_obsolete()
    wrapper.health_check_done = False  # each request checks again before its first query
    wrapper.close_if_health_check_failed()


def _asked(monkeypatch) -> list:
    asked = []
    is_usable = DjangoPostgresWrapper.is_usable
    monkeypatch.setattr(DjangoPostgresWrapper, "is_usable", lambda self: asked.append(1) or is_usable(self))
    return asked


def test_the_backend_is_in_use(requires_postgres):
    assert type(connections["default"]) is DatabaseWrapper


def test_an_open_quiet_connection_is_kept_without_a_query(persistent, monkeypatch):
    asked = _asked(monkeypatch)
    backend_pid = persistent.connection.info.backend_pid
    for _ in range(3):
        _new_request(persistent)
        with persistent.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] == backend_pid  # the same connection, kept
    assert asked == []  # Django's own check would have run SELECT 1 three times


def test_a_connection_the_server_ended_is_checked_and_replaced(persistent, monkeypatch):
    asked = _asked(monkeypatch)
    old_pid = persistent.connection.info.backend_pid
    with connection.cursor() as cursor:  # as a database restart or an idle timeout would
        cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    deadline = time.monotonic() + 5
    while not persistent.connection.closed and time.monotonic() < deadline:
        # The server's goodbye makes the socket readable: from then on it is no longer quiet.
        if not socket_is_quiet(persistent.connection):
            break
        time.sleep(0.01)
    _new_request(persistent)
    assert asked == [1]  # not quiet: Django's check ran, failed, and closed the connection
    assert persistent.connection is None
    with persistent.cursor() as cursor:  # the request's query opens a fresh one
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


# --- the schema editor: no LIKE index on public ids -------------------------------------------


def _like_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND indexdef LIKE %s ORDER BY 1", ["%varchar_pattern_ops%"])
        return [name for (name,) in cursor.fetchall()]


def test_migrations_give_public_ids_no_like_index(requires_postgres):
    indexes = _like_indexes()
    assert indexes and not [name for name in indexes if "public_id" in name]
    assert any("username" in name for name in indexes)  # other varchar indexes keep theirs


def test_the_migration_drops_the_like_indexes_earlier_databases_have(requires_postgres):
    from importlib import import_module

    from django.db import connections

    migration = import_module("emails.migrations.0005_leaner_indexes")
    with connection.cursor() as cursor:  # what Django's own schema editor made before
        cursor.execute("CREATE INDEX emails_email_public_id_1b0f85d2_like "
                       "ON emails_email (public_id varchar_pattern_ops)")
    assert "emails_email_public_id_1b0f85d2_like" in _like_indexes()
    with connections["default"].schema_editor() as editor:
        migration.drop_public_id_like_indexes(None, editor)
    assert not [name for name in _like_indexes() if "public_id" in name]
