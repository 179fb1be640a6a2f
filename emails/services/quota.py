"""The monthly quota: live emails per account and calendar month (UTC).

Usage is spread over ``SLOTS`` counter rows per account and month. A send reads the sum
without a lock, then adds to one random slot as the last statement of its transaction, so
concurrent sends of one account almost never queue on a row lock (a single counter row would
serialise every send of the account behind the previous one's commit). The price: requests
racing at the very edge of the quota may overshoot it by at most the number of sends in
flight at that moment; documented in docs/sending.md.
"""

import random
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Account
from emails.models import MonthlyUsage

SLOTS = 8


def month_start(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return today.replace(day=1)


def _create_rows(account: Account, month: date) -> None:
    try:
        with transaction.atomic():
            MonthlyUsage.objects.bulk_create(
                [MonthlyUsage(account=account, month=month, slot=slot) for slot in range(SLOTS)],
                ignore_conflicts=True)
    except IntegrityError:  # created concurrently
        pass


def quota_used(*, account: Account) -> int:
    return MonthlyUsage.objects.filter(account=account, month=month_start()).aggregate(
        total=Sum("emails"))["total"] or 0


def quota_remaining(*, account: Account) -> int | None:
    """Emails left this month (None = unlimited)."""
    quota = account.plan.monthly_email_quota
    if quota is None:
        return None
    return max(0, quota - quota_used(account=account))


def quota_consume(*, account: Account, count: int) -> None:
    """Add ``count`` emails to this month's usage. Call it last inside the send's transaction
    (after checking ``quota_remaining``): a rollback gives the emails back."""
    if count <= 0:
        return
    month = month_start()
    slot = MonthlyUsage.objects.filter(account=account, month=month, slot=random.randrange(SLOTS))
    if not slot.update(emails=F("emails") + count):  # the month's first send: make its rows
        _create_rows(account, month)
        slot.update(emails=F("emails") + count)
