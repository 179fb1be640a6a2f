"""Fixtures for tracking tests: sending through the real API and dispatcher, and a stand-in
for an ESP's HTTP API (the one thing outside this machine) on loopback."""

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from emails.models import Email
from emails.services import email_dispatch
from tests.conftest import assert_ok


@pytest.fixture(autouse=True)
def _unverified_senders_allowed(settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    settings.MAILROOM_PUBLIC_URL = "https://mail.example.net"


@pytest.fixture
def outbox_tasks(monkeypatch):
    """Dispatch is called directly by the tests; record publishes instead of using a broker."""
    published = []
    from emails.services import accept

    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: published.append(list(ids)))
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: published.append(list(ids)))
    return published


@pytest.fixture
def send(api, outbox_tasks):
    """``send(key, **fields)`` posts one email through the API; returns the stored Email."""

    def post(key: str, expect: int = 201, **fields):
        body = {"from": "Acme <hello@acme.test>", "to": "ann@example.com", "subject": "Hi", "text": "Hello"}
        body.update(fields)
        body = {name: value for name, value in body.items() if value is not None}
        response = api(key).post("/api/v1/emails", body, format="json")
        if expect != 201:
            return response
        return Email.objects.get(public_id=assert_ok(response, 201)["id"])

    return post


@pytest.fixture
def sent(send):
    """``sent(key, **fields)``: accepted and dispatched (a test key's mail is simulated), with
    ``sent_at`` moved a minute back so hits are not "too soon after sending"."""

    def make(key: str, **fields) -> Email:
        email = send(key, **fields)
        assert email_dispatch(ids=[email.pk]) == 1
        Email.objects.filter(pk=email.pk).update(sent_at=timezone.now() - timedelta(minutes=1))
        email.refresh_from_db()
        assert email.status == "sent"
        return email

    return make


class FakeEsp:
    """Answers an ESP's send API the way its documentation shows; keeps what it received."""

    def __init__(self):
        self.requests: list[dict] = []
        self.message_ids: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if "/messages" in self.path:  # Mailgun: /v3/<domain>/messages
                    message_id = f"<{uuid.uuid4().hex}@sandbox.mailgun.org>"
                    reply = {"id": message_id, "message": "Queued. Thank you."}
                else:  # Postmark: /email
                    sent = json.loads(body)
                    message_id = str(uuid.uuid4())
                    reply = {"To": sent["To"], "SubmittedAt": "2026-03-01T10:00:00.0000000Z",
                             "MessageID": message_id, "ErrorCode": 0, "Message": "OK"}
                fake.message_ids.append(message_id)
                payload = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


WEBHOOK_SECRET = "hooks:s3cret-webhook-password"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing"


@pytest.fixture
def fake_esp(settings):
    esp = FakeEsp()
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "POSTMARK_SERVER_TOKEN": "server-token",
        "POSTMARK_API_URL": esp.url,
        "MAILGUN_API_KEY": "key-mailgun-api",
        "MAILGUN_API_URL": esp.url + "v3",
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
    }
    yield esp
    esp.stop()


@pytest.fixture
def sent_via(settings, fake_esp, send):
    """``sent_via("postmark", key, **fields)``: a live email handed to that ESP's anymail backend
    by the real dispatcher; its ``provider_message_id`` is what the fake ESP answered."""
    backends = {"postmark": "anymail.backends.postmark.EmailBackend",
                "mailgun": "anymail.backends.mailgun.EmailBackend"}

    def make(esp: str, key: str, **fields) -> Email:
        settings.EMAIL_BACKEND = backends[esp]
        email = send(key, **fields)
        assert email_dispatch(ids=[email.pk]) == 1
        email.refresh_from_db()
        assert email.status == "sent", email.last_error
        assert email.provider_message_id == fake_esp.message_ids[-1]
        Email.objects.filter(pk=email.pk).update(sent_at=timezone.now() - timedelta(minutes=1))
        email.refresh_from_db()
        return email

    return make
