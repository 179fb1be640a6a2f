from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from accounts.audit import audit_outcome
from config.admin_filters import SubaccountAccountFilter
from domains import records, services
from domains.models import DkimKey, Domain


class DkimKeyInline(admin.TabularInline):
    """Selectors and states only: private key material (even encrypted) is never shown."""

    model = DkimKey
    extra = 0
    can_delete = False
    fields = ["selector", "status", "key_bits", "created_at", "activated_at", "retired_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "subaccount", "status", "spf_verified", "dkim_verified",
                    "dmarc_verified", "return_path_verified", "last_checked_at", "created_at"]
    list_filter = ["status", SubaccountAccountFilter, "dkim_verified", "spf_verified", "dmarc_verified",
                   "return_path_verified", "created_at"]
    list_select_related = ["subaccount__account"]
    search_fields = ["name", "public_id", "subaccount__name", "subaccount__public_id",
                     "subaccount__account__name", "subaccount__account__public_id"]
    raw_id_fields = ["subaccount"]
    ordering = ["-created_at"]
    inlines = [DkimKeyInline]
    actions = ["verify_now", "rotate_dkim"]
    fieldsets = [
        (None, {"fields": ["name", "public_id", "subaccount", "status", "last_error", "dns_records_table"]}),
        ("Verification", {"fields": ["ownership_verified", "spf_verified", "dkim_verified", "dmarc_verified",
                                     "return_path_verified", "last_checked_at", "verified_at", "last_ok_at",
                                     "failed_at", "next_check_at", "recheck_until"]}),
        ("Settings", {"fields": ["track_opens", "track_clicks", "return_path_subdomain", "tracking_subdomain"]}),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    # Only the tracking defaults are edited here; names and records change through services.
    readonly_fields = ["name", "public_id", "subaccount", "status", "last_error", "dns_records_table",
                       "ownership_verified", "spf_verified", "dkim_verified", "dmarc_verified",
                       "return_path_verified", "last_checked_at", "verified_at", "last_ok_at", "failed_at",
                       "next_check_at", "recheck_until", "return_path_subdomain", "tracking_subdomain",
                       "created_at", "updated_at"]

    def has_add_permission(self, request) -> bool:
        # A domain needs a generated, encrypted key: tenants add them through the API.
        return False

    @admin.display(description="DNS records")
    def dns_records_table(self, obj: Domain):
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td><code style='word-break:break-all'>{}</code></td>"
                "<td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["purpose"], r["type"], r["name"], r["value"], r["status"] + ("" if r["required"] else " (optional)"),
              "; ".join(r["found"]) or "-", r["error"] or r["note"] or "")
             for r in records.dns_records(obj)),
        )
        return format_html(
            "<table><thead><tr><th>Purpose</th><th>Type</th><th>Name</th><th>Value</th><th>State</th>"
            "<th>Found</th><th>Error / note</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.action(description="Verify now (check DNS)")
    def verify_now(self, request, queryset):
        results = {}
        for domain in queryset:
            checked = services.domain_verify(domain=domain)
            results[checked.status] = results.get(checked.status, 0) + 1
            audit_outcome(request, domain, checked.status)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(results.items()))
        self.message_user(request, f"Checked {sum(results.values())} domain(s): {summary}.", messages.SUCCESS)

    @admin.action(description="Rotate DKIM key (new selector to publish)")
    def rotate_dkim(self, request, queryset):
        for domain in queryset:
            services.domain_dkim_rotate(domain=domain)
        self.message_user(request, f"Started a DKIM rotation for {queryset.count()} domain(s); the current key "
                                   "signs until the new record verifies.", messages.SUCCESS)


@admin.register(DkimKey)
class DkimKeyAdmin(admin.ModelAdmin):
    """Read-only: keys are made and rotated through the domain (API or the actions above)."""

    list_display = ["selector", "domain", "status", "key_bits", "created_at", "activated_at", "retired_at"]
    list_filter = ["status", "created_at"]
    list_select_related = ["domain"]
    search_fields = ["selector", "domain__name", "domain__public_id"]
    fields = ["domain", "selector", "status", "key_bits", "public_key", "created_at", "activated_at", "retired_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
