"""Secrets are shown once, at creation (or rotation), and never again: not in API responses, not in
the admin, not in logs.

The secrets: API keys and their digests, SMTP passwords and their digests, webhook signing
secrets, DKIM private keys (the PEM, its base64 body and the encrypted token stored for it).
"""

import hashlib
import logging

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import assert_ok
from tests.webhooks.conftest import Receiver


@pytest.fixture
def receiver(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def no_dns(settings):
    """Adding a domain makes no DNS lookup; verify would ask a loopback port where nothing listens."""
    from tests.conftest import free_port

    settings.DNS_NAMESERVERS = [f"127.0.0.1:{free_port()}"]
    settings.DNS_TIMEOUT_SECONDS = 0.2


class Secrets:
    """Everything a1 creates through the API, with the secrets each creation showed once."""

    def __init__(self, tenants, api, receiver):
        self.tenants, self.api = tenants, api
        self.client = api(tenants.a1.live_key)
        self.account_client = api(tenants.a1.account_key)
        self.receiver = receiver
        self.values: list[str] = []  # every raw secret and digest: none may appear after creation

    def keep(self, *values: str) -> None:
        for value in values:
            assert value and len(value) >= 16, value
            self.values.append(value)

    def api_key(self) -> dict:
        from accounts.keys import key_digest

        data = assert_ok(self.client.post("/api/v1/api-keys", {"name": "ci"}, format="json"), 201)
        self.keep(data["key"], key_digest(data["key"]))
        return data

    def account_key(self) -> dict:
        from accounts.keys import key_digest

        data = assert_ok(self.account_client.post("/api/v1/account/api-keys", {"name": "ops"}, format="json"), 201)
        self.keep(data["key"], key_digest(data["key"]))
        return data

    def credential(self) -> dict:
        from accounts.models import SmtpCredential

        data = assert_ok(self.client.post("/api/v1/smtp-credentials", {"name": "app"}, format="json"), 201)
        digest = SmtpCredential.objects.get(public_id=data["id"]).digest
        assert digest == hashlib.sha256(data["password"].encode()).hexdigest()
        self.keep(data["password"], digest)
        return data

    def webhook(self) -> dict:
        data = assert_ok(self.client.post("/api/v1/webhooks", {"url": self.receiver.url}, format="json"), 201)
        self.keep(data["secret"], data["secret"].removeprefix("whsec_"))
        return data

    def rotated(self, webhook_id: str) -> dict:
        data = assert_ok(self.client.post(f"/api/v1/webhooks/{webhook_id}/rotate-secret", {}, format="json"))
        self.keep(data["secret"], data["secret"].removeprefix("whsec_"))
        return data

    def domain(self, name="acme-secrets.com") -> dict:
        from domains.crypto import decrypt
        from domains.models import DkimKey

        data = assert_ok(self.client.post("/api/v1/domains", {"domain": name}, format="json"), 201)
        for key in DkimKey.objects.filter(domain__public_id=data["id"]):
            self.keep_private_key(key)
            assert decrypt(key.private_key_encrypted)
        return data

    def keep_private_key(self, key) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        from domains.crypto import decrypt

        pem = decrypt(key.private_key_encrypted).decode()
        body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
        # PEM lines also carry the public modulus (published in DNS): match the private numbers.
        numbers = load_pem_private_key(pem.encode(), password=None).private_numbers()
        self.keep(key.private_key_encrypted, pem.strip(), body, *(
            form for n in (numbers.d, numbers.p, numbers.q) for form in (str(n), format(n, "x"))))

    def assert_absent(self, text: str, where: str) -> None:
        for value in self.values:
            assert value not in text, f"a secret ({value[:8]}...) appears in {where}"
        assert "PRIVATE KEY" not in text, where


@pytest.fixture
def secrets_(tenants, api, receiver, no_dns, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    return Secrets(tenants, api, receiver)


def _fields(data) -> set[str]:
    found = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found.add(key)
            found |= _fields(value)
    elif isinstance(data, list):
        for value in data:
            found |= _fields(value)
    return found


def _read(secrets_, client, method, path, where_fields=("key", "secret", "password", "digest", "key_hash",
                                                          "private_key", "private_key_encrypted")):
    response = getattr(client, method)(path, format="json") if method != "get" else client.get(path)
    assert response.status_code in (200, 204), (method, path, response.content)
    text = response.content.decode()
    secrets_.assert_absent(text, f"{method.upper()} {path}")
    if response.status_code == 200:
        leaked = _fields(response.json()["data"]) & set(where_fields)
        assert not leaked, (method, path, leaked)


def test_api_keys_show_the_key_only_at_creation(secrets_):
    created = secrets_.api_key()
    assert created["key"].startswith("mr_live_")
    account_key = secrets_.account_key()
    sub = secrets_.tenants.a1.subaccount.public_id
    client, account = secrets_.client, secrets_.account_client
    for c, path in ((client, "/api/v1/api-keys"), (account, f"/api/v1/account/subaccounts/{sub}/api-keys"),
                    (account, "/api/v1/account/api-keys")):
        _read(secrets_, c, "get", path)
    # The new key works, and its own use shows nothing either.
    _read(secrets_, secrets_.api(created["key"]), "get", "/api/v1/emails")
    _read(secrets_, client, "delete", f"/api/v1/api-keys/{created['id']}")
    _read(secrets_, account, "delete", f"/api/v1/account/api-keys/{account_key['id']}")


def test_webhook_secrets_show_only_at_create_and_rotate(secrets_):
    created = secrets_.webhook()
    assert created["secret"].startswith("whsec_")
    webhook_id = created["id"]
    client = secrets_.client
    _read(secrets_, client, "get", "/api/v1/webhooks")
    _read(secrets_, client, "get", f"/api/v1/webhooks/{webhook_id}")
    response = client.patch(f"/api/v1/webhooks/{webhook_id}", {"description": "renamed"}, format="json")
    secrets_.assert_absent(response.content.decode(), "PATCH")
    assert "secret" not in assert_ok(response)
    delivery = assert_ok(client.post(f"/api/v1/webhooks/{webhook_id}/test"))
    assert delivery["status"] == "succeeded"
    secrets_.assert_absent(str(delivery), "the test delivery")
    rotated = secrets_.rotated(webhook_id)
    assert rotated["secret"] != created["secret"]
    for path in ("/api/v1/webhooks", f"/api/v1/webhooks/{webhook_id}", f"/api/v1/webhooks/{webhook_id}/deliveries",
                 f"/api/v1/webhooks/{webhook_id}/deliveries/{delivery['id']}"):
        _read(secrets_, client, "get", path)


def test_smtp_passwords_show_only_at_creation(secrets_):
    created = secrets_.credential()
    client = secrets_.client
    _read(secrets_, client, "get", "/api/v1/smtp-credentials")
    _read(secrets_, client, "get", f"/api/v1/smtp-credentials/{created['id']}")
    _read(secrets_, client, "delete", f"/api/v1/smtp-credentials/{created['id']}")


def test_dkim_private_keys_never_leave_the_database(secrets_):
    created = secrets_.domain()
    domain_id = created["id"]
    client = secrets_.client
    secrets_.assert_absent(str(created), "the domain add response")
    _read(secrets_, client, "get", "/api/v1/domains")
    _read(secrets_, client, "get", f"/api/v1/domains/{domain_id}")
    # Rotation makes a new (pending) key: it is never shown either.
    response = client.post(f"/api/v1/domains/{domain_id}/rotate-dkim")
    from domains.models import DkimKey

    for key in DkimKey.objects.filter(domain__public_id=domain_id):
        secrets_.keep_private_key(key)
    secrets_.assert_absent(response.content.decode(), "rotate-dkim")
    _read(secrets_, client, "get", f"/api/v1/domains/{domain_id}")


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-1")
    client.force_login(user)
    return client


def test_admin_pages_show_no_secret(secrets_, operator):
    from accounts.models import ApiKey, SmtpCredential
    from domains.models import DkimKey, Domain
    from webhooks.models import WebhookEndpoint

    key = secrets_.api_key()
    secrets_.account_key()
    credential = secrets_.credential()
    webhook = secrets_.webhook()
    assert_ok(secrets_.client.post(f"/api/v1/webhooks/{webhook['id']}/test"))
    secrets_.rotated(webhook["id"])  # the previous secret stays valid for a while: both stored
    domain = secrets_.domain()
    # The sub-account's own creation key and the fixtures' keys too.
    from accounts.keys import key_digest

    for raw in (secrets_.tenants.a1.live_key, secrets_.tenants.a1.test_key, secrets_.tenants.a1.account_key):
        secrets_.keep(raw, key_digest(raw))

    pages = ["/admin/accounts/apikey/", "/admin/accounts/smtpcredential/", "/admin/webhooks/webhookendpoint/",
             "/admin/domains/domain/", "/admin/domains/dkimkey/", "/admin/webhooks/webhookevent/",
             "/admin/accounts/subaccount/", f"/admin/accounts/subaccount/{secrets_.tenants.a1.subaccount.pk}/change/"]
    pages += [f"/admin/accounts/apikey/{k.pk}/change/" for k in ApiKey.objects.filter(account=secrets_.tenants.a1.account)]
    pages.append(f"/admin/accounts/smtpcredential/{SmtpCredential.objects.get(public_id=credential['id']).pk}/change/")
    endpoint = WebhookEndpoint.objects.get(public_id=webhook["id"])
    pages.append(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    pages += [f"/admin/webhooks/webhookevent/{event.pk}/change/" for event in endpoint.deliveries.all()]
    found = Domain.objects.get(public_id=domain["id"])
    pages.append(f"/admin/domains/domain/{found.pk}/change/")
    pages += [f"/admin/domains/dkimkey/{k.pk}/change/" for k in DkimKey.objects.filter(domain=found)]
    assert len(secrets_.values) > 10 and key["key"] in secrets_.values
    for page in pages:
        response = operator.get(page)
        assert response.status_code == 200, page
        secrets_.assert_absent(response.content.decode(), page)


@pytest.fixture
def all_logs(caplog):
    """Every record of every logger at DEBUG (loggers with their own level included)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _record_text(record) -> str:
    parts = [record.getMessage(), repr(record.args), repr(getattr(record, "__dict__", {}))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_logs_carry_no_secret(secrets_, all_logs, api):
    from emails.relay.authenticator import authenticate

    key = secrets_.api_key()
    assert_ok(api(key["key"]).get("/api/v1/emails"))
    assert_ok(api(key["key"], bearer=True).get("/api/v1/emails"))
    assert api(key["key"] + "x").get("/api/v1/emails").status_code == 401  # a near miss is logged?
    revoked = assert_ok(secrets_.client.delete(f"/api/v1/api-keys/{key['id']}"))
    assert revoked["revoked_at"] and api(key["key"]).get("/api/v1/emails").status_code == 401
    account_key = secrets_.account_key()
    assert_ok(api(account_key["key"]).get("/api/v1/account"))

    credential = secrets_.credential()
    login = authenticate(peer_ip="127.0.0.1", login=credential["username"].encode(),
                         password=credential["password"].encode())
    assert login.success
    assert not authenticate(peer_ip="127.0.0.1", login=credential["username"].encode(),
                            password=(credential["password"] + "x").encode()).success

    webhook = secrets_.webhook()
    assert assert_ok(secrets_.client.post(f"/api/v1/webhooks/{webhook['id']}/test"))["status"] == "succeeded"
    secrets_.rotated(webhook["id"])
    secrets_.receiver.respond(500, times=1)
    assert_ok(secrets_.client.post(f"/api/v1/webhooks/{webhook['id']}/test"))
    assert len(secrets_.receiver.requests) == 2

    secrets_.domain()
    assert all_logs.records, "nothing was logged: the capture is not working"
    for record in all_logs.records:
        secrets_.assert_absent(_record_text(record), f"a log record of {record.name}")
