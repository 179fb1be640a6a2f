"""Mass assignment: read-only and foreign fields in a write body change nothing.

Every writable ``/api/v1/`` route (POST, PATCH, PUT) has a row in ``WRITES`` or in ``NO_STORED_BODY``
(actions whose body stores nothing a client could forge); a new one in neither fails
``test_every_writable_route_has_a_mass_assignment_row``. Each row posts a body valid for a1 plus
``FORGED`` (other tenants' ids, statuses, timestamps, digests, key material) and then reads the
stored row: either the request is 422 naming each unknown field (sending refuses unknown fields)
and nothing was written, or the fields were ignored: the row belongs to a1, its status is the
server's, its ids and digests are the server's own.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api.test_isolation import api_routes
from tests.conftest import assert_error, assert_ok

FORGED_TIME = "2001-01-01T00:00:00Z"
FORGED_DIGEST = "0" * 64


def forged(tenants, *, status: str) -> dict:
    """Fields no client may set, pointing at account B / sub-account b1 where they name an owner."""
    b1 = tenants.b1
    return {
        "account": b1.account.public_id, "account_id": b1.account.public_id,
        "subaccount": b1.subaccount.public_id, "subaccount_id": b1.subaccount.public_id,
        "status": status, "sent_at": FORGED_TIME, "delivered_at": FORGED_TIME, "created_at": FORGED_TIME,
        "id": "forged_id", "public_id": "forged_id", "key_hash": FORGED_DIGEST, "digest": FORGED_DIGEST,
        "dkim_private_key": "-----BEGIN PRIVATE KEY-----\nforged\n-----END PRIVATE KEY-----",
        "private_key_encrypted": "forged", "password": "forged-password", "key": "mr_live_forged",
        "secret": "whsec_forgedforgedforgedforgedforged",
        "opens_count": 99, "verified_at": FORGED_TIME,
    }


def _later(hours=2):
    return (timezone.now() + timedelta(hours=hours)).isoformat()


def _recent(value):
    assert value > timezone.now() - timedelta(minutes=5), value


@dataclass
class Ctx:
    tenants: object
    api: object
    started: object

    @property
    def a1(self):
        return self.tenants.a1

    def owned_by_a1(self, row, *, via="subaccount"):
        assert getattr(row, f"{via}_id") == self.a1.subaccount.pk, row
        assert row.public_id != "forged_id"
        assert row.created_at >= self.started
        return row


@dataclass
class Write:
    key: str  # "account" (a1's account key), "live" or "test" (a1's sub-account keys)
    method: str
    path: object  # ctx -> path
    body: object  # ctx -> a body valid for a1
    check: object  # (ctx, response) -> None: asserts the stored rows
    status: str = "delivered"  # the forged status value
    keep: tuple = ()  # FORGED fields that are real inputs of this route (left out)


# -- checks: read the database, not the response ----------------------------------------------------

def _subaccount_created(ctx, response):
    from accounts.models import SubAccount

    row = SubAccount.objects.get(public_id=assert_ok(response, 201)["id"])
    assert row.account_id == ctx.a1.account.pk and row.status == "active"
    assert row.public_id != "forged_id" and row.created_at >= ctx.started


def _subaccount_updated(ctx, response):
    assert_ok(response)
    row = ctx.a1.subaccount
    created = row.created_at
    row.refresh_from_db()
    assert row.name == "renamed" and row.status == "active" and row.account_id == ctx.a1.account.pk
    assert row.created_at == created and row.public_id.startswith("sub_")


def _key_created(ctx, response, *, kind, subaccount):
    from accounts.keys import key_digest
    from accounts.models import ApiKey

    data = assert_ok(response, 201)
    row = ApiKey.objects.get(public_id=data["id"])
    assert row.account_id == ctx.a1.account.pk and row.kind == kind
    assert row.subaccount_id == (ctx.a1.subaccount.pk if subaccount else None)
    assert row.digest == key_digest(data["key"]) != FORGED_DIGEST
    assert data["key"] != "mr_live_forged" and row.revoked_at is None and row.created_at >= ctx.started
    return row


def _email_refused(ctx, response):
    from emails.models import Email

    details = assert_error(response, 422, "validation_error")["details"]
    for name in forged(ctx.tenants, status=""):
        assert details.get(name) == ["Unknown field."], (name, details)
    assert not Email.objects.exists()


def _batch_refused(ctx, response):
    from emails.models import Email

    results = assert_ok(response)["results"]
    assert len(results) == 2
    for result in results:
        assert "id" not in result and result["error"]["code"] == "validation_error", result
        for name in forged(ctx.tenants, status=""):
            assert result["error"]["details"].get(name) == ["Unknown field."], (name, result)
    assert not Email.objects.exists()


def _rescheduled(ctx, response):
    from emails.models import Email

    assert_ok(response)
    row = ctx.owned_by_a1(Email.objects.get())
    assert row.status == "scheduled" and row.sent_at is None and row.delivered_at is None
    assert row.account_id == ctx.a1.account.pk and row.opens_count == 0


def _template_stored(ctx, response, status_code=201):
    from templates_app.models import Template

    data = assert_ok(response, status_code)
    ctx.owned_by_a1(Template.objects.get(public_id=data["id"]))


def _domain_stored(ctx, response, status_code=201):
    from domains.models import Domain

    data = assert_ok(response, status_code)
    row = ctx.owned_by_a1(Domain.objects.get(public_id=data["id"]))
    assert row.status == "pending" and row.verified_at is None and not row.ownership_verified
    for key in row.dkim_keys.all():
        assert "forged" not in key.private_key_encrypted and key.status != "delivered"


def _webhook_stored(ctx, response, status_code=201, *, secret_from_client=None):
    from webhooks.models import WebhookEndpoint

    data = assert_ok(response, status_code)
    row = ctx.owned_by_a1(WebhookEndpoint.objects.get(public_id=data["id"]))
    assert row.enabled and row.disabled_reason == "" and row.last_success_at is None
    if secret_from_client is None:
        assert "forged" not in row.secret
    return row


def _suppression_stored(ctx, response):
    from emails.models import Suppression

    ctx.owned_by_a1(Suppression.objects.get(public_id=assert_ok(response, 201)["id"]))


def _credential_stored(ctx, response):
    from accounts.models import SmtpCredential

    data = assert_ok(response, 201)
    row = ctx.owned_by_a1(SmtpCredential.objects.get(public_id=data["id"]))
    assert row.digest == hashlib.sha256(data["password"].encode()).hexdigest() != FORGED_DIGEST
    assert data["password"] != "forged-password" and row.revoked_at is None


# -- objects the update rows need (made by a1, through the API) -------------------------------------

def _scheduled_email(ctx):
    body = {"from": "Acme <hello@acme.com>", "to": "ada@example.com", "subject": "Hi", "text": "Hello",
            "scheduled_at": _later()}
    return assert_ok(ctx.api(ctx.a1.test_key).post("/api/v1/emails", body, format="json"), 201)["id"]


def _template(ctx):
    body = {"name": "welcome", "subject": "Welcome {{name}}", "text": "Hello {{name}}"}
    return assert_ok(ctx.api(ctx.a1.live_key).post("/api/v1/templates", body, format="json"), 201)["id"]


def _domain(ctx):
    return assert_ok(ctx.api(ctx.a1.live_key).post("/api/v1/domains", {"domain": "acme-ma.com"},
                                                   format="json"), 201)["id"]


def _webhook(ctx):
    body = {"url": "http://127.0.0.1:9/hooks"}
    return assert_ok(ctx.api(ctx.a1.live_key).post("/api/v1/webhooks", body, format="json"), 201)["id"]


SEND = {"from": "Acme <hello@acme.com>", "to": "ada@example.com", "subject": "Hi", "text": "Hello"}
WEBHOOK = {"url": "http://127.0.0.1:9/hooks/mailroom", "events": ["email.delivered"]}

WRITES: dict[tuple[str, str], Write] = {
    ("post", "/api/v1/account/subaccounts"): Write(
        "account", "post", lambda c: "/api/v1/account/subaccounts", lambda c: {"name": "mass"},
        _subaccount_created, status="suspended"),
    ("patch", "/api/v1/account/subaccounts/{subaccount_id}"): Write(
        "account", "patch", lambda c: f"/api/v1/account/subaccounts/{c.a1.subaccount.public_id}",
        lambda c: {"name": "renamed"}, _subaccount_updated, status="suspended"),
    ("post", "/api/v1/account/api-keys"): Write(
        "account", "post", lambda c: "/api/v1/account/api-keys", lambda c: {"name": "ops"},
        lambda c, r: _key_created(c, r, kind="account", subaccount=False), status="revoked"),
    ("post", "/api/v1/account/subaccounts/{subaccount_id}/api-keys"): Write(
        "account", "post", lambda c: f"/api/v1/account/subaccounts/{c.a1.subaccount.public_id}/api-keys",
        lambda c: {"name": "ci", "environment": "live"},
        lambda c, r: _key_created(c, r, kind="live", subaccount=True), status="revoked"),
    ("post", "/api/v1/api-keys"): Write(
        "live", "post", lambda c: "/api/v1/api-keys", lambda c: {"name": "ci", "scopes": ["emails:send"]},
        lambda c, r: _key_created(c, r, kind="live", subaccount=True), status="revoked"),
    ("post", "/api/v1/emails"): Write(
        "test", "post", lambda c: "/api/v1/emails", lambda c: dict(SEND), _email_refused),
    ("post", "/api/v1/emails/batch"): Write(
        "test", "post", lambda c: "/api/v1/emails/batch",
        lambda c: {"emails": [{**SEND, **forged(c.tenants, status="delivered")}] * 2}, _batch_refused),
    ("patch", "/api/v1/emails/{email_id}"): Write(
        "test", "patch", lambda c: f"/api/v1/emails/{_scheduled_email(c)}",
        lambda c: {"scheduled_at": _later(5)}, _rescheduled),
    ("post", "/api/v1/templates"): Write(
        "live", "post", lambda c: "/api/v1/templates",
        lambda c: {"name": "mass", "subject": "Hi {{name}}", "text": "Hello {{name}}"}, _template_stored),
    ("patch", "/api/v1/templates/{template_id}"): Write(
        "live", "patch", lambda c: f"/api/v1/templates/{_template(c)}", lambda c: {"subject": "Hello {{name}}"},
        lambda c, r: _template_stored(c, r, 200)),
    ("post", "/api/v1/domains"): Write(
        "live", "post", lambda c: "/api/v1/domains", lambda c: {"domain": "acme-mass.com"}, _domain_stored,
        status="verified"),
    ("patch", "/api/v1/domains/{domain}"): Write(
        "live", "patch", lambda c: f"/api/v1/domains/{_domain(c)}", lambda c: {"track_opens": True},
        lambda c, r: _domain_stored(c, r, 200), status="verified"),
    ("post", "/api/v1/webhooks"): Write(
        "live", "post", lambda c: "/api/v1/webhooks", lambda c: dict(WEBHOOK), _webhook_stored,
        status="disabled", keep=("secret",)),  # a client may choose its signing secret here
    ("patch", "/api/v1/webhooks/{webhook_id}"): Write(
        "live", "patch", lambda c: f"/api/v1/webhooks/{_webhook(c)}", lambda c: {"description": "renamed"},
        lambda c, r: _webhook_stored(c, r, 200), status="disabled"),
    ("post", "/api/v1/webhooks/{webhook_id}/rotate-secret"): Write(
        "live", "post", lambda c: f"/api/v1/webhooks/{_webhook(c)}/rotate-secret", lambda c: {},
        lambda c, r: _webhook_stored(c, r, 200), status="disabled", keep=("secret",)),
    ("post", "/api/v1/suppressions"): Write(
        "live", "post", lambda c: "/api/v1/suppressions", lambda c: {"address": "gone@example.com"},
        _suppression_stored),
    ("post", "/api/v1/smtp-credentials"): Write(
        "live", "post", lambda c: "/api/v1/smtp-credentials", lambda c: {"name": "app"}, _credential_stored,
        status="revoked"),
}

# Writable routes whose body stores no client-settable row: actions on an existing object (their
# 404-for-others and state are covered by test_isolation) and stateless renders.
NO_STORED_BODY = {
    ("post", "/api/v1/account/subaccounts/{subaccount_id}/suspend"),  # stores only `reason`
    ("post", "/api/v1/account/subaccounts/{subaccount_id}/resume"),
    ("post", "/api/v1/emails/{email_id}/cancel"),
    ("post", "/api/v1/emails/{email_id}/resend"),
    ("post", "/api/v1/templates/validate"),
    ("post", "/api/v1/templates/{template_id}/render"),
    ("post", "/api/v1/domains/{domain}/verify"),
    ("post", "/api/v1/domains/{domain}/rotate-dkim"),
    ("post", "/api/v1/webhooks/{webhook_id}/test"),
    ("post", "/api/v1/webhooks/{webhook_id}/recover"),
    ("post", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
}


def test_every_writable_route_has_a_mass_assignment_row():
    writable = {(m, route) for route, methods in api_routes().items() for m in methods
                if m in ("post", "patch", "put")}
    missing = sorted(writable - set(WRITES) - NO_STORED_BODY)
    assert not missing, f"Writable routes without a mass-assignment row in {__file__}: {missing}"
    stale = sorted((set(WRITES) | NO_STORED_BODY) - writable)
    assert not stale, f"Mass-assignment rows for routes that no longer exist: {stale}"


@pytest.fixture
def ctx(tenants, api, settings, dead_dns):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    return Ctx(tenants, api, timezone.now())


@pytest.fixture
def dead_dns(settings):
    """Adding a domain makes no DNS lookup (checked: it works with nobody answering): any lookup
    would go to a loopback port where nothing listens."""
    from tests.conftest import free_port

    settings.DNS_NAMESERVERS = [f"127.0.0.1:{free_port()}"]
    settings.DNS_TIMEOUT_SECONDS = 0.2


@pytest.mark.parametrize("route", sorted(WRITES), ids=lambda r: f"{r[0].upper()} {r[1]}")
def test_forged_fields_change_nothing(route, ctx, requires_postgres):
    from accounts.models import ApiKey, SmtpCredential, SubAccount
    from domains.models import Domain
    from emails.models import Email, Suppression
    from templates_app.models import Template
    from webhooks.models import WebhookEndpoint

    row = WRITES[route]
    key = {"account": ctx.a1.account_key, "live": ctx.a1.live_key, "test": ctx.a1.test_key}[row.key]
    path = row.path(ctx)
    extra = {k: v for k, v in forged(ctx.tenants, status=row.status).items() if k not in row.keep}
    body = {**extra, **row.body(ctx)}
    others = [ctx.tenants.b1.subaccount, ctx.tenants.b2.subaccount, ctx.tenants.a2.subaccount]

    def foreign_rows():
        return [
            SubAccount.objects.filter(account=ctx.tenants.b1.account).count(),
            ApiKey.objects.filter(account=ctx.tenants.b1.account).count(),
            *[model.objects.filter(subaccount__in=others).count()
              for model in (Email, Template, Domain, WebhookEndpoint, Suppression, SmtpCredential)],
        ]

    before = foreign_rows()
    response = getattr(ctx.api(key), row.method)(path, body, format="json")
    row.check(ctx, response)
    assert foreign_rows() == before, "another tenant's rows changed"


def test_a_key_cannot_grant_scopes_it_lacks(tenants, api):
    """A key with api_keys:write but not full access cannot mint a wider key, nor smuggle scopes in."""
    from accounts.models import ApiKey
    from tests.factories import make_key

    narrow = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, kind="live",
                      scopes=["api_keys:write", "emails:read"])
    client = api(narrow)
    count = ApiKey.objects.count()
    for scopes in (["full_access"], ["emails:send"], ["emails:read", "domains:write"]):
        assert_error(client.post("/api/v1/api-keys", {"name": "wider", "scopes": scopes}, format="json"),
                     403, "authorization_error")
    assert ApiKey.objects.count() == count
    # Omitted scopes mean "the same as mine", never more; forged scope-like fields are ignored.
    data = assert_ok(client.post("/api/v1/api-keys", {"name": "same", "scope": "full_access",
                                                       "granted_scopes": ["full_access"]}, format="json"), 201)
    assert sorted(ApiKey.objects.get(public_id=data["id"]).scopes) == ["api_keys:write", "emails:read"]
    # A test key cannot create a live key, whatever else the body says.
    test_narrow = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, kind="test",
                           scopes=["api_keys:write"])
    assert_error(api(test_narrow).post("/api/v1/api-keys", {"environment": "live", "kind": "live"},
                                       format="json"), 403, "authorization_error")
    data = assert_ok(api(test_narrow).post("/api/v1/api-keys", {"environment": "test", "kind": "live"},
                                           format="json"), 201)
    assert ApiKey.objects.get(public_id=data["id"]).kind == "test"


def test_an_account_key_cannot_create_keys_in_another_accounts_subaccount(tenants, api):
    from accounts.models import ApiKey

    count = ApiKey.objects.count()
    body = {"name": "stolen", "environment": "live", "account_id": tenants.a1.account.public_id}
    path = f"/api/v1/account/subaccounts/{tenants.b1.subaccount.public_id}/api-keys"
    assert_error(api(tenants.a1.account_key).post(path, body, format="json"), 404, "not_found")
    assert ApiKey.objects.count() == count
