"""/healthz: 200 when the database and the broker answer, 503 naming the one that does not."""

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

from tests.conftest import assert_exact_error, assert_ok, free_port


def test_it_is_200_when_everything_answers(client, db):
    response = client.get("/healthz")
    assert assert_ok(response) == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert client.get("/healthz/").status_code == 200


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:{port}/0", "amqp://guest:guest@127.0.0.1:{port}//"])
def test_it_is_503_when_the_broker_is_unreachable(client, db, settings, broker):
    settings.CELERY_BROKER_URL = broker.format(port=free_port())  # nothing listens there
    response = client.get("/healthz")
    assert_exact_error(response, 503, "service_unavailable", "A backing service is down.",
                       {"database": "ok", "broker": "error: unreachable"})


def test_it_is_503_when_the_filesystem_broker_folder_is_gone(client, db, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    response = client.get("/healthz")
    assert_exact_error(response, 503, "service_unavailable", "A backing service is down.",
                       {"database": "ok", "broker": "error: unreachable"})


def test_it_is_503_when_the_database_is_unreachable(client, db, monkeypatch, tmp_path):
    dead = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        dead.update({"HOST": "127.0.0.1", "PORT": str(free_port()), "OPTIONS": {"connect_timeout": 2}})
    else:
        dead.update({"NAME": str(tmp_path / "no" / "such" / "dir" / "db.sqlite3")})
    unreachable = ConnectionHandler({"default": dead})["default"]
    monkeypatch.setattr("config.views.connection", unreachable)

    response = client.get("/healthz")

    assert_exact_error(response, 503, "service_unavailable", "A backing service is down.",
                       {"database": "error: OperationalError", "broker": "ok"})
    unreachable.close()
