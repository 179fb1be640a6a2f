"""``email_event_record``: the one way an email's life is written down.

Every status change, tracking hit and provider event becomes an EmailEvent row here, in the
caller's transaction, together with its effects: the email's status and counters, the
sub-account's suppressions, and the tenant webhooks' outbox rows (so a crash never loses a
webhook: the event and its webhook deliveries commit or roll back together).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from analytics.services import rollups_apply
from config.draining import drain
from config.ids import new_public_id
from config.instances import instance
from config.recordsets import insert_rows
from emails.models import (
    Email,
    EmailEvent,
    EmailStatus,
    Environment,
    EventType,
    PendingFanout,
    SuppressionReason,
)
from emails.services.suppressions import suppression_add
from webhooks.services import Publication, webhook_events_publish_many

S = EmailStatus
# event type -> (new status, statuses it may replace, timestamp field to set)
TRANSITIONS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    EventType.SENT: (S.SENT, (S.SENDING, S.QUEUED), "sent_at"),
    EventType.DELIVERED: (S.DELIVERED, (S.SENDING, S.SENT, S.DELIVERY_DELAYED), "delivered_at"),
    EventType.DELIVERY_DELAYED: (S.DELIVERY_DELAYED, (S.SENDING, S.SENT), None),
    EventType.BOUNCED: (S.BOUNCED, (S.SENDING, S.SENT, S.DELIVERY_DELAYED, S.DELIVERED), None),
    EventType.COMPLAINED: (S.COMPLAINED, (S.SENDING, S.SENT, S.DELIVERY_DELAYED, S.DELIVERED), None),
    EventType.FAILED: (S.FAILED, (S.QUEUED, S.SENDING, S.SCHEDULED), None),
    EventType.CANCELLED: (S.CANCELLED, (S.QUEUED, S.SCHEDULED), None),
}
SUPPRESSING = {
    EventType.COMPLAINED: SuppressionReason.COMPLAINT,
    EventType.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBE,
}
COUNTERS = {EventType.OPENED: "opens_count", EventType.CLICKED: "clicks_count"}


@dataclass
class NewEvent:
    email: Email
    type: str
    recipient: str = ""
    data: dict = field(default_factory=dict)
    timestamp: datetime | None = None
    provider_event_id: str | None = None


def email_event_record(*, email: Email, type: str, recipient: str = "", data: dict | None = None,
                       timestamp: datetime | None = None, provider_event_id: str | None = None) -> EmailEvent | None:
    """Record one event; returns None when a provider event with that id was already recorded."""
    event = NewEvent(email=email, type=type, recipient=recipient, data=data or {}, timestamp=timestamp,
                     provider_event_id=provider_event_id)
    if provider_event_id:
        try:
            with transaction.atomic():
                return email_events_record([event])[0]
        except IntegrityError:
            return None
    return email_events_record([event])[0]


Recorded = tuple[list[NewEvent], list[EmailEvent]]  # events and their rows


@transaction.atomic(savepoint=False)
def email_events_record(events: list[NewEvent], *, defer_fan_out: bool = False,
                        fan_out_first: Recorded | None = None) -> list[EmailEvent]:
    """Record many events with a handful of queries (accept and dispatch work in batches).

    ``defer_fan_out`` leaves the webhooks and counters to ``email_events_fan_out`` (a
    ``PendingFanout`` row per event, same transaction): the accept path uses it so an API
    request does not pay for them. ``fan_out_first`` are events recorded earlier whose fan-out
    is due now (``email_events_take_pending``): applied in the same webhook publish and counter
    upsert as these, and first, so their webhooks come first.
    """
    first_events, first_rows = fan_out_first or ([], [])
    if not events:
        if first_rows:
            _fan_out(first_events, first_rows)
        return []
    now = timezone.now()
    rows = _insert_events(events, now)
    _apply_transitions(events, now)
    _apply_counters(events)
    _apply_suppressions(events)
    if defer_fan_out:
        PendingFanout.objects.bulk_create([PendingFanout(event=row) for row in rows])
        if first_rows:
            _fan_out(first_events, first_rows)
    else:
        _fan_out([*first_events, *events], [*first_rows, *rows])
    return rows


def _insert_events(events: list[NewEvent], now: datetime) -> list[EmailEvent]:
    values = [{"public_id": new_public_id("evt"), "email_id": e.email.pk, "type": e.type, "recipient": e.recipient,
               "data": e.data, "timestamp": e.timestamp or now, "provider_event_id": e.provider_event_id}
              for e in events]
    ids = dict(insert_rows(EmailEvent, values, now=now, returning=("public_id", "id")))
    rows = []
    for event, row_values in zip(events, values, strict=True):
        row = instance(EmailEvent, id=ids[row_values["public_id"]], **row_values)
        row._state.adding = False
        row.email = event.email
        rows.append(row)
    return rows


def _fan_out(events: list[NewEvent], rows: list[EmailEvent]) -> None:
    _publish_webhooks(events, rows)
    # Last, so the hot per-day counter rows stay locked for as short a time as possible.
    rollups_apply(rows)


FAN_OUT_BATCH = 1000
# What the webhook payload and the counters read from the email (not its bodies).
_FAN_OUT_EMAIL_FIELDS = ("public_id", "subaccount_id", "account_id", "environment", "from_header", "from_domain",
                         "to", "subject", "tags", "metadata")


def email_events_fan_out(*, email_ids: list[int] | None = None, limit: int = FAN_OUT_BATCH) -> int:
    """Apply the webhooks and counters of events recorded with deferred fan-out; returns how many.

    Exactly once: the pending rows are locked (SKIP LOCKED, so concurrent callers split the
    work), fanned out and deleted in one transaction. ``email_ids`` limits it to those emails'
    events. The beat task drains them all; the dispatcher takes its batch's own with
    ``email_events_take_pending``.
    """
    pending = PendingFanout.objects.all()
    if email_ids is not None:
        pending = pending.filter(event__email_id__in=email_ids)
    with transaction.atomic():
        events, rows = _take_locked(pending, limit=limit)
        if rows:
            _fan_out(events, rows)
    return len(rows)


def _take_locked(pending, *, limit: int | None) -> Recorded:
    """Lock these pending rows (skipping ones another transaction holds, where the database can),
    read their events with the email fields the fan-out needs, and delete the pending rows, in
    the caller's transaction."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    ids = list(pending.order_by("event_id").select_for_update(skip_locked=skip_locked, of=("self",))
               .values_list("event_id", flat=True)[:limit])
    if not ids:
        return [], []
    rows = list(EmailEvent.objects.filter(pk__in=ids).select_related("email").order_by("id").only(
        "public_id", "type", "recipient", "data", "timestamp", "email_id",
        *(f"email__{name}" for name in _FAN_OUT_EMAIL_FIELDS)))
    PendingFanout.objects.filter(pk__in=ids).delete()
    return _as_recorded(rows)


def email_events_take_pending(emails: list[Email]) -> Recorded:
    """Take these emails' events whose fan-out is pending, for the caller to fan out in its
    transaction (the dispatcher, together with the ``sent`` events it records:
    ``email_events_record(..., fan_out_first=...)``).

    On PostgreSQL the pending rows are deleted and their events read in one statement
    (``DELETE ... RETURNING``), and the payloads use the caller's email rows instead of reading
    them again: the generic path's three queries were a sixth of a dispatch worker's CPU.
    Still exactly once: a row another transaction is fanning out (the beat task, which locks
    with SKIP LOCKED) makes this DELETE wait for it and then skip the row, already gone, so its
    ``email.queued`` webhook is created first here too. The delete and the fan-out commit
    together, in the caller's transaction.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("email_events_take_pending must run in the transaction that fans them out")
    if connection.vendor != "postgresql":
        return _take_locked(PendingFanout.objects.filter(event__email_id__in=[email.pk for email in emails]),
                            limit=None)
    by_id = {email.pk: email for email in emails}
    quote = connection.ops.quote_name
    data_field = EmailEvent._meta.get_field("data")
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {quote(PendingFanout._meta.db_table)} p USING {quote(EmailEvent._meta.db_table)} e "
            f"WHERE p.event_id = e.id AND e.email_id = ANY(%s) "
            f"RETURNING e.id, e.public_id, e.type, e.recipient, e.data, e.timestamp, e.email_id",
            [list(by_id)])
        fetched = sorted(cursor.fetchall())
    rows = []
    for pk, public_id, event_type, recipient, data, timestamp, email_id in fetched:
        row = instance(EmailEvent, id=pk, public_id=public_id, type=event_type, recipient=recipient,
                       data=data_field.from_db_value(data, None, connection), timestamp=timestamp,
                       email_id=email_id)
        row._state.adding = False
        row.email = by_id[email_id]
        rows.append(row)
    return _as_recorded(rows)


def _as_recorded(rows: list[EmailEvent]) -> Recorded:
    return [NewEvent(email=row.email, type=row.type, recipient=row.recipient, data=row.data,
                     timestamp=row.timestamp) for row in rows], rows


def email_events_fan_out_pending(*, max_rounds: int = 20) -> int:
    """Drain the pending fan-out in batches (the beat task); returns how many events."""
    return drain(email_events_fan_out, batch_size=FAN_OUT_BATCH, max_rounds=max_rounds)


def _apply_transitions(events: list[NewEvent], now: datetime) -> None:
    by_type: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.type in TRANSITIONS:
            by_type[event.type].append(event.email.pk)
    for event_type, ids in by_type.items():
        status, allowed, stamp = TRANSITIONS[event_type]
        changes = {"status": status, "updated_at": now}
        if stamp:
            changes[stamp] = now
        if event_type in (EventType.SENT, EventType.FAILED, EventType.CANCELLED):
            changes["locked_until"] = None
        Email.objects.filter(pk__in=ids, status__in=allowed).update(**changes)
    for event in events:
        if event.type in TRANSITIONS and event.email.status in TRANSITIONS[event.type][1]:
            event.email.status = TRANSITIONS[event.type][0]


def _apply_counters(events: list[NewEvent]) -> None:
    # One UPDATE per (counter, increment) group rather than per event: a flush of 500 opens
    # touches many emails, most of them once.
    increments: dict[tuple[str, int], list[int]] = defaultdict(list)
    per_email: Counter = Counter((COUNTERS[e.type], e.email.pk) for e in events if e.type in COUNTERS)
    for (counter, email_pk), count in per_email.items():
        increments[(counter, count)].append(email_pk)
    for (counter, count), email_pks in sorted(increments.items()):
        Email.objects.filter(pk__in=sorted(email_pks)).update(**{counter: F(counter) + count})


def _apply_suppressions(events: list[NewEvent]) -> None:
    for event in events:
        if not event.recipient or event.email.environment == Environment.TEST:
            continue  # the sandbox's simulated bounces never suppress real addresses
        reason = SUPPRESSING.get(event.type)
        if event.type == EventType.BOUNCED and event.data.get("bounce_type", "hard") == "hard":
            reason = SuppressionReason.BOUNCE
        if reason:
            suppression_add(subaccount_id=event.email.subaccount_id, address=event.recipient, reason=reason,
                            source_email_id=event.email.public_id)


def webhook_payload(event: NewEvent, row: EmailEvent) -> dict:
    email = event.email
    return {
        "email_id": email.public_id,
        "event_id": row.public_id,
        "recipient": event.recipient,
        "from": email.from_header,
        "to": email.to,
        "subject": email.subject,
        "tags": email.tags,
        "metadata": email.metadata,
        "environment": email.environment,
        "details": event.data,
    }


def _publish_webhooks(events: list[NewEvent], rows: list[EmailEvent]) -> None:
    webhook_events_publish_many([
        Publication(subaccount_id=event.email.subaccount_id, event_type=f"email.{event.type}",
                    data=webhook_payload(event, row), occurred_at=row.timestamp)
        for event, row in zip(events, rows, strict=True)
    ])
