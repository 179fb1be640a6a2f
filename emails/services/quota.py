"""The monthly quota: live emails per account and calendar month (UTC), reserved atomically."""

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account
from emails.models import MonthlyUsage


def month_start(today: date | None = None) -> date:
    today = today or timezone.now().date()
    return today.replace(day=1)


def quota_reserve(*, account: Account, count: int) -> int:
    """Reserve up to ``count`` emails of this month's quota; returns how many were granted.

    Runs inside the caller's transaction, so a rolled-back send releases its reservation. The
    usage row is locked for the update, so concurrent sends never overshoot the plan.
    """
    if count <= 0:
        return 0
    month = month_start()
    usage = MonthlyUsage.objects.select_for_update().filter(account=account, month=month).first()
    if usage is None:
        try:
            with transaction.atomic():
                usage = MonthlyUsage.objects.create(account=account, month=month)
        except IntegrityError:
            pass
        usage = MonthlyUsage.objects.select_for_update().get(account=account, month=month)
    quota = account.plan.monthly_email_quota
    granted = count if quota is None else max(0, min(count, quota - usage.emails))
    if granted:
        MonthlyUsage.objects.filter(pk=usage.pk).update(emails=F("emails") + granted)
    return granted


def quota_used(*, account: Account) -> int:
    usage = MonthlyUsage.objects.filter(account=account, month=month_start()).first()
    return usage.emails if usage else 0
