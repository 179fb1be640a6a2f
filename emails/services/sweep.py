"""The beat sweeper: releases due scheduled mail, requeues lost work (DESIGN section 4, step 5)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from emails.models import Email, EmailStatus

logger = logging.getLogger(__name__)

MAX_ROWS_PER_SWEEP = 5000


def republish_after() -> timedelta:
    """A queued row whose task was published this long ago and is still unclaimed lost its task
    (the broker restarted empty, or the worker holding it died): publish it again. Too short
    only publishes redundant tasks under a backlog, which the claim turns into no-ops."""
    return timedelta(seconds=settings.MAILROOM_SEND_REPUBLISH_AFTER_SECONDS)


def _lock_ids(queryset, limit: int) -> list[int]:
    skip_locked = connection.features.has_select_for_update_skip_locked
    return list(queryset.select_for_update(skip_locked=skip_locked).values_list("pk", flat=True)[:limit])


def email_sweep() -> dict[str, int]:
    from emails.services.accept import enqueue_dispatch
    from emails.services.dispatch import not_suspended

    now = timezone.now()
    with transaction.atomic():
        # 1. scheduled mail whose time has come
        released = _lock_ids(Email.objects.filter(status=EmailStatus.SCHEDULED, next_attempt_at__lte=now)
                             .order_by("next_attempt_at"), MAX_ROWS_PER_SWEEP)
        Email.objects.filter(pk__in=released).update(status=EmailStatus.QUEUED, enqueued_at=now, updated_at=now)
        # 2. claimed rows whose worker died (lease expired): back to the outbox, due now
        expired = _lock_ids(Email.objects.filter(status=EmailStatus.SENDING, locked_until__lt=now),
                            MAX_ROWS_PER_SWEEP)
        Email.objects.filter(pk__in=expired).update(status=EmailStatus.QUEUED, next_attempt_at=now,
                                                    locked_until=None, enqueued_at=now, updated_at=now)
        # 3. due queued rows nobody is working on (lost publish, retry whose backoff passed)
        #    (a suspended tenant's rows wait: republishing them would only fill the sweep)
        stale = _lock_ids(not_suspended(Email.objects.filter(status=EmailStatus.QUEUED, next_attempt_at__lte=now))
                          .exclude(enqueued_at__gte=now - republish_after()).order_by("next_attempt_at"),
                          MAX_ROWS_PER_SWEEP)
        Email.objects.filter(pk__in=stale).update(enqueued_at=now)
    work = released + expired + stale
    if work:
        transaction.on_commit(lambda: enqueue_dispatch(work))  # runs at once outside a transaction
    counts = {"released": len(released), "requeued": len(expired), "republished": len(stale)}
    if expired or stale:
        logger.info("sweep: %s", counts)
    return counts

