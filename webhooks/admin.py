from django.contrib import admin, messages
from django.utils import timezone

from accounts.audit import audit_outcome
from config.admin_bases import BigTableAdmin
from config.admin_filters import SubaccountAccountFilter
from config.admin_pagination import EstimatedCountPaginator
from webhooks import delivery, services
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookEvent


class FailingFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [("failing", "Failing now"), ("auto_disabled", "Disabled automatically"), ("healthy", "Healthy")]

    def queryset(self, request, queryset):
        if self.value() == "failing":
            return queryset.filter(failing_since__isnull=False)
        if self.value() == "auto_disabled":
            return queryset.filter(enabled=False, disabled_reason__in=["gone", "failing"])
        if self.value() == "healthy":
            return queryset.filter(failing_since__isnull=True, enabled=True)
        return queryset


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("public_id", "url", "subaccount", "enabled", "auto_disabled_flag", "disabled_reason",
                    "failing_since", "last_success_at", "account_notified_at", "created_at")
    list_filter = (FailingFilter, "enabled", "disabled_reason", SubaccountAccountFilter)
    search_fields = ("public_id", "url", "subaccount__public_id", "subaccount__name")
    list_select_related = ("subaccount",)
    raw_id_fields = ("subaccount",)
    # The secrets are never shown in the admin; rotate through the API.
    exclude = ("secret", "previous_secret")
    # The URL is changed through the API, which runs the SSRF check.
    readonly_fields = ("public_id", "url", "disabled_reason", "disabled_at", "previous_secret_expires_at",
                       "failing_since", "last_success_at", "last_failure_at", "account_notified_at",
                       "lease_until", "created_at", "updated_at")
    actions = ("disable_endpoints", "enable_endpoints")

    @admin.display(boolean=True, description="Auto-disabled")
    def auto_disabled_flag(self, obj):
        return obj.auto_disabled

    def has_add_permission(self, request):
        return False  # created through the API, which generates the secret and checks the URL

    @admin.action(description="Disable selected endpoints")
    def disable_endpoints(self, request, queryset):
        count = sum(
            delivery.endpoint_disable(endpoint_id=pk, reason="operator")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{count} endpoint(s) disabled.")

    @admin.action(description="Enable selected endpoints")
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset.filter(enabled=False):
            services.webhook_endpoint_update(endpoint=endpoint, enabled=True)
        self.message_user(request, "Endpoints enabled.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "status_code", "duration_ms", "error", "response_body", "remote_ip",
              "webhook_timestamp", "succeeded")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("public_id", "event_type", "endpoint", "status", "attempt_count", "last_status_code",
                    "next_attempt_at", "created_at")
    list_filter = ("status", "event_type", "created_at")
    search_fields = ("=public_id", "=endpoint__public_id", "endpoint__url")
    list_select_related = ("endpoint",)
    raw_id_fields = ("endpoint",)
    # A large table: no count(*) of every row per page, and no date_hierarchy (its year/month
    # links are a DISTINCT over the whole table).
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    inlines = (WebhookAttemptInline,)
    actions = ("retry_deliveries",)
    readonly_fields = ("public_id", "endpoint", "event_type", "body", "status", "attempt_count", "schedule_step",
                       "next_attempt_at", "last_attempt_at", "last_status_code", "last_error", "succeeded_at",
                       "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry selected deliveries now")
    def retry_deliveries(self, request, queryset):
        retried = skipped = 0
        for event in queryset.select_related("endpoint"):
            if not event.endpoint.enabled:
                skipped += 1
                audit_outcome(request, event, "skipped: endpoint disabled")
                continue
            services.webhook_delivery_retry(event=event)
            retried += 1
            audit_outcome(request, event, "queued again")
        self.message_user(request, f"{retried} delivery(ies) queued again at {timezone.now():%H:%M:%S}.")
        if skipped:
            self.message_user(request, f"{skipped} skipped: their endpoint is disabled.", level=messages.WARNING)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(BigTableAdmin):
    """Every delivery attempt, read-only (history)."""

    list_display = ("event", "attempted_at", "status_code", "succeeded", "duration_ms", "error")
    list_filter = ("succeeded", "attempted_at")
    list_select_related = ("event",)
    search_fields = ("=event__public_id",)
    raw_id_fields = ("event",)
    ordering = ("-id",)
