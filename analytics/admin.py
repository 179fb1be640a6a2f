from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from accounts.models import Account
from analytics import selectors
from analytics.charts import SERIES, volume_chart
from analytics.models import DailyCounter, Dashboard
from config.admin_bases import ReadOnlyAdmin

DASHBOARD_DAYS = (7, 30, 90, 366)


@admin.register(DailyCounter)
class DailyCounterAdmin(ReadOnlyAdmin):
    """Read-only: counters change only through event recording and ``analytics_rebuild``."""

    list_display = ["day", "subaccount", "environment", "dimension", "value", "accepted", "sent", "delivered",
                    "bounced", "complained", "opened", "clicked", "failed"]
    list_filter = ["environment", "dimension", "day"]
    list_select_related = ["subaccount"]
    search_fields = ["subaccount__public_id", "subaccount__name", "account__public_id", "value"]
    date_hierarchy = "day"
    show_full_result_count = False


@admin.register(Dashboard)
class DashboardAdmin(ReadOnlyAdmin):
    """/admin/analytics/dashboard/: sent, delivered and bounced per day, platform-wide and per account."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = _choice(request.GET.get("days"), DASHBOARD_DAYS, 30, int)
        environment = _choice(request.GET.get("environment"), selectors.ENVIRONMENTS, "live", str)
        to_date = selectors.utc_today()
        from_date = to_date - timedelta(days=days - 1)
        span = {"from_date": from_date, "to_date": to_date, "environment": environment}
        platform = _with_dates(selectors.volume_by_day(**span))
        account = Account.objects.filter(public_id=request.GET.get("account", "")).first()
        account_days = _with_dates(selectors.volume_by_day(**span, account_id=account.pk)) if account else None
        busiest = []
        for entry in selectors.volume_by_account(**span):
            entry["chart"] = volume_chart(_with_dates(entry["days"]), width=240, height=40, compact=True)
            entry["rates"] = selectors.rates_of(entry["total"])
            busiest.append(entry)
        context = {
            **self.admin_site.each_context(request),
            "title": "Volume dashboard",
            "opts": self.model._meta,
            "days": days, "day_choices": DASHBOARD_DAYS,
            "environment": environment, "environments": selectors.ENVIRONMENTS,
            "from_date": from_date, "to_date": to_date,
            "series": SERIES,
            "platform_chart": volume_chart(platform),
            "platform_total": _total(platform),
            "account": account,
            "account_chart": volume_chart(account_days) if account else None,
            "account_total": _total(account_days) if account else None,
            "busiest": busiest,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)


def _choice(raw, allowed, default, cast):
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        return default
    return value if value in allowed else default


def _with_dates(days: list[dict]) -> list[dict]:
    return [{**day, "date": day["date"].isoformat()} for day in days]


def _total(days: list[dict]) -> dict:
    total = selectors.zero_counts()
    for day in days:
        for name in total:
            total[name] += day[name]
    return {**total, "rates": selectors.rates_of(total)}
