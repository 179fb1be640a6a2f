"""The monthly quota: live emails per account and calendar month (UTC).

The counter row is updated by one conditional UPDATE issued as the last statement of the send
transaction, so the row lock is held only between that UPDATE and COMMIT: concurrent sends of
one account do not queue behind each other's inserts, and never overshoot the plan.
"""

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from emails.models import MonthlyUsage

_known_rows: set[tuple[int, date]] = set()


def month_start(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return today.replace(day=1)


def _ensure_row(account: Account, month: date) -> None:
    if (account.pk, month) in _known_rows:
        return
    try:
        with transaction.atomic():
            MonthlyUsage.objects.get_or_create(account=account, month=month)
    except IntegrityError:  # created concurrently
        pass
    _known_rows.add((account.pk, month))


def quota_remaining(*, account: Account) -> int | None:
    """Emails left this month (None = unlimited); a hint, read without a lock."""
    quota = account.plan.monthly_email_quota
    if quota is None:
        return None
    return max(0, quota - quota_used(account=account))


def quota_consume(*, account: Account, count: int) -> bool:
    """Add ``count`` to this month's usage if it stays within the plan; False when it would not.

    Call it last inside the send's transaction: a rollback gives the emails back.
    """
    if count <= 0:
        return True
    month = month_start()
    _ensure_row(account, month)
    rows = MonthlyUsage.objects.filter(account=account, month=month)
    quota = account.plan.monthly_email_quota
    if quota is not None:
        rows = rows.filter(emails__lte=quota - count)
    return rows.update(emails=F("emails") + count) == 1


def quota_used(*, account: Account) -> int:
    usage = MonthlyUsage.objects.filter(account=account, month=month_start()).first()
    return usage.emails if usage else 0
