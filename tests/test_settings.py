"""Run modes and environment parsing (docs/run-modes.md, docs/configuration.md).

Settings are read once per process, so each mode is loaded in a fresh interpreter.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": str(settings.CACHES["default"]["LOCATION"]),
    "broker": settings.CELERY_BROKER_URL,
    "email_backend": settings.EMAIL_BACKEND,
    "outbox": str(settings.MAILROOM_OUTBOX_DIR),
    "embedded": settings.EMBEDDED,
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "secret_key_len": len(settings.SECRET_KEY),
}))
"""


def _settings_in(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "MAILROOM_", "EMAIL_", "CELERY_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "MAILROOM_VAR_DIR": str(tmp_path / "var"),
                  **env})
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {PROBE}"], cwd=ROOT,
                          env=clean, capture_output=True, text=True, timeout=60, check=False)


def _probe(env: dict[str, str], tmp_path: Path) -> dict:
    result = _settings_in(env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_needs_no_server(tmp_path):
    var = tmp_path / "var"
    probe = _probe({}, tmp_path)
    assert probe == {
        "engine": "django.db.backends.sqlite3",
        "db_name": str(var / "mailroom.sqlite3"),
        "cache": "django.core.cache.backends.filebased.FileBasedCache",
        "cache_location": str(var / "cache"),
        "broker": "filesystem://",
        "email_backend": "emails.providers.outbox.OutboxEmailBackend",
        "outbox": str(var / "outbox"),
        "embedded": True,
        "debug": False,
        "allowed_hosts": ["localhost", "127.0.0.1"],
        "secret_key_len": probe["secret_key_len"],
    }
    # A generated secret key is kept in var/ (owner-only) so sessions survive restarts.
    key_file = var / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) == probe["secret_key_len"] >= 50
    assert _probe({}, tmp_path)["secret_key_len"] == probe["secret_key_len"]
    assert (var / "broker" / "out").is_dir() and (var / "broker" / "processed").is_dir()


def test_database_and_redis_urls_switch_to_postgresql_and_redis(tmp_path):
    probe = _probe({"DATABASE_URL": "postgres://u:p@db.internal:5433/mail", "REDIS_URL": "redis://cache:6379/2",
                    "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "mail.example.com, api.example.com"},
                   tmp_path)
    assert probe["engine"] == "config.postgresql"  # Django's, with a cheaper health check
    assert probe["db_name"] == "mail"
    assert probe["cache"] == "config.cache.ReusingRedisCache"
    assert probe["cache_location"] == "redis://cache:6379/2"
    assert probe["broker"] == "redis://cache:6379/2"
    assert probe["embedded"] is False
    assert probe["allowed_hosts"] == ["mail.example.com", "api.example.com"]


def test_a_separate_broker_and_an_smtp_host_can_be_set(tmp_path):
    probe = _probe({"REDIS_URL": "redis://cache:6379/2", "CELERY_BROKER_URL": "amqp://rabbit//",
                    "EMAIL_HOST": "smtp.example.com"}, tmp_path)
    assert probe["broker"] == "amqp://rabbit//"
    assert probe["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    result = _settings_in({"DATABASE_URL": "postgres://u:p@db/mail"}, tmp_path)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DATABASE_URL is set" in result.stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("DJANGO_DEBUG", "maybe", "DJANGO_DEBUG must be a boolean (true/false), got 'maybe'"),
    ("MAILROOM_KEY_CACHE_SECONDS", "half", "MAILROOM_KEY_CACHE_SECONDS must be an integer, got 'half'"),
    ("DNS_TIMEOUT_SECONDS", "soon", "DNS_TIMEOUT_SECONDS must be a number, got 'soon'"),
])
def test_a_malformed_value_fails_loudly_at_startup(tmp_path, name, value, message):
    result = _settings_in({name: value}, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_an_empty_value_means_the_default(monkeypatch):
    for name in ("X_BOOL", "X_INT", "X_FLOAT", "X_LIST", "X_STR"):
        monkeypatch.setenv(name, "")
    assert env_bool("X_BOOL", True) is True  # an empty pass-through never turns a safe default off
    assert env_int("X_INT", 7) == 7
    assert env_float("X_FLOAT", 1.5) == 1.5
    assert env_list("X_LIST", ["a"]) == ["a"]
    assert env_str("X_STR", "d") == "d"


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                               ("0", False), ("False", False), ("no", False), ("off", False)])
def test_booleans_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_BOOL", raw)
    assert env_bool("X_BOOL", not expected) is expected


def test_bad_values_raise_improperly_configured(monkeypatch):
    monkeypatch.setenv("X", "nope")
    for reader, default in ((env_bool, True), (env_int, 1), (env_float, 1.0)):
        with pytest.raises(ImproperlyConfigured):
            reader("X", default)
    monkeypatch.setenv("X", " a, ,b ,")
    assert env_list("X", []) == ["a", "b"]
