"""webhook_events_publish: the call the emails pipeline makes inside its transaction."""

from datetime import UTC, datetime

import pytest
from django.db import transaction

from tests.webhooks.helpers import make_endpoint
from webhooks.models import DeliveryStatus, WebhookEndpoint, WebhookEvent
from webhooks.services import webhook_events_publish

pytestmark = pytest.mark.django_db


def test_it_creates_one_due_delivery_per_matching_enabled_endpoint(tenants, django_capture_on_commit_callbacks):
    sub = tenants.a1.subaccount
    everything = make_endpoint(sub, "https://hooks.example.com/all")
    bounces_only = make_endpoint(sub, "https://hooks.example.com/b", events=["email.bounced"])
    make_endpoint(sub, "https://hooks.example.com/off", enabled=False, disabled_reason="manual")
    make_endpoint(tenants.a2.subaccount, "https://hooks.example.com/other-tenant")

    with django_capture_on_commit_callbacks() as callbacks:
        assert webhook_events_publish(subaccount_id=sub.pk, event_type="email.delivered",
                                      data={"email_id": "msg_1"}) == 1
        assert webhook_events_publish(subaccount_id=sub.pk, event_type="email.bounced",
                                      data={"email_id": "msg_1"},
                                      occurred_at=datetime(2026, 5, 1, tzinfo=UTC)) == 2
    assert len(callbacks) == 2  # one enqueue per publish, after commit

    rows = WebhookEvent.objects.order_by("id")
    assert sorted((r.endpoint_id, r.event_type) for r in rows) == sorted([
        (everything.pk, "email.delivered"), (everything.pk, "email.bounced"), (bounces_only.pk, "email.bounced")])
    assert all(r.status == DeliveryStatus.PENDING and r.next_attempt_at is not None for r in rows)
    assert all(r.public_id.startswith("whd_") for r in rows)
    assert len({r.public_id for r in rows}) == 3
    assert all('"timestamp":"2026-05-01T00:00:00.000Z"' in r.body for r in rows if r.event_type == "email.bounced")


def test_it_costs_one_query_when_the_subaccount_has_no_endpoint(tenants, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent",
                                      data={}) == 0


def test_endpoints_are_read_in_one_query_and_rows_written_in_one(tenants, django_assert_num_queries):
    for i in range(5):
        make_endpoint(tenants.a1.subaccount, f"https://hooks.example.com/{i}")
    with django_assert_num_queries(2):
        assert webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent",
                                      data={}) == 5


def test_a_rolled_back_transaction_publishes_nothing(tenants, django_capture_on_commit_callbacks):
    make_endpoint(tenants.a1.subaccount, "https://hooks.example.com/all")
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            assert webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent",
                                          data={}) == 1
            raise RuntimeError("the caller's transaction fails")
    assert WebhookEvent.objects.count() == 0
    assert callbacks == []


def test_an_unknown_event_type_is_a_programming_error(tenants):
    with pytest.raises(ValueError, match="email.nope"):
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.nope", data={})
    with pytest.raises(ValueError):
        webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="webhook.test", data={})
    assert WebhookEndpoint.objects.count() == 0
