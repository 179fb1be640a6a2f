"""The /api/v1/webhooks routes: CRUD, secrets shown once, deliveries, retry, recover, tenancy."""

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.conftest import assert_error, assert_ok
from tests.factories import make_key
from tests.webhooks.helpers import deliver_due, make_endpoint
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services import webhook_events_publish

pytestmark = pytest.mark.django_db

ENDPOINT_KEYS = {"id", "url", "events", "description", "enabled", "disabled_reason", "disabled_at", "failing_since",
                 "last_success_at", "last_failure_at", "created_at", "updated_at"}


def create(client, url, **fields):
    return assert_ok(client.post("/api/v1/webhooks", {"url": url, **fields}, format="json"), 201)


def test_create_returns_the_secret_once_then_never(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    data = create(client, receiver.url, events=["email.bounced", "email.complained", "email.bounced"],
                  description="CRM")
    assert set(data) == ENDPOINT_KEYS | {"secret"}
    assert data["id"].startswith("whk_")
    assert data["secret"].startswith("whsec_")
    assert data["events"] == ["email.bounced", "email.complained"]
    assert (data["enabled"], data["disabled_reason"], data["description"]) == (True, "", "CRM")
    assert WebhookEndpoint.objects.get(public_id=data["id"]).secret == data["secret"]

    got = assert_ok(client.get(f"/api/v1/webhooks/{data['id']}"))
    assert set(got) == ENDPOINT_KEYS
    listed = assert_ok(client.get("/api/v1/webhooks"))
    assert [w["id"] for w in listed["webhooks"]] == [data["id"]]
    assert "secret" not in listed["webhooks"][0]
    assert listed["pagination"] == {"total": 1, "limit": 20, "offset": 0, "has_more": False}


def test_a_given_secret_is_kept_and_a_bad_one_refused(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert create(client, receiver.url, secret=secret)["secret"] == secret
    error = assert_error(client.post("/api/v1/webhooks", {"url": receiver.url, "secret": "whsec_c2hvcnQ="},
                                     format="json"), 422, "validation_error")
    assert "24 to 64 bytes" in error["details"]["secret"][0]
    assert WebhookEndpoint.objects.count() == 1


def test_unknown_event_types_are_refused_and_nothing_is_written(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    error = assert_error(client.post("/api/v1/webhooks", {"url": receiver.url, "events": ["email.sent", "nope"]},
                                     format="json"), 422, "validation_error")
    assert "events.1" in error["details"] or "events" in error["details"]
    error = assert_error(client.post("/api/v1/webhooks", {"url": receiver.url, "events": ["webhook.test"]},
                                     format="json"), 422, "validation_error")
    assert_error(client.post("/api/v1/webhooks", {}, format="json"), 422, "validation_error")
    assert WebhookEndpoint.objects.count() == 0


def test_patch_updates_disables_and_enables(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    webhook_id = create(client, receiver.url)["id"]
    endpoint = WebhookEndpoint.objects.get(public_id=webhook_id)
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})

    data = assert_ok(client.patch(f"/api/v1/webhooks/{webhook_id}",
                                  {"events": ["email.opened"], "description": "opens", "enabled": False},
                                  format="json"))
    assert (data["events"], data["description"], data["enabled"], data["disabled_reason"]) == (
        ["email.opened"], "opens", False, "manual")
    assert data["disabled_at"] is not None
    assert WebhookEvent.objects.get(endpoint=endpoint).status == "failed"
    assert "secret" not in data

    data = assert_ok(client.patch(f"/api/v1/webhooks/{webhook_id}", {"enabled": True}, format="json"))
    assert (data["enabled"], data["disabled_reason"], data["disabled_at"]) == (True, "", None)

    error = assert_error(client.patch(f"/api/v1/webhooks/{webhook_id}", {"url": "gopher://x/"}, format="json"),
                         422, "validation_error")
    assert "http:// or https://" in error["details"]["url"][0]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).url == receiver.url


def test_delete_removes_the_endpoint_and_its_deliveries(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    webhook_id = create(client, receiver.url)["id"]
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    response = client.delete(f"/api/v1/webhooks/{webhook_id}")
    assert response.status_code == 204
    assert WebhookEndpoint.objects.count() == 0 and WebhookEvent.objects.count() == 0
    assert_error(client.get(f"/api/v1/webhooks/{webhook_id}"), 404, "not_found")


def test_rotate_secret_returns_the_new_secret_once(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    created = create(client, receiver.url)
    data = assert_ok(client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", {}, format="json"))
    assert data["secret"].startswith("whsec_") and data["secret"] != created["secret"]
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    assert endpoint.previous_secret == created["secret"]
    assert timedelta(hours=23, minutes=59) < endpoint.previous_secret_expires_at - timezone.now() <= timedelta(hours=24)
    assert "secret" not in assert_ok(client.get(f"/api/v1/webhooks/{created['id']}"))


def test_test_send_returns_the_delivery_with_its_attempt(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    created = create(client, receiver.url)
    receiver.respond(200, body=b'{"received": true}')
    data = assert_ok(client.post(f"/api/v1/webhooks/{created['id']}/test"))
    assert data["event_type"] == "webhook.test" and data["status"] == "succeeded"
    assert data["id"].startswith("whd_")
    [attempt] = data["attempts"]
    assert (attempt["status_code"], attempt["succeeded"], attempt["response_body"]) == (200, True,
                                                                                         '{"received": true}')
    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == data["id"]
    payload = Webhook(created["secret"]).verify(request.body, request.headers)
    assert payload == data["payload"]
    assert payload["type"] == "webhook.test"


def test_deliveries_list_filters_and_detail_shows_attempts(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    created = create(client, receiver.url)
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    sub = tenants.a1.subaccount
    webhook_events_publish(subaccount_id=sub.pk, event_type="email.sent", data={"email_id": "msg_1"})
    webhook_events_publish(subaccount_id=sub.pk, event_type="email.bounced", data={"email_id": "msg_2"})
    receiver.respond(500, body=b"nope")
    deliver_due(endpoint)  # one fails (pending again), one succeeds

    base = f"/api/v1/webhooks/{created['id']}/deliveries"
    everything = assert_ok(client.get(base))
    assert len(everything["deliveries"]) == 2 and everything["pagination"]["total"] == 2
    pending = assert_ok(client.get(base, {"status": "pending"}))["deliveries"]
    succeeded = assert_ok(client.get(base, {"status": "succeeded"}))["deliveries"]
    assert len(pending) == 1 and len(succeeded) == 1
    bounced = assert_ok(client.get(base, {"event_type": "email.bounced"}))["deliveries"]
    assert [d["payload"]["data"] for d in bounced] == [{"email_id": "msg_2"}]
    assert_error(client.get(base, {"status": "lost"}), 422, "validation_error")

    detail = assert_ok(client.get(f"{base}/{pending[0]['id']}"))
    assert detail["attempt_count"] == 1 and detail["last_status_code"] == 500
    assert [(a["status_code"], a["response_body"], a["succeeded"]) for a in detail["attempts"]] == [
        (500, "nope", False)]
    assert detail["next_attempt_at"] is not None


def test_retry_and_recover_queue_deliveries_again_with_the_same_id(tenants, api, receiver):
    client = api(tenants.a1.live_key)
    created = create(client, receiver.url)
    endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.opened", data={})
    WebhookEvent.objects.update(status="failed", next_attempt_at=None, attempt_count=10, schedule_step=9)
    first, second = WebhookEvent.objects.order_by("id")

    data = assert_ok(client.post(f"/api/v1/webhooks/{created['id']}/deliveries/{first.public_id}/retry"))
    assert (data["id"], data["status"]) == (first.public_id, "pending")
    first.refresh_from_db()
    assert first.schedule_step == 0 and first.next_attempt_at <= timezone.now()

    data = assert_ok(client.post(f"/api/v1/webhooks/{created['id']}/recover",
                                 {"since": (timezone.now() - timedelta(hours=1)).isoformat()}, format="json"))
    assert data == {"recovered": 1}
    assert_error(client.post(f"/api/v1/webhooks/{created['id']}/recover", {}, format="json"), 422,
                 "validation_error")

    deliver_due(endpoint)
    ids = {r.headers["webhook-id"] for r in receiver.wait_for(2)}
    assert ids == {first.public_id, second.public_id}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"succeeded"}

    # A disabled endpoint's deliveries cannot be retried until it is enabled again.
    client.patch(f"/api/v1/webhooks/{created['id']}", {"enabled": False}, format="json")
    assert_error(client.post(f"/api/v1/webhooks/{created['id']}/deliveries/{first.public_id}/retry"), 409,
                 "conflict")


def test_another_subaccounts_endpoint_and_deliveries_are_404(tenants, api, receiver):
    theirs = make_endpoint(tenants.b1.subaccount, receiver.url)
    sibling = make_endpoint(tenants.a2.subaccount, receiver.url)
    webhook_events_publish(subaccount_id=tenants.b1.subaccount.pk, event_type="email.sent", data={})
    their_delivery = WebhookEvent.objects.get(endpoint=theirs)
    mine = make_endpoint(tenants.a1.subaccount, receiver.url)
    client = api(tenants.a1.live_key)

    for endpoint in (theirs, sibling):
        base = f"/api/v1/webhooks/{endpoint.public_id}"
        assert_error(client.get(base), 404, "not_found")
        assert_error(client.patch(base, {"enabled": False}, format="json"), 404, "not_found")
        assert_error(client.delete(base), 404, "not_found")
        assert_error(client.post(f"{base}/test"), 404, "not_found")
        assert_error(client.post(f"{base}/rotate-secret", {}, format="json"), 404, "not_found")
        assert_error(client.get(f"{base}/deliveries"), 404, "not_found")
        assert_error(client.post(f"{base}/recover", {"since": "2020-01-01T00:00:00Z"}, format="json"), 404,
                     "not_found")
    # Their delivery id through my own endpoint is 404 too.
    mine_base = f"/api/v1/webhooks/{mine.public_id}/deliveries/{their_delivery.public_id}"
    assert_error(client.get(mine_base), 404, "not_found")
    assert_error(client.post(f"{mine_base}/retry"), 404, "not_found")
    assert assert_ok(client.get("/api/v1/webhooks"))["webhooks"][0]["id"] == mine.public_id
    assert receiver.requests == []
    theirs.refresh_from_db()
    assert theirs.enabled


def test_the_webhooks_scope_is_required(tenants, api, receiver):
    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:send"])
    assert_error(api(key).get("/api/v1/webhooks"), 403, "authorization_error")
    assert_error(api(key).post("/api/v1/webhooks", {"url": receiver.url}, format="json"), 403,
                 "authorization_error")
    allowed = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["webhooks:write"])
    create(api(allowed), receiver.url)
    assert_error(api(None).get("/api/v1/webhooks"), 401, "authentication_error")
