"""Shared fixtures: two accounts, each with two sub-accounts and keys, API clients, an SMTP sink.

Every test can ask "can the other tenant see this?": ``tenants.a1`` and ``tenants.b1`` live in
different accounts, ``tenants.a1`` and ``tenants.a2`` in the same account.
"""

import os
import re
import threading
import time
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import principals
from tests.factories import AccountFactory, SubAccountFactory, make_key

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, available: bool) -> None:
    """Skip locally when a real service is missing; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required in CI but is not configured/reachable")
    pytest.skip(f"{name} not configured (set its URL to run this test)")


@pytest.fixture
def requires_postgres(settings):
    from django.db import connection

    require_service("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")


@pytest.fixture
def requires_redis(settings):
    require_service("Redis (REDIS_URL)", bool(os.environ.get("REDIS_URL")))


@pytest.fixture(autouse=True)
def _fresh_caches():
    principals.forget_all()
    cache.clear()
    yield
    principals.forget_all()


@dataclass
class Tenant:
    account: object
    subaccount: object
    live_key: str
    test_key: str
    account_key: str


@dataclass
class Tenants:
    a1: Tenant
    a2: Tenant
    b1: Tenant
    b2: Tenant
    extra: dict = field(default_factory=dict)


def _tenant(account, account_key: str, name: str) -> Tenant:
    subaccount = SubAccountFactory(account=account, name=name)
    return Tenant(
        account=account, subaccount=subaccount, account_key=account_key,
        live_key=make_key(account=account, subaccount=subaccount, kind="live"),
        test_key=make_key(account=account, subaccount=subaccount, kind="test"),
    )


@pytest.fixture
def tenants(db) -> Tenants:
    account_a = AccountFactory(name="Account A")
    account_b = AccountFactory(name="Account B")
    key_a = make_key(account=account_a, kind="account")
    key_b = make_key(account=account_b, kind="account")
    return Tenants(
        a1=_tenant(account_a, key_a, "a1"), a2=_tenant(account_a, key_a, "a2"),
        b1=_tenant(account_b, key_b, "b1"), b2=_tenant(account_b, key_b, "b2"),
    )


@pytest.fixture
def api():
    """``api(key)`` returns a DRF test client sending that key in the header for its kind."""

    def make(key: str | None = None, *, bearer: bool = False) -> APIClient:
        client = APIClient()
        if key is None:
            return client
        if bearer:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        elif key.startswith("mr_acct_"):
            client.credentials(HTTP_X_ACCOUNT_APIKEY=key)
        else:
            client.credentials(HTTP_X_SUBACCOUNT_APIKEY=key)
        return client

    return make


def assert_error(response, status: int, code: str) -> dict:
    """Asserts the error envelope and returns its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    assert body["error"]["status"] == status
    assert body["meta"]["request_id"] == response["X-Request-Id"]
    return body["error"]


def assert_exact_error(response, status: int, code: str, message: str, details: dict | None = None) -> None:
    """Asserts the whole error envelope: nothing more, nothing less."""
    assert_error(response, status, code)
    body = response.json()
    assert body == {
        "success": False,
        "error": {"code": code, "message": message, "status": status, "details": details or {}},
        "meta": {"request_id": response["X-Request-Id"], "timestamp": body["meta"]["timestamp"]},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["meta"]["timestamp"])


def assert_ok(response, status: int = 200) -> dict:
    """Asserts the success envelope and returns ``data``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True, body
    assert body["meta"]["request_id"] == response["X-Request-Id"]
    return body["data"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """An in-process aiosmtpd server that keeps every message it accepts."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        # Scripted replies, consumed one per message: e.g. "451 4.3.0 Try later" or "550 5.1.1 No".
        self.data_replies: list[str] = []
        self.rcpt_replies: dict[str, str] = {}
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import email
        import email.policy

        with self._lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.messages.append({
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "raw": envelope.original_content or envelope.content,
                "message": email.message_from_bytes(envelope.original_content or envelope.content,
                                                    policy=email.policy.default),
            })
        return "250 2.0.0 Ok: queued"

    def start(self):
        self.controller.start()
        self.port = self.controller.port
        return self

    def stop(self):
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages at the SMTP sink, got {len(self.messages)}")


@pytest.fixture
def smtp_sink(settings):
    """A real SMTP server on loopback; Django's SMTP backend is pointed at it."""
    sink = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    sink.stop()


@pytest.fixture(autouse=True)
def _fresh_domain_tracking_cache():
    """Domain tracking defaults are cached per process; ids repeat across rolled-back tests."""
    from domains import selectors

    selectors._tracking_cache.clear()
    yield
    selectors._tracking_cache.clear()


@pytest.fixture(scope="session")
def _dns_server_session():
    from tests.dns_server import LocalDnsServer

    server = LocalDnsServer().start()
    yield server
    server.stop()


@pytest.fixture
def dns_server(_dns_server_session, settings):
    """A real DNS server on loopback with no records; domain verification asks it alone."""
    _dns_server_session.reset()
    settings.DNS_NAMESERVERS = [_dns_server_session.address]
    # Generous so a loaded CI machine never turns an answer into a timeout; tests that make
    # the server hang ask for ``short_dns_timeout`` (tests/domains/conftest.py).
    settings.DNS_TIMEOUT_SECONDS = 3.0
    yield _dns_server_session
    _dns_server_session.reset()
