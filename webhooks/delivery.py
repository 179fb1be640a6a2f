"""Delivering pending webhook events: claim, send (outside any transaction), record.

Concurrency rules:
- one worker at a time per endpoint (``WebhookEndpoint.lease_until``, taken with a conditional
  UPDATE): a slow receiver holds at most one worker slot, and only for ``TASK_BUDGET_SECONDS``
  before its task goes back to the end of the queue, so other endpoints are not delayed;
- inside that worker, up to ``MAILROOM_WEBHOOK_ENDPOINT_CONCURRENCY`` requests to the endpoint
  run in parallel (threads), which is also the most a receiver ever sees from us at once;
- rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and their ``next_attempt_at``
  pushed ``CLAIM_LEASE`` ahead, so a claim is exclusive and a crashed worker's rows come back
  by themselves; the result is written only if ``attempt_count`` is still the claimed one.
"""

import logging
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from webhooks import signing, transport
from webhooks.models import (
    DeliveryStatus,
    DisabledReason,
    EventType,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

# Delay after the 1st, 2nd, ... failed attempt (DESIGN section 5); 10 attempts in all.
RETRY_DELAYS = (
    timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
    timedelta(hours=5), timedelta(hours=10), timedelta(hours=14), timedelta(hours=20),
    timedelta(hours=24),
)
JITTER = 0.1  # each delay is stretched or shrunk by up to 10 %
RETRY_AFTER_MAX = timedelta(hours=24)
DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
# An in-flight attempt's row is due again after this if its worker died (>> 15 s timeout).
CLAIM_LEASE = timedelta(minutes=5)
ENDPOINT_LEASE = timedelta(minutes=2)
TASK_BUDGET_SECONDS = 20.0
MAX_BATCH = 200
FAST_BATCH_SECONDS = 1.0
SWEEP_LIMIT = 1000
QUEUED_MARKER_SECONDS = 60


def endpoint_concurrency() -> int:
    return max(1, int(getattr(settings, "MAILROOM_WEBHOOK_ENDPOINT_CONCURRENCY", 4)))


def retry_delay(step: int) -> timedelta | None:
    """The jittered delay after failure number ``step + 1``; None when the schedule is over."""
    if step >= len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[step] * random.uniform(1 - JITTER, 1 + JITTER)


def active_secrets(endpoint: WebhookEndpoint, now=None) -> list[str]:
    now = now or timezone.now()
    result = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        result.append(endpoint.previous_secret)
    return result


@dataclass(frozen=True)
class Claimed:
    id: int
    public_id: str
    event_type: str
    body: str
    attempt_count: int
    schedule_step: int


_CLAIM_FIELDS = ("id", "public_id", "event_type", "body", "attempt_count", "schedule_step")


@dataclass
class Batch:
    # The rows' next_attempt_at while claimed: the claim's token. A row whose claim expired and
    # was taken again has another value, and this batch's result for it is dropped.
    claimed_until: datetime
    rows: list[Claimed]


def _claim(endpoint_id: int, limit: int) -> Batch:
    now = timezone.now()
    until = now + CLAIM_LEASE
    with transaction.atomic():
        rows = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list(*_CLAIM_FIELDS)[:limit]
        )
        if rows:
            WebhookEvent.objects.filter(pk__in=[r[0] for r in rows]).update(next_attempt_at=until)
    return Batch(until, [Claimed(*row) for row in rows])


def _send(endpoint: WebhookEndpoint, secrets_: list[str], claimed: Claimed) -> transport.HttpResult:
    body = claimed.body.encode()
    # A new timestamp (and so new signatures) on every attempt; the id never changes.
    timestamp = int(time.time())
    headers = {
        "webhook-id": claimed.public_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(
            secrets_=secrets_, msg_id=claimed.public_id, timestamp=timestamp, body=body
        ),
    }
    result = transport.post(endpoint.url, body=body, headers=headers)
    result.webhook_timestamp = timestamp
    return result


_local = threading.local()


def _pool() -> ThreadPoolExecutor:
    """The calling thread's own pool: with Celery's thread pool, one slow endpoint's requests
    must not queue another worker thread's requests behind them."""
    pool = getattr(_local, "pool", None)
    if pool is None or getattr(_local, "pid", None) != os.getpid():  # a prefork child forked after
        pool = _local.pool = ThreadPoolExecutor(max_workers=endpoint_concurrency(), thread_name_prefix="webhook")
        _local.pid = os.getpid()
    return pool


def _send_batch(endpoint: WebhookEndpoint, batch: Batch) -> list[transport.HttpResult]:
    secrets_ = active_secrets(endpoint)
    if len(batch.rows) == 1 or endpoint_concurrency() == 1:
        return [_send(endpoint, secrets_, c) for c in batch.rows]
    return list(_pool().map(lambda c: _send(endpoint, secrets_, c), batch.rows))


def _failure_fields(claimed: Claimed, result: transport.HttpResult, now: datetime) -> dict:
    delay = retry_delay(claimed.schedule_step)
    if delay is None:
        return {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    if result.retry_after is not None:
        # Not before the receiver asked, but never more than a day away.
        delay = max(delay, min(timedelta(seconds=result.retry_after), RETRY_AFTER_MAX))
    return {"next_attempt_at": now + delay, "schedule_step": claimed.schedule_step + 1}


def _record(endpoint: WebhookEndpoint, batch: Batch, results: list[transport.HttpResult]) -> str:
    """Write the attempts and the next state in one short transaction; returns the
    DisabledReason the endpoint was given now ("" if none)."""
    now = timezone.now()
    attempts: list[WebhookAttempt] = []
    succeeded: dict[int, list[int]] = defaultdict(list)  # status code -> row ids
    successes = failures = 0
    gone = False
    with transaction.atomic():
        still_ours = set(
            WebhookEvent.objects.select_for_update()
            .filter(pk__in=[c.id for c in batch.rows], status=DeliveryStatus.PENDING,
                    next_attempt_at=batch.claimed_until)
            .values_list("id", flat=True)
        )
        for claimed, result in zip(batch.rows, results, strict=True):
            if claimed.id not in still_ours:
                continue  # the claim expired and another worker took the row: its result counts
            is_test = claimed.event_type == EventType.WEBHOOK_TEST
            attempts.append(WebhookAttempt(
                event_id=claimed.id, attempted_at=result.started_at,
                webhook_timestamp=result.webhook_timestamp, status_code=result.status_code,
                duration_ms=result.duration_ms, response_body=result.body[:transport.RESPONSE_BODY_LIMIT],
                error=result.error[:500], succeeded=result.ok, remote_ip=result.remote_ip,
            ))
            if not is_test:  # test sends say nothing about the endpoint's health
                successes += result.ok
                failures += not result.ok
            if result.ok:
                succeeded[result.status_code].append(claimed.id)
                continue
            if result.status_code == 410 and not is_test:
                fields = {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
                gone = True
            else:
                fields = _failure_fields(claimed, result, now)
            WebhookEvent.objects.filter(pk=claimed.id).update(
                attempt_count=F("attempt_count") + 1, last_attempt_at=result.started_at,
                last_status_code=result.status_code, last_error=result.error[:500], **fields,
            )
        # Successes are the common case: one UPDATE per status code, not one per row.
        for status_code, ids in succeeded.items():
            WebhookEvent.objects.filter(pk__in=ids).update(
                status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, succeeded_at=now,
                attempt_count=F("attempt_count") + 1, last_attempt_at=now, last_status_code=status_code,
                last_error="",
            )
        WebhookAttempt.objects.bulk_create(attempts)

        reason = ""
        endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
        if successes:
            endpoints.update(last_success_at=now, failing_since=None)
        elif failures:
            endpoints.update(last_failure_at=now, failing_since=Coalesce(F("failing_since"), now))
        if gone:
            reason = DisabledReason.GONE
        elif failures and not successes and endpoints.filter(
            enabled=True, failing_since__lte=now - DISABLE_AFTER_FAILING_FOR
        ).exists():
            reason = DisabledReason.FAILING
        if reason and not endpoint_disable(endpoint_id=endpoint.pk, reason=reason):
            reason = ""
    if reason == DisabledReason.FAILING:
        endpoint_notify_disabled(endpoint_id=endpoint.pk)
    return reason


def endpoint_disable(*, endpoint_id: int, reason: str) -> bool:
    """Disable an enabled endpoint and end its pending deliveries (they can be retried or
    recovered after re-enabling). Returns False if it was already disabled."""
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now
        )
        if changed:
            WebhookEvent.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).exclude(
                event_type=EventType.WEBHOOK_TEST
            ).update(status=DeliveryStatus.FAILED, next_attempt_at=None,
                     last_error=f"Endpoint disabled ({DisabledReason(reason).label}).")
    if changed:
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return bool(changed)


def endpoint_notify_disabled(*, endpoint_id: int) -> bool:
    """Email the account that an endpoint was disabled for failing (after commit, no transaction)."""
    endpoint = WebhookEndpoint.objects.select_related("subaccount__account").get(pk=endpoint_id)
    account = endpoint.subaccount.account
    if account.contact_email:
        since = endpoint.failing_since.strftime("%Y-%m-%d %H:%M UTC") if endpoint.failing_since else "5 days"
        try:
            send_mail(
                subject=f"Mailroom: webhook endpoint disabled ({endpoint.url})",
                message=(
                    f"Every delivery to your webhook endpoint {endpoint.public_id}\n"
                    f"  {endpoint.url}\n"
                    f"in sub-account {endpoint.subaccount.name} ({endpoint.subaccount.public_id}) has failed "
                    f"since {since}, so Mailroom disabled it.\n\n"
                    "Fix the receiver, re-enable the endpoint (PATCH /api/v1/webhooks/"
                    f"{endpoint.public_id} with enabled=true), then recover the failed deliveries "
                    f"(POST /api/v1/webhooks/{endpoint.public_id}/recover).\n"
                ),
                from_email=None, recipient_list=[account.contact_email],
            )
        except Exception:  # the disable stands; the admin flag still shows it
            logger.exception("could not email %s about webhook endpoint %s", account.public_id, endpoint.public_id)
            return False
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(account_notified_at=timezone.now())
    return True


class _Lease:
    """This worker's hold on an endpoint: ``lease_until`` is the token (a renewal changes it)."""

    def __init__(self, endpoint_id: int, until):
        self.endpoint_id, self.until = endpoint_id, until

    @classmethod
    def acquire(cls, endpoint_id: int) -> "_Lease | None":
        now = timezone.now()
        until = now + ENDPOINT_LEASE
        taken = WebhookEndpoint.objects.filter(pk=endpoint_id).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        ).update(lease_until=until)
        return cls(endpoint_id, until) if taken else None

    def renew(self) -> None:
        until = timezone.now() + ENDPOINT_LEASE
        if WebhookEndpoint.objects.filter(pk=self.endpoint_id, lease_until=self.until).update(lease_until=until):
            self.until = until

    def release(self) -> None:
        WebhookEndpoint.objects.filter(pk=self.endpoint_id, lease_until=self.until).update(lease_until=None)


def _has_due(endpoint_id: int) -> bool:
    return WebhookEvent.objects.filter(
        endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
    ).exists()


def _deliver_while_leased(endpoint_id: int, lease: _Lease, deadline: float) -> bool:
    """Deliver due rows until none is left (False) or the time budget is spent (True)."""
    concurrency = endpoint_concurrency()
    # Batches start at one request per thread and double while the receiver answers quickly
    # (fewer transactions per delivery); a slow receiver keeps them small, so claimed rows never
    # wait long behind it.
    size = concurrency
    while time.monotonic() < deadline:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            return False
        batch = _claim(endpoint_id, size)
        if not batch.rows:
            return False
        if not endpoint.enabled:
            # Published just before the endpoint was disabled: end them like endpoint_disable does.
            WebhookEvent.objects.filter(pk__in=[c.id for c in batch.rows]).update(
                status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="Endpoint disabled."
            )
            continue
        started = time.monotonic()
        results = _send_batch(endpoint, batch)
        elapsed = time.monotonic() - started
        if _record(endpoint, batch, results):
            return False
        size = min(size * 2, MAX_BATCH) if elapsed < FAST_BATCH_SECONDS else concurrency
        lease.renew()
    return True


def endpoint_deliver_due(*, endpoint_id: int) -> None:
    """Deliver an endpoint's due rows, if no other worker is on this endpoint."""
    deadline = time.monotonic() + TASK_BUDGET_SECONDS
    # From now on a new event needs a new task (if this one is past its last check).
    _queued_clear(endpoint_id)
    while True:
        lease = _Lease.acquire(endpoint_id)
        if lease is None:
            return  # another worker has it; it re-checks for due rows after releasing
        try:
            out_of_time = _deliver_while_leased(endpoint_id, lease, deadline)
        finally:
            lease.release()
        if not _has_due(endpoint_id):
            # Checked after the release: a task that found the lease taken while we were
            # finishing relies on this to get its rows delivered.
            return
        if out_of_time or time.monotonic() >= deadline:
            # Back of the queue, so one busy or slow endpoint does not keep the worker.
            endpoints_enqueue([endpoint_id])
            return


def event_deliver_now(*, event: WebhookEvent) -> None:
    """Send one row claimed by its creator immediately, in the calling process (the test send)."""
    endpoint = event.endpoint
    batch = Batch(event.next_attempt_at, [Claimed(*(getattr(event, f) for f in _CLAIM_FIELDS))])
    _record(endpoint, batch, _send_batch(endpoint, batch))


def _queued_key(endpoint_id: int) -> str:
    return f"webhooks:queued:{endpoint_id}"


def endpoints_enqueue(endpoint_ids: list[int]) -> None:
    """Enqueue one delivery task per endpoint, unless one is already waiting in the queue.

    Every email event publishes after its own commit; without this, a busy endpoint would get
    one task per event, each only finding the endpoint leased. The marker is cleared when the
    task starts, and expires, so a lost task costs at most ``QUEUED_MARKER_SECONDS`` (and the
    sweeper finds due rows regardless).
    """
    from webhooks.tasks import webhook_endpoint_deliver

    for endpoint_id in endpoint_ids:
        try:
            fresh = cache.add(_queued_key(endpoint_id), 1, timeout=QUEUED_MARKER_SECONDS)
        except Exception:  # a cache outage must not stop deliveries: enqueue anyway
            logger.warning("webhook enqueue marker unavailable", exc_info=True)
            fresh = True
        if fresh:
            webhook_endpoint_deliver.delay(endpoint_id)


def _queued_clear(endpoint_id: int) -> None:
    try:
        cache.delete(_queued_key(endpoint_id))
    except Exception:
        logger.warning("webhook enqueue marker unavailable", exc_info=True)


def sweep(*, limit: int = SWEEP_LIMIT) -> int:
    """Enqueue a delivery task for every endpoint with due rows and no worker on it."""
    now = timezone.now()
    endpoint_ids = list(
        WebhookEvent.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(endpoint__lease_until__isnull=True) | Q(endpoint__lease_until__lt=now))
        .order_by()
        .values_list("endpoint_id", flat=True)
        .distinct()[:limit]
    )
    endpoints_enqueue(endpoint_ids)
    return len(endpoint_ids)
