"""The relay started in-process on a free loopback port, real SMTP clients, real PostgreSQL/Redis.

The relay answers from its own threads with their own database connections, so every test
module here is transactional (``pytestmark = pytest.mark.django_db(transaction=True)``): a
test transaction would hide its rows from the relay.
"""

import email.policy
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.test import RequestFactory
from django_ratelimit.core import get_usage

from accounts.authentication import AUTH_FAILURE_GROUP
from accounts.throttling import KEY_GROUP
from emails.relay import credentials
from emails.relay.server import RelayConfig, relay_controller, stop
from emails.relay.tls import self_signed_certificate
from tests.conftest import assert_ok, free_port


@pytest.fixture(scope="session")
def relay_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed pair made by the relay's own generator (names: localhost, 127.0.0.1)."""
    return self_signed_certificate(tmp_path_factory.mktemp("relay-tls"), hostname="localhost")


@pytest.fixture(autouse=True)
def _relay_defaults(settings, requires_postgres, requires_redis):
    # Most relay tests are about SMTP, not domains: live credentials may use any sender here.
    # Tests of the verified-domain rule turn it back on.
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    credentials.forget_all()
    yield
    credentials.forget_all()


@pytest.fixture(autouse=True)
def dispatched(monkeypatch):
    """Dispatch publishes recorded instead of sent to a broker (no worker runs here); tests that
    deliver call ``email_dispatch`` themselves."""
    published: list[list[int]] = []
    from emails.services import accept

    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: published.append(list(ids)))
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: published.append(list(ids)))
    return published


@dataclass
class Login:
    username: str
    password: str
    credential: object


class Relay:
    def __init__(self, cert: Path, key: Path, *, implicit_tls: bool = False, allow_plaintext_auth: bool = False,
                 max_message_bytes: int = 10 * 1024 * 1024):
        self.cert = cert
        self.config = RelayConfig(host="127.0.0.1", port=free_port(), tls_cert=cert, tls_key=key,
                                  hostname="localhost", implicit_tls=implicit_tls,
                                  allow_plaintext_auth=allow_plaintext_auth, max_message_bytes=max_message_bytes,
                                  timeout_seconds=30)
        self.controller = relay_controller(self.config)
        self.handler = self.controller.handler

    @property
    def port(self) -> int:
        return self.config.port

    def start(self) -> "Relay":
        self.controller.start()
        return self

    def stop(self) -> None:
        stop(self.controller)

    def client_context(self) -> ssl.SSLContext:
        """Verifies the relay's certificate (and host name) like a careful client does."""
        return ssl.create_default_context(cafile=str(self.cert))

    def connect(self, *, source_ip: str = "127.0.0.1") -> smtplib.SMTP:
        if self.config.implicit_tls:
            client = smtplib.SMTP_SSL("localhost", self.port, context=self.client_context(), timeout=10,
                                      source_address=(source_ip, 0))
        else:
            client = smtplib.SMTP("localhost", self.port, timeout=10, source_address=(source_ip, 0))
        client.ehlo("client.example")
        return client

    def secure(self, *, source_ip: str = "127.0.0.1") -> smtplib.SMTP:
        client = self.connect(source_ip=source_ip)
        if not self.config.implicit_tls:
            client.starttls(context=self.client_context())
            client.ehlo("client.example")
        return client

    def login(self, login: Login, **kwargs) -> smtplib.SMTP:
        client = self.secure(**kwargs)
        client.login(login.username, login.password)
        return client


@pytest.fixture
def make_relay(relay_certificate):
    started: list[Relay] = []

    def make(**kwargs) -> Relay:
        relay = Relay(*relay_certificate, **kwargs).start()
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


@pytest.fixture
def relay(make_relay) -> Relay:
    return make_relay()


@pytest.fixture
def smtp_login():
    """``smtp_login(tenant, environment="live", rate_limit=None)`` -> a new credential's Login."""

    def make(tenant, environment: str = "live", *, rate_limit: int | None = None) -> Login:
        credential, password = credentials.smtp_credential_create(
            subaccount=tenant.subaccount, environment=environment, rate_limit=rate_limit, operator=True)
        return Login(username=credential.username, password=password, credential=credential)

    return make


def window_seconds_left(group: str, value: str, rate: str) -> int:
    """Seconds left in django-ratelimit's current window for ``value`` (windows start at a
    per-value offset inside the minute, not on the minute)."""
    usage = get_usage(RequestFactory().get("/"), group=group, key=lambda g, r: value, rate=rate,
                      increment=False)
    return usage["time_left"]


def login_with_time_left(make, tenant, *, rate: str, need: float, **kwargs) -> Login:
    """A new credential whose rate-limit window will not roll over during the test."""
    for _ in range(20):
        login = make(tenant, **kwargs)
        if window_seconds_left(KEY_GROUP, login.credential.public_id, rate) >= need:
            return login
    time.sleep(window_seconds_left(KEY_GROUP, login.credential.public_id, rate) + 1.1)
    return login


def loopback_ip_with_time_left(*, rate: str, need: float) -> str:
    """A loopback source address (any of 127/8 works on Linux) whose failed-AUTH window will
    not roll over during the test."""
    for last in range(2, 60):
        ip = f"127.0.0.{last}"
        if window_seconds_left(AUTH_FAILURE_GROUP, ip, rate) >= need:
            return ip
    raise AssertionError("no loopback address with a long enough rate-limit window")


def message(*, sender: str = "Acme <hello@acme.test>", to: str = "Ann <ann@example.com>", subject: str = "Hi",
            text: str = "Hello", html: str | None = None, **headers) -> EmailMessage:
    """A message as an application's mail library builds it; ``headers`` use _ for -."""
    built = EmailMessage()
    built["From"] = sender
    built["To"] = to
    built["Subject"] = subject
    for name, value in headers.items():
        built[name.replace("_", "-")] = value
    built.set_content(text)
    if html is not None:
        built.add_alternative(html, subtype="html")
    return built


def transaction(client: smtplib.SMTP, mail_from: str, rcpt_tos: list[str], content: EmailMessage | bytes):
    """MAIL, RCPT..., DATA; returns the DATA reply (code, text) after asserting the others."""
    code, reply = client.mail(mail_from)
    assert code == 250, reply
    for address in rcpt_tos:
        code, reply = client.rcpt(address)
        assert code == 250, reply
    return client.data(wire(content) if isinstance(content, EmailMessage) else content)


def wire(content: EmailMessage) -> bytes:
    """The message with CRLF line ends, as SMTP carries it (a bare LF is not a line end there)."""
    return content.as_bytes(policy=email.policy.SMTP)


QUEUED_RE = re.compile(rb"^2\.0\.0 Ok: queued as (msg_[A-Za-z0-9]{24})$")


def queued_id(reply: tuple[int, bytes]) -> str:
    code, text = reply
    assert code == 250, reply
    match = QUEUED_RE.match(text)
    assert match, text
    return match.group(1).decode()


@pytest.fixture
def verified_domain(dns_server, settings, api):
    """``verified_domain(tenant, name)``: added and verified through the domains API against a
    real DNS server on loopback that publishes exactly the records the API asked for."""
    from domains.selectors import dkim_signing_key_forget

    settings.DNS_TIMEOUT_SECONDS = 0.6
    dkim_signing_key_forget()

    def make(tenant, name: str) -> dict:
        data = assert_ok(api(tenant.live_key).post("/api/v1/domains", {"domain": name}, format="json"), 201)
        dns_server.publish(data["dns_records"])
        checked = assert_ok(api(tenant.live_key).post(f"/api/v1/domains/{name}/verify"))
        assert checked["status"] == "verified", checked
        return checked

    yield make
    dkim_signing_key_forget()
