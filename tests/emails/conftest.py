import pytest


@pytest.fixture(autouse=True)
def _unverified_senders_allowed_by_default(settings):
    """Most email tests are about sending, not domains: live keys may use any sender here.

    Tests of the verified-domain rule turn the setting back on explicitly.
    """
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False


@pytest.fixture
def send(api):
    """``send(key, **fields)`` posts one email and returns the response."""

    def post(key: str, http_headers: dict | None = None, **fields):
        body = {"from": "Acme <hello@acme.test>", "to": "user@example.com", "subject": "Hi",
                "text": "Hello"}
        body.update(fields)
        for name, value in list(body.items()):
            if value is None:
                body.pop(name)
        return api(key).post("/api/v1/emails", body, format="json", **(http_headers or {}))

    return post


@pytest.fixture
def outbox_tasks(monkeypatch):
    """Record dispatch publishes instead of sending them to a broker (API and service tests)."""
    published = []
    from emails.services import accept

    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: published.append(list(ids)))
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: published.append(list(ids)))
    return published
