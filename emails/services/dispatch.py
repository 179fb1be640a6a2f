"""Delivering claimed emails (DESIGN section 4, steps 6-7).

claim (queued -> sending, with a lease) -> build MIME + DKIM -> hand to the backend over one
connection per batch -> record each outcome in a short transaction. No network I/O happens
inside a transaction; a worker that dies mid-batch leaves rows in ``sending`` whose lease
expires, and the sweeper requeues them (at-least-once, recognisable by Message-ID).
"""

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Account, SubAccount, TenantStatus
from config.recordsets import insert_rows
from domains.selectors import dkim_signing_key
from emails.dkim import dkim_sign
from emails.mime import BuiltMessage, build_mime, outgoing_message
from emails.models import (
    AttemptOutcome,
    DeliveryAttempt,
    Email,
    EmailAttachment,
    EmailRecipient,
    EmailStatus,
    Environment,
    EventType,
)
from emails.providers.transport import SendOutcome, Transport
from emails.services.events import NewEvent, email_events_record, email_events_take_pending
from emails.simulator import simulated_events

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# Backoff after the n-th failed attempt: 30 s, 1 min, 2 min, ... capped at 2 h, with jitter.
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 2 * 3600


def lease() -> timedelta:
    """How long a claim is exclusive (``MAILROOM_SEND_LEASE_SECONDS``, default 5 min).

    It must outlast the slowest batch (50 messages over one connection): a lease that expires
    while its worker is still sending lets the sweeper hand the rows to another worker, which
    sends them again. A shorter lease recovers a dead worker's rows sooner.
    """
    return timedelta(seconds=settings.MAILROOM_SEND_LEASE_SECONDS)


def batch_size() -> int:
    """Emails claimed and sent over one backend connection (``MAILROOM_DISPATCH_BATCH_SIZE``,
    default 200). Each batch costs about ten statements and a task whatever its size; a smaller
    batch suits an SMTP server that limits messages per connection."""
    return settings.MAILROOM_DISPATCH_BATCH_SIZE


def backoff(attempt: int) -> timedelta:
    seconds = min(BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0), BACKOFF_CAP_SECONDS)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def not_suspended(emails: QuerySet[Email]) -> QuerySet[Email]:
    """Leave out mail of suspended accounts and sub-accounts: it stays queued, untouched, and is
    claimed once the tenant is resumed. Subqueries, not joins, so FOR UPDATE locks only emails."""
    return (emails.exclude(account_id__in=Account.objects.filter(status=TenantStatus.SUSPENDED).values("pk"))
            .exclude(subaccount_id__in=SubAccount.objects.filter(status=TenantStatus.SUSPENDED).values("pk")))


def email_claim(*, ids: list[int] | None = None, limit: int | None = None) -> list[int]:
    """Move due queued rows to ``sending`` atomically; returns the ids this caller now owns.

    ``ids`` are claimed first (the fast path after an API send); the batch is topped up with
    other due rows so one backend connection carries as many messages as possible.
    """
    return [email.pk for email in _claim(ids=ids, limit=limit)]


def _claim(*, ids: list[int] | None, limit: int | None) -> list[Email]:
    """``email_claim``, returning the claimed rows as they are after the claim."""
    limit = limit or batch_size()
    now = timezone.now()
    skip_locked = connection.features.has_select_for_update_skip_locked
    due = not_suspended(Email.objects.filter(status=EmailStatus.QUEUED, next_attempt_at__lte=now))
    with transaction.atomic():
        claimed: list[int] = []
        if ids:
            claimed = list(due.filter(pk__in=ids).select_for_update(skip_locked=skip_locked)
                           .values_list("pk", flat=True)[:limit])
        if len(claimed) < limit:
            claimed += list(due.exclude(pk__in=claimed).order_by("next_attempt_at")
                            .select_for_update(skip_locked=skip_locked)
                            .values_list("pk", flat=True)[:limit - len(claimed)])
        if not claimed:
            return []
        changes = {"status": EmailStatus.SENDING, "locked_until": now + lease(), "updated_at": now}
        if connection.vendor == "postgresql":
            return _claimed_rows(claimed, changes)
        Email.objects.filter(pk__in=claimed, status=EmailStatus.QUEUED).update(attempts=F("attempts") + 1, **changes)
    return list(Email.objects.filter(pk__in=claimed, status=EmailStatus.SENDING).order_by("pk"))


def _claimed_rows(claimed: list[int], changes: dict) -> list[Email]:
    """The claim's UPDATE, returning the whole rows (PostgreSQL): the dispatcher needs them all,
    and reading them back was a second statement and query compilation per batch."""
    quote = connection.ops.quote_name
    columns = [field.column for field in Email._meta.concrete_fields]
    assignments = ", ".join(f"{quote(Email._meta.get_field(name).column)} = %s" for name in changes)
    sql = (f"UPDATE {quote(Email._meta.db_table)} SET {assignments}, "
           f"{quote('attempts')} = {quote('attempts')} + 1 WHERE id = ANY(%s) AND status = %s "
           f"RETURNING {', '.join(quote(column) for column in columns)}")
    params = [*changes.values(), claimed, EmailStatus.QUEUED]
    return sorted(Email.objects.raw(sql, params), key=lambda email: email.pk)


@dataclass
class _Result:
    email: Email
    outcome: SendOutcome
    simulated: bool = False
    envelope: tuple[str, ...] = ()


@dataclass
class _Parts:
    """What a batch's messages are built from besides the email rows, read with one query per
    table (``prefetch_related`` would cost more than the MIME building: a queryset clone per
    ``.all()`` and a model instance per recipient)."""

    envelopes: dict[int, list[str]]  # email id -> addresses to deliver to (not suppressed)
    attachments: dict[int, list[EmailAttachment]]  # their content is read when a message is built

    @classmethod
    def load(cls, email_ids: list[int]) -> "_Parts":
        envelopes: dict[int, list[str]] = defaultdict(list)
        for email_id, address in (EmailRecipient.objects.filter(email_id__in=email_ids, suppressed=False)
                                  .order_by("id").values_list("email_id", "address")):
            envelopes[email_id].append(address)
        attachments: dict[int, list[EmailAttachment]] = defaultdict(list)
        # Without their content: up to 10 MiB per email would otherwise sit in memory for the
        # whole batch. Each attachment's content is read when its message is built.
        for attachment in EmailAttachment.objects.filter(email_id__in=email_ids).defer("content").order_by("id"):
            attachments[attachment.email_id].append(attachment)
        return cls(envelopes, attachments)


def build_message(email: Email, parts: "_Parts | None" = None, signing_keys: dict | None = None):
    """The message for the backend: MIME with the unsubscribe footer, DKIM-signed when the
    domain has a key. ``parts`` and ``signing_keys`` are the batch's (loaded here if not given)."""
    parts = parts or _Parts.load([email.pk])
    envelope, attachments = parts.envelopes[email.pk], parts.attachments[email.pk]
    raw = build_mime(email=email, envelope_to=envelope, attachments=attachments).as_bytes()
    # A batch mostly shares one sender domain: look its key up once (the lookup IDNA-encodes
    # the domain before its cache, a few percent of a worker's CPU when done per message).
    signing_keys = {} if signing_keys is None else signing_keys
    if (email.subaccount_id, email.from_domain) not in signing_keys:
        signing_keys[email.subaccount_id, email.from_domain] = dkim_signing_key(
            subaccount_id=email.subaccount_id, domain=email.from_domain)
    key = signing_keys[email.subaccount_id, email.from_domain]
    if key is not None:
        raw = dkim_sign(raw, domain=key.domain, selector=key.selector, private_key_pem=key.private_key_pem)
    return BuiltMessage(raw=raw, email_public_id=email.public_id, envelope_from=email.from_address,
                        envelope_recipients=envelope,
                        make_django=lambda: outgoing_message(email=email, envelope_to=envelope,
                                                             attachments=attachments, raw=raw))


def email_dispatch(*, ids: list[int] | None = None, limit: int | None = None,
                   on_backlog: Callable[[], None] | None = None) -> int:
    """Claim and deliver one batch; returns how many emails were claimed.

    ``on_backlog`` is called right after a full claim, before sending: more is probably due,
    and another worker can start on it while this one sends (the tasks queue the next round).
    Messages are built a group at a time (``_built_in_groups``) and the claim's lease is
    renewed while the batch takes long (``_LeaseKeeper``).
    """
    limit = limit or batch_size()
    emails = _claim(ids=ids, limit=limit)
    if not emails:
        return 0
    if on_backlog is not None and len(emails) >= limit:
        on_backlog()
    parts = _Parts.load([email.pk for email in emails])
    results: list[_Result] = []
    signing_keys: dict = {}
    keeper = _LeaseKeeper([email.pk for email in emails])
    with Transport() as transport:
        for built in _built_in_groups(emails, parts, signing_keys, results):
            for email, message in built:
                keeper.keep()
                results.append(_Result(email, transport.send(message)))
    _record(results)
    return len(emails)


# A group of built messages waiting for the transport: at most this many, or this many bytes.
GROUP_MESSAGES = 200
GROUP_BYTES = 16 * 1024 * 1024


def _built_in_groups(emails: list[Email], parts: _Parts, signing_keys: dict, results: list[_Result]):
    """Yield groups of (email, message) for the live emails.

    Building a group, then sending it, costs a fifth less CPU per message than building each
    message right before sending it (bench/dispatch.py: 0.67 against 0.81 ms), and the group's
    cap keeps a batch of large attachments from being held in memory all at once. Messages that
    cannot be built, and test-key mail, go straight to ``results``.
    """
    built: list[tuple[Email, object]] = []
    size = 0
    for email in emails:
        try:
            message = build_message(email, parts, signing_keys)
        except Exception as exc:  # a message we cannot build will never send: fail it, keep the batch
            logger.exception("Building %s failed", email.public_id)
            results.append(_Result(email, SendOutcome(ok=False, permanent=True, response=f"build error: {exc}")))
            continue
        finally:
            parts.attachments.pop(email.pk, None)  # their content is in the message now
        if email.environment == Environment.TEST:
            results.append(_Result(email, SendOutcome(ok=True, response="simulated (test key)"), simulated=True,
                                   envelope=tuple(parts.envelopes[email.pk])))
            continue
        built.append((email, message))
        size += len(message.raw)
        if len(built) >= GROUP_MESSAGES or size >= GROUP_BYTES:
            yield built
            built, size = [], 0
    if built:
        yield built


class _LeaseKeeper:
    """Extends the batch's claim once a third of the lease has passed, so a large batch to a
    slow server is never handed to another worker while this one still sends it. The rows
    stay ``sending`` until the batch is recorded, sent ones included: all are renewed."""

    def __init__(self, email_ids: list[int]):
        self._email_ids = email_ids
        self._renew_at = timezone.now() + lease() / 3

    def keep(self) -> None:
        now = timezone.now()
        if now < self._renew_at:
            return
        Email.objects.filter(pk__in=self._email_ids, status=EmailStatus.SENDING).update(locked_until=now + lease())
        self._renew_at = now + lease() / 3


def _record(results: list[_Result]) -> None:
    now = timezone.now()
    with transaction.atomic():
        # The accept path left these emails' first events for later: they are fanned out with
        # this batch's events, first, so a tenant's email.queued webhook comes before its
        # email.sent (one webhook publish and one counter upsert for both).
        pending = email_events_take_pending([result.email for result in results])
        attempts, events = [], []
        for result in results:
            email, outcome = result.email, result.outcome
            attempts.append(dict(
                email_id=email.pk, number=email.attempts, attempted_at=now, duration_ms=outcome.duration_ms,
                response=outcome.response,
                outcome=(AttemptOutcome.SIMULATED if result.simulated else AttemptOutcome.SENT if outcome.ok
                         else AttemptOutcome.PERMANENT if outcome.permanent else AttemptOutcome.TRANSIENT),
            ))
            if outcome.ok:
                if outcome.provider_message_id and outcome.provider_message_id != email.provider_message_id:
                    Email.objects.filter(pk=email.pk).update(provider_message_id=outcome.provider_message_id)
                events.append(NewEvent(email=email, type=EventType.SENT, timestamp=now,
                                       data={"response": outcome.response}))
                if result.simulated:
                    events.extend(_simulated(email, result.envelope, now))
            elif outcome.permanent or email.attempts >= MAX_ATTEMPTS:
                Email.objects.filter(pk=email.pk).update(last_error=outcome.response)
                events.append(NewEvent(email=email, type=EventType.FAILED, timestamp=now, data={
                    "reason": outcome.response, "attempts": email.attempts, "permanent": outcome.permanent}))
            else:
                # Back to the outbox; the sweeper publishes it again when next_attempt_at passes.
                Email.objects.filter(pk=email.pk, status=EmailStatus.SENDING).update(
                    status=EmailStatus.QUEUED, next_attempt_at=now + backoff(email.attempts), enqueued_at=None,
                    locked_until=None, last_error=outcome.response, updated_at=now)
        insert_rows(DeliveryAttempt, attempts)
        email_events_record(events, fan_out_first=pending)


def _simulated(email: Email, envelope: tuple[str, ...], now) -> list[NewEvent]:
    events = []
    for recipient in envelope:
        for offset, (event_type, data) in enumerate(simulated_events(recipient), start=1):
            events.append(NewEvent(email=email, type=event_type, recipient=recipient,
                                   data={**data, "simulated": True}, timestamp=now + timedelta(milliseconds=offset)))
    return events
