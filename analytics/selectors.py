"""Analytics reads. Every query reads rollup rows (one per day and slice), never emails or events."""

import calendar
from datetime import UTC, date, datetime, timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.models import Account, SubAccount
from analytics.models import COUNTERS, DailyCounter, Dimension
from emails.models import Environment, MonthlyUsage

GROUP_BY = ("day", "week", "month")
ENVIRONMENTS = ("live", "test", "all")
# The order counters appear in responses: ``bounced`` (derived) next to its two halves.
OUTPUT_COUNTERS = (
    "accepted", "sent", "delivered", "delivery_delayed", "bounced", "hard_bounced", "soft_bounced", "complained",
    "opened", "unique_opened", "machine_opened", "clicked", "unique_clicked", "unsubscribed", "failed",
    "cancelled", "suppressed",
)
_SUMS = {f"n_{name}": Sum(name) for name in COUNTERS}


def utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


def environments_of(environment: str) -> list[str]:
    return [Environment.LIVE, Environment.TEST] if environment == "all" else [environment]


# --- buckets -------------------------------------------------------------------------------


def bucket_start(day: date, group_by: str) -> date:
    if group_by == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if group_by == "month":
        return day.replace(day=1)
    return day


def bucket_label(start: date, group_by: str) -> str:
    if group_by == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if group_by == "month":
        return f"{start:%Y-%m}"
    return start.isoformat()


def bucket_starts(from_date: date, to_date: date, group_by: str) -> list[date]:
    starts, current = [], bucket_start(from_date, group_by)
    while current <= to_date:
        starts.append(current)
        if group_by == "week":
            current += timedelta(days=7)
        elif group_by == "month":
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            current += timedelta(days=1)
    return starts


# --- counts and rates ----------------------------------------------------------------------


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(OUTPUT_COUNTERS, 0)


def _counts_of(row: dict) -> dict[str, int]:
    counts = {name: int(row.get(f"n_{name}") or 0) for name in COUNTERS}
    counts["bounced"] = counts["hard_bounced"] + counts["soft_bounced"]
    return {name: counts[name] for name in OUTPUT_COUNTERS}


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for name, value in counts.items():
        into[name] += value


def _ratio(numerator: int, denominator: int) -> float:
    return round(numerator / denominator, 4) if denominator else 0.0


def rates_of(counts: dict[str, int]) -> dict[str, float]:
    """Rates as fractions (0.25 is 25 %), 0.0 when the denominator is zero. See docs/analytics.md."""
    return {
        "delivery": _ratio(counts["delivered"], counts["sent"]),
        "bounce": _ratio(counts["bounced"], counts["sent"]),
        "complaint": _ratio(counts["complained"], counts["delivered"]),
        "open": _ratio(counts["unique_opened"], counts["delivered"]),
        "click": _ratio(counts["unique_clicked"], counts["delivered"]),
    }


# --- queries -------------------------------------------------------------------------------


def _rows(*, from_date: date, to_date: date, environment: str, tag: str | None = None,
          domain: str | None = None) -> QuerySet[DailyCounter]:
    rows = DailyCounter.objects.filter(environment__in=environments_of(environment), day__gte=from_date,
                                       day__lte=to_date)
    if tag:
        return rows.filter(dimension=Dimension.TAG, value=tag)
    if domain:
        return rows.filter(dimension=Dimension.DOMAIN, value=domain.lower())
    return rows.filter(dimension=Dimension.ALL, value="")


def _series(rows: QuerySet[DailyCounter], *, from_date: date, to_date: date, group_by: str) -> dict:
    """``total``, ``rates`` and ``by_date`` (every bucket present) from one GROUP BY day query."""
    buckets = {start: zero_counts() for start in bucket_starts(from_date, to_date, group_by)}
    total = zero_counts()
    for row in rows.order_by().values("day").annotate(**_SUMS):
        counts = _counts_of(row)
        _add(buckets[bucket_start(row["day"], group_by)], counts)
        _add(total, counts)
    return {
        "total": total,
        "rates": rates_of(total),
        "by_date": [{"date": start.isoformat(), "period": bucket_label(start, group_by), **counts}
                    for start, counts in buckets.items()],
    }


def analytics_emails(*, subaccount: SubAccount, from_date: date, to_date: date, group_by: str = "day",
                     environment: str = "live", tag: str | None = None, domain: str | None = None) -> dict:
    rows = _rows(from_date=from_date, to_date=to_date, environment=environment, tag=tag, domain=domain)
    return _series(rows.filter(subaccount=subaccount), from_date=from_date, to_date=to_date, group_by=group_by)


def analytics_account_emails(*, account: Account, from_date: date, to_date: date, group_by: str = "day",
                             environment: str = "live", tag: str | None = None,
                             domain: str | None = None) -> dict:
    """The account's totals and series, plus one entry per sub-account (zeros included)."""
    rows = _rows(from_date=from_date, to_date=to_date, environment=environment, tag=tag, domain=domain)
    rows = rows.filter(account=account)
    result = _series(rows, from_date=from_date, to_date=to_date, group_by=group_by)
    per_subaccount = {row["subaccount_id"]: _counts_of(row)
                      for row in rows.order_by().values("subaccount_id").annotate(**_SUMS)}
    breakdown = []
    for subaccount in account.subaccounts.order_by("name", "id").only("id", "public_id", "name"):
        counts = per_subaccount.get(subaccount.pk, zero_counts())
        breakdown.append({"id": subaccount.public_id, "name": subaccount.name, "total": counts,
                          "rates": rates_of(counts)})
    result["subaccounts"] = breakdown
    return result


def analytics_top(*, subaccount: SubAccount, dimension: str, from_date: date, to_date: date,
                  environment: str = "live", limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
    """Tags or sending domains ranked by emails sent (then accepted, then name); (page, how many in all)."""
    grouped = (DailyCounter.objects
               .filter(subaccount=subaccount, dimension=dimension, environment__in=environments_of(environment),
                       day__gte=from_date, day__lte=to_date)
               .order_by().values("value").annotate(**_SUMS))
    total = grouped.count()
    page = grouped.order_by("-n_sent", "-n_accepted", "value")[offset:offset + limit]
    items = []
    for row in page:
        counts = _counts_of(row)
        items.append({"value": row["value"], "total": counts, "rates": rates_of(counts)})
    return items, total


def usage_get(*, account: Account, today: date | None = None) -> dict:
    """This month's live emails against the plan: the quota counter, and per sub-account from rollups.

    ``emails.used`` is the quota counter itself (emails.MonthlyUsage). The per-sub-account
    numbers are the live ``accepted`` counters of the month, written in the same transaction
    as the quota reservation, so they add up to it (less any sub-account deleted since).
    """
    today = today or utc_today()
    month = today.replace(day=1)
    month_end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
    used = MonthlyUsage.objects.filter(account=account, month=month).aggregate(n=Sum("emails"))["n"] or 0
    per_subaccount = dict(
        DailyCounter.objects.filter(account=account, dimension=Dimension.ALL, environment=Environment.LIVE,
                                    day__gte=month, day__lte=month_end)
        .order_by().values("subaccount_id").annotate(n=Sum("accepted")).values_list("subaccount_id", "n")
    )
    plan = account.plan
    quota = plan.monthly_email_quota
    return {
        "period": {"month": f"{month:%Y-%m}", "start": month, "end": month_end,
                   "resets_at": datetime.combine(month_end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)},
        "plan": {"code": plan.code, "name": plan.name},
        "emails": {"used": used, "quota": quota, "remaining": None if quota is None else max(0, quota - used)},
        "rate_limit": {"requests_per_minute": plan.requests_per_minute},
        "subaccounts": [{"id": s.public_id, "name": s.name, "emails": int(per_subaccount.get(s.pk) or 0)}
                        for s in account.subaccounts.order_by("name", "id").only("id", "public_id", "name")],
    }


# --- operator dashboard --------------------------------------------------------------------


def volume_by_day(*, from_date: date, to_date: date, environment: str = "live",
                  account_id: int | None = None) -> list[dict]:
    """Platform-wide (or one account's) counts per day, every day present."""
    rows = _rows(from_date=from_date, to_date=to_date, environment=environment)
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    days = {start: zero_counts() for start in bucket_starts(from_date, to_date, "day")}
    for row in rows.order_by().values("day").annotate(**_SUMS):
        days[row["day"]] = _counts_of(row)
    return [{"date": day, **counts} for day, counts in days.items()]


def volume_by_account(*, from_date: date, to_date: date, environment: str = "live", limit: int = 20) -> list[dict]:
    """The busiest accounts of the range (by emails sent), each with its per-day series."""
    rows = _rows(from_date=from_date, to_date=to_date, environment=environment)
    top = list(rows.order_by().values("account_id").annotate(**_SUMS).order_by("-n_sent", "account_id")[:limit])
    if not top:
        return []
    ids = [row["account_id"] for row in top]
    accounts = Account.objects.in_bulk(ids)
    series = {account_id: {start: zero_counts() for start in bucket_starts(from_date, to_date, "day")}
              for account_id in ids}
    for row in rows.filter(account_id__in=ids).order_by().values("account_id", "day").annotate(**_SUMS):
        series[row["account_id"]][row["day"]] = _counts_of(row)
    return [{"account": accounts[row["account_id"]], "total": _counts_of(row),
             "days": [{"date": day, **counts} for day, counts in series[row["account_id"]].items()]}
            for row in top if row["account_id"] in accounts]
