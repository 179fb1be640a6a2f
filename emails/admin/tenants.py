"""Per sub-account and per account rows: suppressions, idempotency records, monthly usage."""

from django.contrib import admin, messages

from accounts.audit import audit_outcome
from config.admin_filters import AccountFilter, SubaccountAccountFilter
from config.api.errors import ApplicationError
from emails import services
from emails.admin.base import BigTableAdmin, ReadOnlyAdmin, id_search, short
from emails.models import IdempotencyRecord, MonthlyUsage, Suppression


@admin.register(Suppression)
class SuppressionAdmin(BigTableAdmin):
    list_display = ["address", "reason", "subaccount", "source_email", "note_short", "created_at"]
    list_filter = ["reason", SubaccountAccountFilter, "created_at"]
    list_select_related = ["subaccount"]
    search_fields = ["=address"]
    search_help_text = 'Exact: an address, "sup_..." or "sub_..." id.'
    raw_id_fields = ["subaccount"]
    actions = ["remove"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("sup_"):
            return queryset.filter(public_id=term), False
        found = id_search(queryset, term, email_path=None, subaccount_path="subaccount")
        return (found if found is not None else queryset.filter(address=term.lower())), False

    @admin.display(description="Source email")
    def source_email(self, suppression: Suppression):
        return suppression.source_email_id or "-"

    @admin.display(description="Note")
    def note_short(self, suppression: Suppression) -> str:
        return short(suppression.note, 60)

    @admin.action(description="Remove selected suppressions (the addresses may receive mail again)")
    def remove(self, request, queryset):
        removed = 0
        for suppression in queryset.select_related("subaccount"):
            try:
                services.suppression_delete(subaccount=suppression.subaccount, ref=suppression.public_id)
            except ApplicationError as exc:  # removed meanwhile (by the tenant)
                audit_outcome(request, suppression, f"refused: {exc.message}")
                continue
            removed += 1
            audit_outcome(request, suppression, "removed")
        self.message_user(request, f"{removed} suppression(s) removed.", messages.SUCCESS)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(BigTableAdmin):
    list_display = ["key", "subaccount", "completed", "response_status", "created_at", "expires_at"]
    list_filter = ["completed", "created_at"]
    list_select_related = ["subaccount"]
    search_fields = ["=key"]
    search_help_text = 'Exact: an idempotency key or "sub_..." id.'
    raw_id_fields = ["subaccount"]
    ordering = ["-id"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = id_search(queryset, term, email_path=None, subaccount_path="subaccount")
        return (found if found is not None else queryset.filter(key=term)), False


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(ReadOnlyAdmin):
    """The quota counter rows (a few per account and month; their sum is the month's usage)."""

    list_display = ["account", "month", "emails", "plan_quota"]
    list_filter = ["month", AccountFilter]
    list_select_related = ["account__plan"]
    search_fields = ["=account__public_id", "account__name"]
    raw_id_fields = ["account"]
    ordering = ["-month", "account_id", "id"]

    @admin.display(description="Plan quota")
    def plan_quota(self, usage: MonthlyUsage):
        quota = usage.account.plan.monthly_email_quota
        return "unlimited" if quota is None else quota
