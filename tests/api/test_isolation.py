"""Tenants never see each other's data, proven route by route from the URL configuration.

The test walks ``get_resolver()``: every ``/api/v1/`` route must be in ``OBJECT_ROUTES`` (it has an
object id: another tenant gets 404 ``not_found`` on every method, and the object is left as it was)
or in ``NO_OBJECT_ID`` (a collection or the caller itself: checked by the list tests below). A new
route in neither table fails ``test_every_api_route_is_in_the_isolation_table``.

Attackers: for sub-account routes, a2 (same account as a1, another sub-account) and b1 (another
account), each with a full-access live key; for account routes, account B's key.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from emails.services import email_events_fan_out_pending
from tests.conftest import assert_error, assert_ok

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_routes() -> dict[str, list[str]]:
    """``/api/v1/...`` route templates (``{name}`` for a path converter) -> the methods its view has."""
    import re

    routes = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/") or route.startswith("api/v1/schema"):
            continue
        view_class = getattr(callback, "view_class", None)
        methods = [m for m in METHODS if view_class is not None and hasattr(view_class, m)]
        routes["/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)] = methods
    return routes


@dataclass
class Route:
    scope: str  # "sub": sub-account keys; "account": account keys
    params: object  # objects -> list of {name: value} (each way of naming the object: id, name, address)
    bodies: dict = field(default_factory=dict)  # method -> a body valid for the owner


def _later(hours=2):
    return (timezone.now() + timedelta(hours=hours)).isoformat()


OBJECT_ROUTES: dict[str, Route] = {
    # Account scope.
    "/api/v1/account/subaccounts/{subaccount_id}": Route(
        "account", lambda o: [{"subaccount_id": o.sub_id}], {"patch": {"name": "hijacked"}}),
    "/api/v1/account/subaccounts/{subaccount_id}/suspend": Route(
        "account", lambda o: [{"subaccount_id": o.sub_id}], {"post": {"reason": "hijacked"}}),
    "/api/v1/account/subaccounts/{subaccount_id}/resume": Route(
        "account", lambda o: [{"subaccount_id": o.sub_id}]),
    "/api/v1/account/subaccounts/{subaccount_id}/api-keys": Route(
        "account", lambda o: [{"subaccount_id": o.sub_id}], {"post": {"name": "stolen", "environment": "live"}}),
    "/api/v1/account/subaccounts/{subaccount_id}/api-keys/{key_id}": Route(
        "account", lambda o: [{"subaccount_id": o.sub_id, "key_id": o.sub_key_id},
                              # B's own sub-account with A's key id: the key is looked up in B's sub-account.
                              {"subaccount_id": o.tenants.b1.subaccount.public_id, "key_id": o.sub_key_id}]),
    "/api/v1/account/api-keys/{key_id}": Route("account", lambda o: [{"key_id": o.account_key_id}]),
    # Sub-account scope.
    "/api/v1/api-keys/{key_id}": Route("sub", lambda o: [{"key_id": o.sub_key_id}]),
    "/api/v1/emails/{email_id}": Route("sub", lambda o: [{"email_id": o.email_id}],
                                       {"patch": {"scheduled_at": _later(5)}}),
    "/api/v1/emails/{email_id}/events": Route("sub", lambda o: [{"email_id": o.email_id}]),
    "/api/v1/emails/{email_id}/insights": Route("sub", lambda o: [{"email_id": o.email_id}]),
    "/api/v1/emails/{email_id}/cancel": Route("sub", lambda o: [{"email_id": o.email_id}]),
    "/api/v1/emails/{email_id}/resend": Route("sub", lambda o: [{"email_id": o.email_id}]),
    "/api/v1/suppressions/{ref}": Route("sub", lambda o: [{"ref": o.suppression_id}, {"ref": o.suppressed}]),
    "/api/v1/smtp-credentials/{credential_id}": Route("sub", lambda o: [{"credential_id": o.credential_id}]),
    "/api/v1/templates/{template_id}": Route(
        "sub", lambda o: [{"template_id": o.template_id}, {"template_id": "welcome"}],
        {"patch": {"subject": "Hijacked"}}),
    "/api/v1/templates/{template_id}/versions": Route(
        "sub", lambda o: [{"template_id": o.template_id}, {"template_id": "welcome"}]),
    "/api/v1/templates/{template_id}/render": Route(
        "sub", lambda o: [{"template_id": o.template_id}, {"template_id": "welcome"}],
        {"post": {"variables": {"company": "Acme", "user_name": "Ada"}}}),
    "/api/v1/domains/{domain}": Route(
        "sub", lambda o: [{"domain": o.domain_id}, {"domain": "acme-isolation.com"}],
        {"patch": {"track_opens": True}}),
    "/api/v1/domains/{domain}/verify": Route(
        "sub", lambda o: [{"domain": o.domain_id}, {"domain": "acme-isolation.com"}]),
    "/api/v1/domains/{domain}/rotate-dkim": Route(
        "sub", lambda o: [{"domain": o.domain_id}, {"domain": "acme-isolation.com"}]),
    "/api/v1/webhooks/{webhook_id}": Route("sub", lambda o: [{"webhook_id": o.webhook_id}],
                                           {"patch": {"description": "hijacked"}}),
    "/api/v1/webhooks/{webhook_id}/test": Route("sub", lambda o: [{"webhook_id": o.webhook_id}]),
    "/api/v1/webhooks/{webhook_id}/rotate-secret": Route("sub", lambda o: [{"webhook_id": o.webhook_id}],
                                                         {"post": {}}),
    "/api/v1/webhooks/{webhook_id}/recover": Route(
        "sub", lambda o: [{"webhook_id": o.webhook_id}],
        {"post": {"since": (timezone.now() - timedelta(days=1)).isoformat()}}),
    "/api/v1/webhooks/{webhook_id}/deliveries": Route("sub", lambda o: [{"webhook_id": o.webhook_id}]),
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}": Route(
        "sub", lambda o: [{"webhook_id": o.webhook_id, "delivery_id": o.delivery_id},
                          {"webhook_id": o.other_webhook_id, "delivery_id": o.delivery_id}]),
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry": Route(
        "sub", lambda o: [{"webhook_id": o.webhook_id, "delivery_id": o.delivery_id},
                          {"webhook_id": o.other_webhook_id, "delivery_id": o.delivery_id}]),
}

# Routes without an object id: the caller itself, a collection (checked by the list tests), or an
# action on the caller's own data.
NO_OBJECT_ID = {
    "/api/v1/account", "/api/v1/account/subaccounts", "/api/v1/account/api-keys", "/api/v1/account/usage",
    "/api/v1/account/analytics/emails",
    "/api/v1/api-keys", "/api/v1/emails", "/api/v1/emails/batch", "/api/v1/suppressions",
    "/api/v1/smtp-credentials", "/api/v1/templates", "/api/v1/templates/validate", "/api/v1/domains",
    "/api/v1/webhooks", "/api/v1/analytics/emails", "/api/v1/analytics/tags", "/api/v1/analytics/domains",
}


class Objects:
    """a1's objects (and account A's), made through the API on first use."""

    def __init__(self, tenants, api):
        self.tenants, self.api = tenants, api
        self.owner = api(tenants.a1.live_key)
        self.owner_account = api(tenants.a1.account_key)

    @property
    def sub_id(self):
        return self.tenants.a1.subaccount.public_id

    @cached_property
    def sub_key_id(self):
        return assert_ok(self.owner.post("/api/v1/api-keys", {"name": "ci"}, format="json"), 201)["id"]

    @cached_property
    def account_key_id(self):
        return assert_ok(self.owner_account.post("/api/v1/account/api-keys", {"name": "ops"}, format="json"), 201)["id"]

    @cached_property
    def email_id(self):
        # A scheduled email: cancel, reschedule and delete would all succeed for its owner.
        body = {"from": "Acme <hello@acme.com>", "to": "ada@example.com", "subject": "Welcome",
                "text": "Hello Ada", "tags": ["welcome"], "scheduled_at": _later()}
        return assert_ok(self.api(self.tenants.a1.test_key).post("/api/v1/emails", body, format="json"), 201)["id"]

    suppressed = "bounced@example.com"

    @cached_property
    def suppression_id(self):
        body = {"address": self.suppressed, "reason": "manual"}
        return assert_ok(self.owner.post("/api/v1/suppressions", body, format="json"), 201)["id"]

    @cached_property
    def credential_id(self):
        return assert_ok(self.owner.post("/api/v1/smtp-credentials", {"name": "app"}, format="json"), 201)["id"]

    @cached_property
    def template_id(self):
        body = {"name": "welcome", "subject": "Welcome to {{company}}, {{user_name}}!",
                "html": "<h1>Welcome to {{company}}, {{user_name}}!</h1>"}
        return assert_ok(self.owner.post("/api/v1/templates", body, format="json"), 201)["id"]

    @cached_property
    def domain_id(self):
        body = {"domain": "acme-isolation.com"}
        return assert_ok(self.owner.post("/api/v1/domains", body, format="json"), 201)["id"]

    def _webhook(self, client):
        body = {"url": "http://127.0.0.1:9/hooks/mailroom", "description": "isolation"}
        return assert_ok(client.post("/api/v1/webhooks", body, format="json"), 201)["id"]

    @cached_property
    def webhook_id(self):
        return self._webhook(self.owner)

    @cached_property
    def other_webhook_id(self):
        """b1's own endpoint: b1 naming A's delivery under its own endpoint still gets 404."""
        return self._webhook(self.api(self.tenants.b1.live_key))

    @cached_property
    def delivery_id(self):
        from webhooks.models import SUBSCRIBABLE_EVENT_TYPES, WebhookEndpoint, WebhookEvent
        from webhooks.services import webhook_events_publish

        endpoint = WebhookEndpoint.objects.get(public_id=self.webhook_id)
        webhook_events_publish(subaccount_id=endpoint.subaccount_id, event_type=SUBSCRIBABLE_EVENT_TYPES[0],
                               data={"email_id": "msg_isolation"})
        return WebhookEvent.objects.get(endpoint=endpoint).public_id


@pytest.fixture
def objects(tenants, api, settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    return Objects(tenants, api)


def test_every_api_route_is_in_the_isolation_table():
    routes = set(api_routes())
    missing = sorted(routes - set(OBJECT_ROUTES) - NO_OBJECT_ID)
    assert not missing, (
        f"New /api/v1/ routes without an isolation entry: {missing}. Add each to OBJECT_ROUTES in "
        f"{__file__} (how to make the owner's object and name it) or, if it has no object id, to NO_OBJECT_ID.")
    stale = sorted((set(OBJECT_ROUTES) | NO_OBJECT_ID) - routes)
    assert not stale, f"Isolation entries for routes that no longer exist: {stale}"
    assert not set(OBJECT_ROUTES) & NO_OBJECT_ID
    for route in OBJECT_ROUTES:
        assert "{" in route, f"{route} has no object id: move it to NO_OBJECT_ID"
    for route in NO_OBJECT_ID:
        assert "{" not in route, f"{route} has an object id: move it to OBJECT_ROUTES"


def _without_usage_stamps(data):
    if isinstance(data, dict):
        return {k: _without_usage_stamps(v) for k, v in data.items() if k != "last_used_at"}
    if isinstance(data, list):
        return [_without_usage_stamps(v) for v in data]
    return data


def _owner_state(objects, scope):
    """Everything the owner can read of what the objects made so far, to prove that an attacker's
    request changed nothing (a cancel, a rename, a revoke, a retry would show here)."""
    if scope == "account":
        sub = objects.sub_id
        reads = [(objects.owner_account, "/api/v1/account/subaccounts"),
                 (objects.owner_account, f"/api/v1/account/subaccounts/{sub}/api-keys"),
                 (objects.owner_account, "/api/v1/account/api-keys")]
    else:
        made = vars(objects)
        reads = [(objects.owner, path) for path, _, attr in LISTS if attr in made]
        if "email_id" in made:
            reads.append((objects.owner, f"/api/v1/emails/{objects.email_id}"))
        if "webhook_id" in made:
            reads.append((objects.owner, f"/api/v1/webhooks/{objects.webhook_id}/deliveries"))
    return [_without_usage_stamps(assert_ok(client.get(path, {"limit": 100}))) for client, path in reads]


@pytest.mark.parametrize("route", sorted(OBJECT_ROUTES))
def test_another_tenant_gets_404_on_every_method(route, objects, tenants, api, requires_postgres):
    spec = OBJECT_ROUTES[route]
    methods = api_routes()[route]
    assert methods, route
    attackers = ([api(tenants.b1.account_key)] if spec.scope == "account"
                 else [api(tenants.a2.live_key), api(tenants.b1.live_key)])
    for params in spec.params(objects):
        before = _owner_state(objects, spec.scope)
        path = route.format(**params)
        for attacker in attackers:
            for method in methods:
                body = spec.bodies.get(method, {} if method in ("post", "patch", "put") else None)
                call = getattr(attacker, method)
                response = call(path, body, format="json") if body is not None else call(path)
                assert response.status_code == 404, (method.upper(), path, response.status_code, response.content)
                assert_error(response, 404, "not_found")
        assert _owner_state(objects, spec.scope) == before, (route, params)


LISTS = [
    # (list route, data key, the attribute of Objects whose id must not leak)
    ("/api/v1/api-keys", "api_keys", "sub_key_id"),
    ("/api/v1/emails", "emails", "email_id"),
    ("/api/v1/suppressions", "suppressions", "suppression_id"),
    ("/api/v1/smtp-credentials", "smtp_credentials", "credential_id"),
    ("/api/v1/templates", "templates", "template_id"),
    ("/api/v1/domains", "domains", "domain_id"),
    ("/api/v1/webhooks", "webhooks", "webhook_id"),
]


@pytest.mark.parametrize(("path", "key", "attr"), LISTS)
def test_the_owners_objects_never_appear_in_another_tenants_list(path, key, attr, objects, tenants, api):
    object_id = getattr(objects, attr)
    owner_ids = [item["id"] for item in assert_ok(objects.owner.get(path, {"limit": 100}))[key]]
    assert object_id in owner_ids  # the list test can fail: the owner does see it
    for other in (tenants.a2, tenants.b1):
        listing = assert_ok(api(other.live_key).get(path, {"limit": 100}))
        assert object_id not in [item["id"] for item in listing[key]], (path, other)
        assert listing["pagination"]["total"] == len(listing[key])
    if key == "emails":
        for other in (tenants.a2, tenants.b1):
            listing = assert_ok(api(other.test_key).get(path, {"environment": "test"}))
            assert listing["emails"] == []


def test_an_account_key_never_sees_another_accounts_subaccounts(tenants, api):
    a_ids = {tenants.a1.subaccount.public_id, tenants.a2.subaccount.public_id}
    b_ids = {tenants.b1.subaccount.public_id, tenants.b2.subaccount.public_id}
    for key, own, foreign in ((tenants.a1.account_key, a_ids, b_ids), (tenants.b1.account_key, b_ids, a_ids)):
        listing = assert_ok(api(key).get("/api/v1/account/subaccounts", {"limit": 100}))
        assert {s["id"] for s in listing["subaccounts"]} == own
        for foreign_id in foreign:
            assert_error(api(key).get(f"/api/v1/account/subaccounts/{foreign_id}"), 404, "not_found")
            assert_error(api(key).get(f"/api/v1/account/subaccounts/{foreign_id}/api-keys"), 404, "not_found")


def test_an_account_key_never_sees_another_accounts_keys(tenants, api):
    a_keys = assert_ok(api(tenants.a1.account_key).get("/api/v1/account/api-keys"))["api_keys"]
    b_keys = assert_ok(api(tenants.b1.account_key).get("/api/v1/account/api-keys"))["api_keys"]
    assert a_keys and b_keys and not {k["id"] for k in a_keys} & {k["id"] for k in b_keys}


def test_usage_and_analytics_name_only_the_callers_subaccounts(tenants, api, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    body = {"from": "Acme <hello@acme.com>", "to": "ada@example.com", "subject": "Hi", "text": "Hello",
            "tags": ["welcome"]}
    assert_ok(api(tenants.a1.live_key).post("/api/v1/emails", body, format="json"), 201)
    assert_ok(api(tenants.b1.live_key).post("/api/v1/emails", body, format="json"), 201)
    assert_ok(api(tenants.b1.live_key).post("/api/v1/emails", body, format="json"), 201)
    email_events_fan_out_pending()
    for key, own, foreign, sent in (
        (tenants.a1.account_key, (tenants.a1, tenants.a2), (tenants.b1, tenants.b2), 1),
        (tenants.b1.account_key, (tenants.b1, tenants.b2), (tenants.a1, tenants.a2), 2),
    ):
        usage = assert_ok(api(key).get("/api/v1/account/usage"))
        assert {s["id"] for s in usage["subaccounts"]} == {t.subaccount.public_id for t in own}
        assert usage["emails"]["used"] == sent
        analytics = assert_ok(api(key).get("/api/v1/account/analytics/emails"))
        assert analytics["total"]["accepted"] == sent
        listed = {s["id"] for s in analytics["subaccounts"]}
        assert listed and listed <= {t.subaccount.public_id for t in own}
        assert not listed & {t.subaccount.public_id for t in foreign}
    for tenant, accepted in ((tenants.a1, 1), (tenants.a2, 0), (tenants.b1, 2), (tenants.b2, 0)):
        analytics = assert_ok(api(tenant.live_key).get("/api/v1/analytics/emails"))
        assert analytics["total"]["accepted"] == accepted, tenant.subaccount.name
        tags = assert_ok(api(tenant.live_key).get("/api/v1/analytics/tags"))["tags"]
        assert [t["total"]["accepted"] for t in tags] == ([accepted] if accepted else [])
