"""Django admin: endpoints with the disabled flag and health filter, deliveries with attempts, retry."""

import pytest
from django.utils import timezone

from tests.webhooks.helpers import deliver_due, make_endpoint
from webhooks.models import WebhookEndpoint, WebhookEvent
from webhooks.services import webhook_events_publish

pytestmark = pytest.mark.django_db


def test_endpoints_show_the_auto_disabled_flag_and_filter_failing_ones(admin_client, tenants):
    healthy = make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/ok")
    broken = make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/broken", enabled=False,
                           disabled_reason="failing", failing_since=timezone.now())
    response = admin_client.get("/admin/webhooks/webhookendpoint/")
    assert response.status_code == 200
    assert healthy.public_id.encode() in response.content and broken.public_id.encode() in response.content

    response = admin_client.get("/admin/webhooks/webhookendpoint/", {"health": "failing"})
    assert broken.public_id.encode() in response.content and healthy.public_id.encode() not in response.content
    response = admin_client.get("/admin/webhooks/webhookendpoint/", {"health": "auto_disabled"})
    assert broken.public_id.encode() in response.content and healthy.public_id.encode() not in response.content

    page = admin_client.get(f"/admin/webhooks/webhookendpoint/{broken.pk}/change/")
    assert page.status_code == 200
    assert broken.secret.encode() not in page.content  # secrets never shown


def test_a_delivery_page_lists_its_attempts_and_the_retry_action_requeues(admin_client, tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    receiver.respond(500, body=b"receiver exploded")
    deliver_due(endpoint)
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=event.pk).update(status="failed", next_attempt_at=None)

    page = admin_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/")
    assert page.status_code == 200
    assert b"receiver exploded" in page.content

    response = admin_client.post("/admin/webhooks/webhookevent/",
                                 {"action": "retry_deliveries", "_selected_action": [event.pk]})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == "pending" and event.schedule_step == 0
    deliver_due(endpoint)
    event.refresh_from_db()
    assert event.status == "succeeded"
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.public_id] * 2


def test_the_disable_action_ends_pending_deliveries(admin_client, tenants):
    endpoint = make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/x")
    webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent", data={})
    admin_client.post("/admin/webhooks/webhookendpoint/",
                      {"action": "disable_endpoints", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "operator")
    assert WebhookEvent.objects.get().status == "failed"
    admin_client.post("/admin/webhooks/webhookendpoint/",
                      {"action": "enable_endpoints", "_selected_action": [endpoint.pk]})
    assert WebhookEndpoint.objects.get().enabled
