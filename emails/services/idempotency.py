"""Idempotency keys (DESIGN section 2): replay, mismatch, in-flight conflict.

The unique (sub-account, key) constraint decides which request runs; the record is completed
in the same transaction as the work, so a crash never leaves a finished request unrecorded.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.api.errors import IdempotencyConflict, IdempotencyMismatch
from emails.models import IdempotencyRecord

DEFAULT_WINDOW_HOURS = 24
# A record still "processing" after this long belongs to a request that died: take it over.
STALE_AFTER = timedelta(seconds=60)


def request_fingerprint(body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _begin(*, subaccount, key: str, fingerprint: str, window_hours: int):
    now = timezone.now()
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    subaccount=subaccount, key=key, request_hash=fingerprint,
                    expires_at=now + timedelta(hours=window_hours),
                ), None
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(subaccount=subaccount, key=key).first()
        if record is None:
            continue
        stale = not record.completed and record.created_at < now - STALE_AFTER
        if record.expires_at <= now or stale:
            IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()
            continue
        if record.request_hash != fingerprint:
            raise IdempotencyMismatch()
        if not record.completed:
            raise IdempotencyConflict()
        return None, (record.response_status, record.response_body)
    raise IdempotencyConflict()


def idempotent(*, subaccount, key: str | None, body, window_hours: int | None,
               run: Callable[[], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """Run ``run`` once per key; returns (status, body, replayed)."""
    if not key:
        status, response = run()
        return status, response, False
    record, replay = _begin(subaccount=subaccount, key=key, fingerprint=request_fingerprint(body),
                            window_hours=window_hours or DEFAULT_WINDOW_HOURS)
    if replay is not None:
        return replay[0], replay[1], True
    try:
        with transaction.atomic():
            status, response = run()
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                completed=True, response_status=status, response_body=response)
    except BaseException:
        # A rejected or failed request stored nothing; free the key so a corrected request can run.
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise
    return status, response, False


def idempotency_purge_expired() -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
