"""Webhook write paths: publishing events, endpoint management, retries.

Publishing runs inside the caller's transaction (the emails pipeline records an event and
publishes in one transaction, so a crash never loses a webhook); delivery happens after
commit, in workers (webhooks/delivery.py).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import SubAccount
from config.api.errors import Conflict, ValidationError
from webhooks import delivery, signing, targets
from webhooks.models import (
    SUBSCRIBABLE_EVENT_TYPES,
    DeliveryStatus,
    DisabledReason,
    EventType,
    WebhookEndpoint,
    WebhookEvent,
)
from webhooks.payloads import build_body

logger = logging.getLogger(__name__)


def enqueue_after_commit(endpoint_ids: list[int]) -> None:
    # robust: a broker hiccup must not fail the caller's request after its data is committed;
    # the beat sweeper finds the due rows anyway.
    ids = sorted(set(endpoint_ids))
    if ids:
        transaction.on_commit(lambda: delivery.endpoints_enqueue(ids), robust=True)


@dataclass(frozen=True)
class Publication:
    subaccount_id: int
    event_type: str
    data: dict
    occurred_at: datetime | None = None


def webhook_events_publish(
    *, subaccount_id: int, event_type: str, data: dict, occurred_at: datetime | None = None
) -> int:
    """Create one pending delivery per enabled endpoint of the sub-account that wants this
    event type, due now; returns how many. Call it inside your transaction: nothing is sent
    unless it commits.

    ``data`` is the event's details (email id, recipient, tags, metadata, ...); the payload is
    ``{"type", "timestamp", "data"}``, shrunk to 20 KB (see webhooks/payloads.py).
    """
    return webhook_events_publish_many([Publication(subaccount_id, event_type, data, occurred_at)])


def webhook_events_publish_many(publications: list[Publication]) -> int:
    """``webhook_events_publish`` for a batch (a 500-email send): one endpoint query in all."""
    for publication in publications:
        if publication.event_type not in SUBSCRIBABLE_EVENT_TYPES:
            raise ValueError(f"Unknown webhook event type {publication.event_type!r}")
    if not publications:
        return 0
    # One indexed query (subaccount, enabled); most sub-accounts have no endpoint and this is
    # all they pay for each batch of email events.
    endpoints: dict[int, list[tuple[int, list]]] = defaultdict(list)
    for endpoint_id, subaccount_id, events in WebhookEndpoint.objects.filter(
            subaccount_id__in={p.subaccount_id for p in publications}, enabled=True
    ).values_list("id", "subaccount_id", "events"):
        endpoints[subaccount_id].append((endpoint_id, events))
    if not endpoints:
        return 0
    now = timezone.now()
    rows = []
    for publication in publications:
        targets = [endpoint_id for endpoint_id, events in endpoints.get(publication.subaccount_id, ())
                   if not events or publication.event_type in events]
        if not targets:
            continue
        body = build_body(event_type=publication.event_type, occurred_at=publication.occurred_at or now,
                          data=publication.data)
        rows.extend(WebhookEvent(endpoint_id=endpoint_id, event_type=publication.event_type, body=body,
                                 next_attempt_at=now) for endpoint_id in targets)
    WebhookEvent.objects.bulk_create(rows)
    enqueue_after_commit([row.endpoint_id for row in rows])
    return len(rows)


# --- Endpoints ------------------------------------------------------------------------------

MAX_ENDPOINTS_PER_SUBACCOUNT = 20
ROTATION_OVERLAP = timedelta(hours=24)


def _check_url(url: str) -> None:
    try:
        targets.url_check(url)
    except targets.TargetRefused as exc:
        raise ValidationError(str(exc), details={"url": [str(exc)]}) from None


def _check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in SUBSCRIBABLE_EVENT_TYPES]
    if unknown:
        message = f"Unknown event types: {', '.join(unknown)}."
        raise ValidationError(message, details={"events": [message]})
    return list(dict.fromkeys(events))


def _check_secret(secret: str) -> str:
    try:
        signing.secret_key(secret)
    except signing.InvalidSecret as exc:
        raise ValidationError(str(exc), details={"secret": [str(exc)]}) from None
    return secret


def webhook_endpoint_create(
    *, subaccount: SubAccount, url: str, events: list[str] | None = None, description: str = "",
    secret: str | None = None, enabled: bool = True,
) -> WebhookEndpoint:
    """Create an endpoint; ``secret`` is generated (32 random bytes) when not given. The URL is
    resolved now (DNS, no request) and refused if it points at a private address."""
    events = _check_events(events or [])
    secret = _check_secret(secret) if secret else signing.secret_generate()
    _check_url(url)
    if WebhookEndpoint.objects.filter(subaccount=subaccount).count() >= MAX_ENDPOINTS_PER_SUBACCOUNT:
        raise ValidationError(f"A sub-account may have at most {MAX_ENDPOINTS_PER_SUBACCOUNT} webhook endpoints.")
    endpoint = WebhookEndpoint(subaccount=subaccount, url=url, events=events, description=description,
                               secret=secret, enabled=enabled)
    if not enabled:
        endpoint.disabled_reason, endpoint.disabled_at = DisabledReason.MANUAL, timezone.now()
    endpoint.save()
    return endpoint


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, url: str | None = None, events: list[str] | None = None,
    description: str | None = None, enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint. Disabling ends its pending deliveries; enabling clears the disabled
    reason and the failure history (failed deliveries stay failed: retry or recover them)."""
    fields: dict = {}
    if events is not None:
        fields["events"] = _check_events(events)
    if url is not None and url != endpoint.url:
        _check_url(url)
        fields["url"] = url
    if description is not None:
        fields["description"] = description
    if fields:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(updated_at=timezone.now(), **fields)
    if enabled is False and endpoint.enabled:
        delivery.endpoint_disable(endpoint_id=endpoint.pk, reason=DisabledReason.MANUAL)
    elif enabled is True and not endpoint.enabled:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            enabled=True, disabled_reason="", disabled_at=None, failing_since=None, account_notified_at=None,
            updated_at=timezone.now(),
        )
    endpoint.refresh_from_db()
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, secret: str | None = None) -> WebhookEndpoint:
    """Replace the secret; the previous one keeps signing (a second signature) for 24 h so
    receivers can switch without losing events. A second rotation within 24 h drops the
    oldest secret."""
    new_secret = _check_secret(secret) if secret else signing.secret_generate()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        endpoint.secret = new_secret
        endpoint.save(update_fields=["previous_secret", "previous_secret_expires_at", "secret", "updated_at"])
    return endpoint


def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookEvent:
    """Send a signed ``webhook.test`` event now, in this process, and return its delivery with
    the attempt. Test sends are not retried and do not count towards disabling the endpoint."""
    now = timezone.now()
    body = build_body(event_type=EventType.WEBHOOK_TEST, occurred_at=now, data={
        "endpoint_id": endpoint.public_id,
        "message": "This is a test event sent from Mailroom.",
    })
    # Created already claimed (lease in next_attempt_at): no worker picks it up meanwhile.
    event = WebhookEvent.objects.create(
        endpoint=endpoint, event_type=EventType.WEBHOOK_TEST, body=body,
        next_attempt_at=now + delivery.CLAIM_LEASE, schedule_step=len(delivery.RETRY_DELAYS),
    )
    delivery.event_deliver_now(event=event)
    event.refresh_from_db()
    return event


# --- Deliveries -----------------------------------------------------------------------------

def _requeue(queryset) -> int:
    return queryset.update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), schedule_step=0,
                           succeeded_at=None)


def webhook_delivery_retry(*, event: WebhookEvent) -> WebhookEvent:
    """Send a delivery again as soon as possible (succeeded and failed ones included), with a
    fresh retry schedule and the same ``webhook-id``."""
    endpoint = event.endpoint
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it before retrying deliveries.")
    qs = WebhookEvent.objects.filter(pk=event.pk)
    if event.event_type == EventType.WEBHOOK_TEST:
        # Test events stay single-shot.
        qs.update(status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), succeeded_at=None)
    else:
        _requeue(qs)
    enqueue_after_commit([endpoint.pk])
    event.refresh_from_db()
    return event


def webhook_deliveries_recover(*, endpoint: WebhookEndpoint, since: datetime, until: datetime | None = None) -> int:
    """Queue again every failed delivery of the endpoint created since ``since`` (and before
    ``until``); returns how many."""
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it before recovering deliveries.")
    qs = WebhookEvent.objects.filter(endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since).exclude(
        event_type=EventType.WEBHOOK_TEST
    )
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    count = _requeue(qs)
    if count:
        enqueue_after_commit([endpoint.pk])
    return count
