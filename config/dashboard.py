"""Figures for the operations dashboard on the admin index (reads only).

Every figure is one query that an index serves (or a small table), so the page stays fast
with millions of emails: the status counts and the oldest queued email read the
(status, next_attempt_at) index, the webhook backlog the partial index on pending rows,
volume the daily rollups, quota the monthly usage rows.
"""

from datetime import timedelta

from django.db.models import Count, F, FloatField, Min, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import Account
from analytics.charts import SERIES, volume_chart
from analytics.selectors import utc_today, volume_by_day
from domains.models import Domain, DomainStatus
from emails.models import Email, EmailStatus, MonthlyUsage
from emails.services.quota import month_start
from webhooks.models import DeliveryStatus, WebhookEndpoint, WebhookEvent

VOLUME_DAYS = 14
NEAR_QUOTA = 0.8
LIST_LIMIT = 10
QUEUE_STATUSES = (EmailStatus.QUEUED, EmailStatus.SCHEDULED, EmailStatus.SENDING)


def duration_text(delta: timedelta) -> str:
    """A short age for a dashboard tile: "45 s", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def queue_depth(*, now=None) -> dict:
    """Emails waiting, by state. ``retrying`` are queued rows that already failed at least once;
    ``stuck`` are rows in ``sending`` whose worker lease ran out (the sweeper will requeue them)."""
    now = now or timezone.now()
    depth = {"queued": 0, "scheduled": 0, "sending": 0, "retrying": 0, "due": 0, "stuck": 0}
    rows = (Email.objects.filter(status__in=QUEUE_STATUSES).order_by().values("status")
            .annotate(n=Count("id"), retrying=Count("id", filter=Q(attempts__gt=0)),
                      due=Count("id", filter=Q(next_attempt_at__lte=now)),
                      stuck=Count("id", filter=Q(locked_until__lt=now))))
    for row in rows:
        depth[row["status"]] = row["n"]
        if row["status"] == EmailStatus.QUEUED:
            depth["retrying"], depth["due"] = row["retrying"], row["due"]
        elif row["status"] == EmailStatus.SENDING:
            depth["stuck"] = row["stuck"]
    return depth


def oldest_queued(*, now=None) -> dict | None:
    now = now or timezone.now()
    row = (Email.objects.filter(status=EmailStatus.QUEUED).order_by("created_at", "id")
           .values("pk", "public_id", "created_at", "attempts", "next_attempt_at").first())
    if row is None:
        return None
    return {**row, "age": now - row["created_at"], "age_text": duration_text(now - row["created_at"])}


def webhook_backlog(*, now=None) -> dict:
    now = now or timezone.now()
    pending = WebhookEvent.objects.filter(status=DeliveryStatus.PENDING).aggregate(
        pending=Count("id"), due=Count("id", filter=Q(next_attempt_at__lte=now)),
        retrying=Count("id", filter=Q(attempt_count__gt=0)), oldest=Min("created_at"))
    failing = (WebhookEndpoint.objects.filter(enabled=True, failing_since__isnull=False)
               .select_related("subaccount__account").order_by("failing_since"))
    oldest_age = now - pending["oldest"] if pending["oldest"] else None
    return {**pending, "oldest_age": oldest_age, "oldest_age_text": duration_text(oldest_age) if oldest_age else "",
            "failing_endpoints": list(failing[:LIST_LIMIT]), "failing_count": failing.count()}


def failing_domains() -> dict:
    failing = (Domain.objects.filter(status__in=[DomainStatus.FAILED, DomainStatus.TEMPORARY_FAILURE])
               .select_related("subaccount__account").order_by(F("failed_at").desc(nulls_last=True), "-id"))
    return {"domains": list(failing[:LIST_LIMIT]), "count": failing.count()}


def accounts_near_quota(*, threshold: float = NEAR_QUOTA, limit: int = LIST_LIMIT) -> list[dict]:
    """Accounts whose live emails this month reached ``threshold`` of their plan's quota, fullest
    first. The same sum as ``emails.services.quota_used``, for every account in one query."""
    rows = (MonthlyUsage.objects.filter(month=month_start(), account__plan__monthly_email_quota__isnull=False)
            .order_by().values("account_id", quota=F("account__plan__monthly_email_quota"))
            .annotate(used=Sum("emails"))
            .annotate(ratio=Cast("used", FloatField()) / Cast("quota", FloatField()))
            .filter(ratio__gte=threshold).order_by("-ratio", "account_id")[:limit])
    rows = list(rows)
    accounts = Account.objects.select_related("plan").in_bulk([row["account_id"] for row in rows])
    return [{"account": accounts[row["account_id"]], "used": row["used"], "quota": row["quota"],
             "percent": round(100 * row["ratio"])} for row in rows if row["account_id"] in accounts]


def volume(*, days: int = VOLUME_DAYS) -> dict:
    to_date = utc_today()
    series = volume_by_day(from_date=to_date - timedelta(days=days - 1), to_date=to_date, environment="live")
    totals = {name: sum(day[name] for day in series) for name in ("accepted", "sent", "delivered", "bounced",
                                                                  "failed")}
    rows = [{**day, "date": day["date"].isoformat()} for day in series]
    return {"days": days, "series": list(reversed(rows)), "chart": volume_chart(rows), "totals": totals,
            "legend": SERIES}


def operations_overview() -> dict:
    now = timezone.now()
    return {
        "now": now,
        "volume": volume(),
        "queue": queue_depth(now=now),
        "oldest_queued": oldest_queued(now=now),
        "webhooks": webhook_backlog(now=now),
        "domains": failing_domains(),
        "near_quota": accounts_near_quota(),
        "near_quota_percent": round(NEAR_QUOTA * 100),
    }
