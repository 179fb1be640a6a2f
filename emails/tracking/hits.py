"""Opens and clicks: written by the public endpoints in one statement, made events in batches.

The pixel and click endpoints are the hottest public routes (every recipient, every open), so
they only verify the token (no query), look up the click's target (one query) and INSERT a
``TrackingHit``. ``tracking_hits_flush`` (a beat task every couple of seconds) turns hits into
``opened``/``clicked`` events through ``email_events_record``: a few queries per batch instead
of a transaction with webhooks and counters per request.
"""

import ipaddress
import logging
from datetime import datetime

from django.db import connection, transaction

from config.draining import drain
from emails.models import Email, EmailRecipient, EventType, TrackedLink, TrackingHit, TrackingHitKind
from emails.services.events import NewEvent, email_events_record
from emails.tracking.machine import machine_reason

logger = logging.getLogger(__name__)

FLUSH_BATCH = 500
USER_AGENT_MAX = 512
_FIRST_FIELD = {EventType.OPENED: "first_opened_at", EventType.CLICKED: "first_clicked_at"}


def clean_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def clean_user_agent(value: str | None) -> str:
    # PostgreSQL text cannot hold NUL; anything past 512 characters is not a real browser's.
    return (value or "").replace("\x00", "")[:USER_AGENT_MAX]


def tracked_link_url(*, email_public_id: str, link_index: int) -> str | None:
    """The stored target of a click: one indexed query (email public id, link index)."""
    urls = list(TrackedLink.objects.filter(email__public_id=email_public_id, index=link_index)
                .values_list("url", flat=True)[:1])
    return urls[0] if urls else None


# The two statements below run on every open and click, so they are plain SQL: the ORM's
# query building costs more than PostgreSQL's work here, and so does sending a timestamp
# (CURRENT_TIMESTAMP is the database's clock, the one event times are compared with anyway;
# SQLite's has whole seconds). PostgreSQL does not cast a text value to inet on its own
# inside INSERT ... SELECT, hence the explicit CAST.

def _ip_placeholder() -> str:
    return "CAST(%s AS inet)" if connection.vendor == "postgresql" else "%s"


def tracking_open_store(*, email_public_id: str, ip: str | None, user_agent: str | None) -> None:
    """One INSERT: the open, to be made an event by the flush."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TrackingHit._meta.db_table} (kind, email_public_id, link_index, url, ip, user_agent, "
            f"created_at) VALUES (%s, %s, NULL, '', {_ip_placeholder()}, %s, CURRENT_TIMESTAMP)",
            [TrackingHitKind.OPEN, email_public_id, clean_ip(ip), clean_user_agent(user_agent)])


def tracking_click_store(*, email_public_id: str, link_index: int, ip: str | None,
                         user_agent: str | None) -> str | None:
    """Store the click and return its stored target, in one statement (the INSERT takes the URL
    from the link row); None when the email has no such link (nothing stored)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TrackingHit._meta.db_table} (kind, email_public_id, link_index, url, ip, user_agent, "
            f"created_at) SELECT %s, e.public_id, l.{connection.ops.quote_name('index')}, l.url, "
            f"{_ip_placeholder()}, %s, CURRENT_TIMESTAMP FROM {TrackedLink._meta.db_table} l "
            f"JOIN {Email._meta.db_table} e ON e.id = l.email_id "
            f"WHERE e.public_id = %s AND l.{connection.ops.quote_name('index')} = %s RETURNING url",
            [TrackingHitKind.CLICK, clean_ip(ip), clean_user_agent(user_agent), email_public_id, link_index])
        row = cursor.fetchone()
    return row[0] if row else None


def engagement_data(*, email: Email, event_type: str, recipient: str, user_agent: str | None, ip: str | None,
                    at: datetime, url: str | None = None, decided: set | None = None) -> dict:
    """The data of an ``opened``/``clicked`` event: ``machine`` and ``unique`` flags, user agent, IP
    (and the URL of a click).

    ``unique`` is the recipient's first human open (or click): a guarded UPDATE sets
    ``first_opened_at`` (``first_clicked_at``) only while it is empty, so of two concurrent hits
    exactly one wins. Call it inside the transaction that records the event. ``decided`` lets a
    batch skip the UPDATE for a recipient it has already settled.
    """
    machine = machine_reason(user_agent=user_agent, ip=ip, at=at, sent_at=email.sent_at) is not None
    unique = False
    if not machine and recipient:
        key = (email.pk, recipient, event_type)
        if decided is None or key not in decided:
            field = _FIRST_FIELD[event_type]
            unique = EmailRecipient.objects.filter(
                email_id=email.pk, address=recipient.lower(), **{f"{field}__isnull": True}
            ).update(**{field: at}) == 1
            if decided is not None:
                decided.add(key)
    data = {"machine": machine, "unique": unique, "user_agent": user_agent or "", "ip": ip}
    if event_type == EventType.CLICKED:
        data["url"] = url or ""
    return data


def primary_recipients(email_ids: list[int]) -> dict[int, str]:
    """The recipient a pixel or link speaks for: the message goes out once with one body, so
    hits are the first envelope recipient's, the one List-Unsubscribe is made for too."""
    primary: dict[int, str] = {}
    for email_id, address in (EmailRecipient.objects.filter(email_id__in=email_ids, suppressed=False)
                              .order_by("email_id", "id").values_list("email_id", "address")):
        primary.setdefault(email_id, address)
    return primary


def tracking_hits_flush(*, limit: int = FLUSH_BATCH) -> int:
    """Turn up to ``limit`` stored hits into events; returns how many hits were consumed.

    Concurrent flushes take disjoint rows (SKIP LOCKED); on SQLite the IMMEDIATE transaction
    serialises them. Hits of emails deleted meanwhile are dropped.
    """
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        hits = list(TrackingHit.objects.select_for_update(skip_locked=skip_locked).order_by("id")[:limit])
        if not hits:
            return 0
        emails = {email.public_id: email for email in Email.objects.filter(
            public_id__in={hit.email_public_id for hit in hits}).defer("html", "text", "source_html")}
        primary = primary_recipients([email.pk for email in emails.values()])
        decided: set = set()
        events = []
        for hit in hits:
            email = emails.get(hit.email_public_id)
            if email is None:
                continue
            event_type = EventType.OPENED if hit.kind == TrackingHitKind.OPEN else EventType.CLICKED
            recipient = primary.get(email.pk, "")
            data = engagement_data(email=email, event_type=event_type, recipient=recipient,
                                   user_agent=hit.user_agent, ip=hit.ip, at=hit.created_at, url=hit.url,
                                   decided=decided)
            events.append(NewEvent(email=email, type=event_type, recipient=recipient, data=data,
                                   timestamp=hit.created_at))
        email_events_record(events)
        TrackingHit.objects.filter(pk__in=[hit.pk for hit in hits]).delete()
    if len(events) < len(hits):
        logger.info("Dropped %d tracking hits of deleted emails", len(hits) - len(events))
    return len(hits)


def tracking_hits_flush_all(*, max_batches: int = 20) -> int:
    """Drain the backlog, a bounded number of batches per call (the beat task's body)."""
    return drain(tracking_hits_flush, batch_size=FLUSH_BATCH, max_rounds=max_batches)
