"""Webhook write paths: publishing events, endpoint management, retries.

Publishing runs inside the caller's transaction (the emails pipeline records an event and
publishes in one transaction, so a crash never loses a webhook); delivery happens after
commit, in workers (webhooks/delivery.py).
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from webhooks.models import SUBSCRIBABLE_EVENT_TYPES, WebhookEndpoint, WebhookEvent
from webhooks.payloads import build_body

logger = logging.getLogger(__name__)


def _enqueue_endpoints(endpoint_ids: list[int]) -> None:
    from webhooks.tasks import webhook_endpoint_deliver

    for endpoint_id in endpoint_ids:
        webhook_endpoint_deliver.delay(endpoint_id)


def enqueue_after_commit(endpoint_ids: list[int]) -> None:
    # robust: a broker hiccup must not fail the caller's request after its data is committed;
    # the beat sweeper finds the due rows anyway.
    ids = sorted(set(endpoint_ids))
    if ids:
        transaction.on_commit(lambda: _enqueue_endpoints(ids), robust=True)


def webhook_events_publish(
    *, subaccount_id: int, event_type: str, data: dict, occurred_at: datetime | None = None
) -> int:
    """Create one pending delivery per enabled endpoint of the sub-account that wants this
    event type, due now; returns how many. Call it inside your transaction: nothing is sent
    unless it commits.

    ``data`` is the event's details (email id, recipient, tags, metadata, ...); the payload is
    ``{"type", "timestamp", "data"}``, shrunk to 20 KB (see webhooks/payloads.py).
    """
    if event_type not in SUBSCRIBABLE_EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {event_type!r}")
    # One indexed query (subaccount, enabled); most sub-accounts have no endpoint and this is
    # all they pay for each email event.
    endpoints = WebhookEndpoint.objects.filter(subaccount_id=subaccount_id, enabled=True).values_list(
        "id", "events"
    )
    targets = [endpoint_id for endpoint_id, events in endpoints if not events or event_type in events]
    if not targets:
        return 0
    now = timezone.now()
    body = build_body(event_type=event_type, occurred_at=occurred_at or now, data=data)
    WebhookEvent.objects.bulk_create([
        WebhookEvent(endpoint_id=endpoint_id, event_type=event_type, body=body, next_attempt_at=now)
        for endpoint_id in targets
    ])
    enqueue_after_commit(targets)
    return len(targets)
