"""Delivery against a real HTTP receiver on loopback: signatures, retries, disable rules."""

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.webhooks.helpers import deliver_due, make_due, make_endpoint
from webhooks import delivery, services, transport
from webhooks.models import DeliveryStatus, DisabledReason, WebhookAttempt, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

DELIVERED = {"email_id": "msg_abc", "recipient": "to@example.com", "tags": ["welcome"], "metadata": {"user": "42"}}


def publish(subaccount, event_type="email.delivered", data=None) -> WebhookEvent:
    assert services.webhook_events_publish(subaccount_id=subaccount.pk, event_type=event_type,
                                           data=data or DELIVERED) >= 1
    return WebhookEvent.objects.filter(endpoint__subaccount=subaccount).latest("id")


def assert_within(moment, expected: timedelta, *, jitter: float = delivery.JITTER):
    offset = moment - timezone.now()
    assert expected * (1 - jitter) - timedelta(seconds=2) <= offset <= expected * (1 + jitter), (offset, expected)


def test_it_delivers_a_signed_body_that_verifies_with_the_bytes_received(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)

    deliver_due(endpoint)

    [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == event.public_id
    assert request.headers["Content-Type"] == "application/json"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "email.delivered"
    assert payload["data"] == DELIVERED
    assert payload["timestamp"].endswith("Z")
    event.refresh_from_db()
    assert (event.status, event.attempt_count, event.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 1, None)
    [attempt] = event.attempts.all()
    assert (attempt.status_code, attempt.succeeded, attempt.response_body, attempt.remote_ip) == (200, True, "ok",
                                                                                                  "127.0.0.1")
    assert attempt.webhook_timestamp == int(request.headers["webhook-timestamp"])


def test_a_wrong_secret_does_not_verify(tenants, receiver):
    from standardwebhooks.webhooks import WebhookVerificationError

    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    publish(tenants.a1.subaccount)
    deliver_due(endpoint)
    [request] = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(request.body + b" ", request.headers)


def test_retries_keep_the_id_and_sign_a_new_timestamp_on_the_schedule(tenants, receiver, monkeypatch):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.respond(500, body=b"boom", times=3)

    deliver_due(endpoint)
    event.refresh_from_db()
    assert (event.status, event.attempt_count, event.last_status_code) == (DeliveryStatus.PENDING, 1, 500)
    assert_within(event.next_attempt_at, timedelta(seconds=5))
    assert event.last_error == "HTTP 500"

    # Not due yet: nothing is sent.
    deliver_due(endpoint)
    assert len(receiver.requests) == 1

    for expected in (timedelta(minutes=5), timedelta(minutes=30)):
        # The timestamp has one-second resolution: make sure the next one is different.
        time.sleep(1.05)
        make_due(event)
        deliver_due(endpoint)
        event.refresh_from_db()
        assert_within(event.next_attempt_at, expected)

    time.sleep(1.05)
    make_due(event)
    deliver_due(endpoint)  # the 4th attempt gets the default 200
    requests = receiver.wait_for(4)
    assert {r.headers["webhook-id"] for r in requests} == {event.public_id}
    timestamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert len(set(timestamps)) == 4
    assert len({r.headers["webhook-signature"] for r in requests}) == 4
    assert len({r.body for r in requests}) == 1
    for request in requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    event.refresh_from_db()
    assert (event.status, event.attempt_count) == (DeliveryStatus.SUCCEEDED, 4)
    assert [a.status_code for a in event.attempts.all()] == [500, 500, 500, 200]
    assert [a.response_body for a in event.attempts.all()][:1] == ["boom"]


def test_the_whole_schedule_then_failed(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.default.status = 503
    offsets = []
    for _ in range(len(delivery.RETRY_DELAYS) + 1):
        make_due(event)
        deliver_due(endpoint)
        event.refresh_from_db()
        offsets.append(event.next_attempt_at - timezone.now() if event.next_attempt_at else None)
    assert offsets[-1] is None
    for offset, expected in zip(offsets, delivery.RETRY_DELAYS, strict=False):
        assert expected * 0.9 - timedelta(seconds=2) <= offset <= expected * 1.1
    assert (event.status, event.attempt_count) == (DeliveryStatus.FAILED, 10)
    assert len(receiver.requests) == 10
    endpoint.refresh_from_db()
    assert endpoint.enabled is True  # failing for minutes, not 5 days
    assert endpoint.failing_since is not None


def test_a_redirect_is_a_failure_and_is_not_followed(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.respond(302, headers={"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})

    deliver_due(endpoint)

    time.sleep(0.3)
    assert [r.path for r in receiver.requests] == ["/hook"]
    event.refresh_from_db()
    assert (event.status, event.last_status_code) == (DeliveryStatus.PENDING, 302)
    assert "redirects are not followed" in event.last_error


def test_410_disables_the_endpoint_at_once_and_ends_its_pending_deliveries(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    first = publish(tenants.a1.subaccount)
    receiver.respond(410)
    second = publish(tenants.a1.subaccount, "email.opened")
    WebhookEvent.objects.filter(pk=second.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))

    deliver_due(endpoint)

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, DisabledReason.GONE)
    assert endpoint.auto_disabled
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.last_status_code) == (DeliveryStatus.FAILED, 410)
    assert second.status == DeliveryStatus.FAILED and "disabled" in second.last_error
    assert len(receiver.requests) == 1
    # No new deliveries for a disabled endpoint.
    assert services.webhook_events_publish(subaccount_id=tenants.a1.subaccount.pk, event_type="email.sent",
                                           data={}) == 0
    assert mail.outbox == []  # 410 is the receiver's own decision: no email


def test_retry_after_is_honoured_and_bounded(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.respond(429, headers={"Retry-After": "120"})
    deliver_due(endpoint)
    event.refresh_from_db()
    assert timedelta(seconds=118) <= event.next_attempt_at - timezone.now() <= timedelta(seconds=121)

    receiver.respond(503, headers={"Retry-After": str(7 * 24 * 3600)})
    make_due(event)
    deliver_due(endpoint)
    event.refresh_from_db()
    assert timedelta(hours=23, minutes=59) <= event.next_attempt_at - timezone.now() <= timedelta(hours=24)

    # A Retry-After shorter than the schedule does not make us retry sooner.
    receiver.respond(429, headers={"Retry-After": "1"})
    make_due(event)
    deliver_due(endpoint)
    event.refresh_from_db()
    assert_within(event.next_attempt_at, timedelta(minutes=30))


def test_retry_after_as_an_http_date():
    now = time.time()
    assert transport.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0
    assert transport.parse_retry_after("soon", now=now) is None
    assert transport.parse_retry_after("", now=now) is None


def test_a_slow_receiver_times_out_and_is_retried(tenants, receiver, monkeypatch):
    monkeypatch.setattr(transport, "TIMEOUT_SECONDS", 0.5)
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.respond(200, delay=2)

    started = time.monotonic()
    deliver_due(endpoint)
    assert time.monotonic() - started < 1.8

    event.refresh_from_db()
    assert event.status == DeliveryStatus.PENDING
    assert event.last_status_code is None
    assert event.last_error.startswith("Timed out")
    assert_within(event.next_attempt_at, timedelta(seconds=5))


def test_a_refused_connection_is_recorded_and_retried(tenants, allow_private, listener):
    port = listener.port
    listener.stop()  # nothing listens there any more
    endpoint = make_endpoint(tenants.a1.subaccount, f"http://127.0.0.1:{port}/hook")
    event = publish(tenants.a1.subaccount)
    deliver_due(endpoint)
    event.refresh_from_db()
    assert event.status == DeliveryStatus.PENDING
    assert event.last_error.startswith("Connection failed")


def test_during_a_rotation_both_secrets_sign_for_24_hours(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    old_secret = endpoint.secret
    endpoint = services.webhook_endpoint_rotate_secret(endpoint=endpoint)
    assert endpoint.secret != old_secret and endpoint.secret.startswith("whsec_")
    publish(tenants.a1.subaccount)

    deliver_due(endpoint)

    [request] = receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert Webhook(old_secret).verify(request.body, request.headers)["type"] == "email.delivered"
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "email.delivered"

    # After the overlap only the new secret signs.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    publish(tenants.a1.subaccount)
    deliver_due(endpoint)
    request = receiver.wait_for(2)[1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(endpoint.secret).verify(request.body, request.headers)
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(request.body, request.headers)


def test_failing_everything_for_5_days_disables_and_emails_the_account(tenants, receiver, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    receiver.default.status = 500
    event = publish(tenants.a1.subaccount)
    deliver_due(endpoint)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None
    assert mail.outbox == []

    # Four days and 23 hours of failures: still enabled.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=4, hours=23))
    make_due(event)
    deliver_due(endpoint)
    endpoint.refresh_from_db()
    assert endpoint.enabled

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=5, minutes=1))
    other = publish(tenants.a1.subaccount, "email.bounced")
    WebhookEvent.objects.filter(pk=other.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    make_due(event)
    deliver_due(endpoint)

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, DisabledReason.FAILING)
    assert endpoint.auto_disabled and endpoint.account_notified_at is not None
    assert WebhookEvent.objects.get(pk=other.pk).status == DeliveryStatus.FAILED
    [message] = mail.outbox
    assert message.to == [tenants.a1.account.contact_email]
    assert endpoint.url in message.subject
    assert endpoint.public_id in message.body

    # Re-enabling clears the flag; recovering queues the failed deliveries again.
    endpoint = services.webhook_endpoint_update(endpoint=endpoint, enabled=True)
    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since, endpoint.account_notified_at) == (
        True, "", None, None)
    receiver.default.status = 200
    assert services.webhook_deliveries_recover(endpoint=endpoint, since=timezone.now() - timedelta(hours=1)) == 2
    deliver_due(endpoint)
    assert set(WebhookEvent.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"succeeded"}


def test_one_success_resets_the_failure_clock(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=6))
    publish(tenants.a1.subaccount)
    deliver_due(endpoint)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is None and endpoint.last_success_at is not None


def test_only_the_first_kilobyte_of_the_response_is_kept(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    event = publish(tenants.a1.subaccount)
    receiver.respond(200, body=b"x" * 50_000)
    deliver_due(endpoint)
    attempt = WebhookAttempt.objects.get(event=event)
    assert attempt.response_body == "x" * 1024
    assert attempt.succeeded


def test_the_receiver_down_for_a_stretch_then_up_gets_every_event_once_per_id(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    events = [publish(tenants.a1.subaccount, data={"email_id": f"msg_{i}"}) for i in range(12)]
    receiver.default.status = 502
    for _ in range(3):  # three rounds of an outage
        WebhookEvent.objects.filter(status="pending").update(next_attempt_at=timezone.now())
        deliver_due(endpoint)
    receiver.default.status = 200
    WebhookEvent.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    deliver_due(endpoint)

    assert set(WebhookEvent.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"succeeded"}
    requests = receiver.requests
    assert len(requests) == 12 * 4
    by_id: dict[str, set] = {}
    for request in requests:
        by_id.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert set(by_id) == {e.public_id for e in events}
    # One webhook-id per event: the same id always carried the same event.
    assert all(len(bodies) == 1 for bodies in by_id.values())
    assert {json.loads(next(iter(b)))["data"]["email_id"] for b in by_id.values()} == {f"msg_{i}" for i in range(12)}


def test_a_test_send_is_single_shot_and_does_not_affect_health(tenants, receiver):
    endpoint = make_endpoint(tenants.a1.subaccount, receiver.url)
    receiver.respond(410)
    event = services.webhook_endpoint_test(endpoint=endpoint)
    assert (event.event_type, event.status, event.next_attempt_at) == ("webhook.test", "failed", None)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is None
    [request] = receiver.wait_for(1)
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["data"]["endpoint_id"] == endpoint.public_id
