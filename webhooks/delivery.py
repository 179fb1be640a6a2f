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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
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
BATCH_PER_THREAD = 5
SWEEP_LIMIT = 1000


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


def _claim(endpoint_id: int, limit: int) -> list[Claimed]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list(*_CLAIM_FIELDS)[:limit]
        )
        if rows:
            WebhookEvent.objects.filter(pk__in=[r[0] for r in rows]).update(next_attempt_at=now + CLAIM_LEASE)
    return [Claimed(*row) for row in rows]


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


def _send_batch(endpoint: WebhookEndpoint, batch: list[Claimed]) -> list[transport.HttpResult]:
    secrets_ = active_secrets(endpoint)
    if len(batch) == 1 or endpoint_concurrency() == 1:
        return [_send(endpoint, secrets_, c) for c in batch]
    return list(_pool().map(lambda c: _send(endpoint, secrets_, c), batch))


def _record(endpoint: WebhookEndpoint, batch: list[Claimed], results: list[transport.HttpResult]) -> str:
    """Write the attempts and the next state in one short transaction; returns the
    DisabledReason the endpoint was given now ("" if none)."""
    now = timezone.now()
    attempts: list[WebhookAttempt] = []
    successes = failures = 0
    gone = False
    with transaction.atomic():
        for claimed, result in zip(batch, results, strict=True):
            is_test = claimed.event_type == EventType.WEBHOOK_TEST
            fields: dict = {"last_attempt_at": result.started_at, "last_status_code": result.status_code,
                            "last_error": result.error[:500]}
            if result.ok:
                fields.update(status=DeliveryStatus.SUCCEEDED, next_attempt_at=None, succeeded_at=now)
            elif result.status_code == 410 and not is_test:
                fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
                gone = True
            else:
                delay = retry_delay(claimed.schedule_step)
                if delay is None:
                    fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
                else:
                    if result.retry_after is not None:
                        # Not before the receiver asked, but never more than a day away.
                        delay = max(delay, min(timedelta(seconds=result.retry_after), RETRY_AFTER_MAX))
                    fields.update(next_attempt_at=now + delay, schedule_step=claimed.schedule_step + 1)
            updated = WebhookEvent.objects.filter(
                pk=claimed.id, status=DeliveryStatus.PENDING, attempt_count=claimed.attempt_count
            ).update(attempt_count=claimed.attempt_count + 1, **fields)
            if not updated:
                # Someone else recorded this attempt number (an expired claim): keep theirs.
                continue
            attempts.append(WebhookAttempt(
                event_id=claimed.id, attempted_at=result.started_at,
                webhook_timestamp=result.webhook_timestamp, status_code=result.status_code,
                duration_ms=result.duration_ms, response_body=result.body[:transport.RESPONSE_BODY_LIMIT],
                error=result.error[:500], succeeded=result.ok, remote_ip=result.remote_ip,
            ))
            # Test sends say nothing about the endpoint's health.
            if not is_test:
                successes += result.ok
                failures += not result.ok
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
    batch_size = endpoint_concurrency() * BATCH_PER_THREAD
    while time.monotonic() < deadline:
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None:
            return False
        batch = _claim(endpoint_id, batch_size)
        if not batch:
            return False
        if not endpoint.enabled:
            # Published just before the endpoint was disabled: end them like endpoint_disable does.
            WebhookEvent.objects.filter(pk__in=[c.id for c in batch]).update(
                status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="Endpoint disabled."
            )
            continue
        results = _send_batch(endpoint, batch)
        if _record(endpoint, batch, results):
            return False
        lease.renew()
    return True


def endpoint_deliver_due(*, endpoint_id: int) -> None:
    """Deliver an endpoint's due rows, if no other worker is on this endpoint."""
    deadline = time.monotonic() + TASK_BUDGET_SECONDS
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
            from webhooks.tasks import webhook_endpoint_deliver

            webhook_endpoint_deliver.delay(endpoint_id)
            return


def event_deliver_now(*, event: WebhookEvent) -> None:
    """Send one claimed row immediately, in the calling process (the test send)."""
    endpoint = event.endpoint
    claimed = Claimed(*(getattr(event, f) for f in _CLAIM_FIELDS))
    result = _send(endpoint, active_secrets(endpoint), claimed)
    _record(endpoint, [claimed], [result])


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
    if endpoint_ids:
        from webhooks.tasks import webhook_endpoint_deliver

        for endpoint_id in endpoint_ids:
            webhook_endpoint_deliver.delay(endpoint_id)
    return len(endpoint_ids)
