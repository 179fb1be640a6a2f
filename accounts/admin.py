from django.contrib import admin, messages

from accounts import services
from accounts.models import Account, ApiKey, Plan, SubAccount


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "requests_per_minute", "monthly_email_quota"]


class SubAccountInline(admin.TabularInline):
    model = SubAccount
    extra = 0
    fields = ["public_id", "name", "status"]
    readonly_fields = ["public_id"]
    show_change_link = True


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "plan", "status", "contact_email", "created_at"]
    list_filter = ["status", "plan", "created_at"]
    list_select_related = ["plan"]
    search_fields = ["name", "public_id", "contact_email"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [SubAccountInline]
    actions = ["suspend", "resume"]

    @admin.action(description="Suspend selected accounts")
    def suspend(self, request, queryset):
        for account in queryset:
            services.account_suspend(account=account, reason=f"Suspended by {request.user}")
        self.message_user(request, f"{queryset.count()} account(s) suspended.", messages.SUCCESS)

    @admin.action(description="Resume selected accounts")
    def resume(self, request, queryset):
        for account in queryset:
            services.account_resume(account=account)
        self.message_user(request, f"{queryset.count()} account(s) resumed.", messages.SUCCESS)


@admin.register(SubAccount)
class SubAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "account", "status", "created_at"]
    list_filter = ["status", "created_at"]
    list_select_related = ["account"]
    search_fields = ["name", "public_id", "account__name", "account__public_id"]
    raw_id_fields = ["account"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    actions = ["suspend", "resume"]

    @admin.action(description="Suspend selected sub-accounts")
    def suspend(self, request, queryset):
        for subaccount in queryset:
            services.subaccount_suspend(subaccount=subaccount, reason=f"Suspended by {request.user}")
        self.message_user(request, f"{queryset.count()} sub-account(s) suspended.", messages.SUCCESS)

    @admin.action(description="Resume selected sub-accounts")
    def resume(self, request, queryset):
        for subaccount in queryset:
            services.subaccount_resume(subaccount=subaccount)
        self.message_user(request, f"{queryset.count()} sub-account(s) resumed.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "public_id", "kind", "account", "subaccount", "name", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["account", "subaccount"]
    search_fields = ["public_id", "prefix", "name", "account__name", "subaccount__name"]
    raw_id_fields = ["account", "subaccount"]
    # The digest is never shown; keys are created through the API or create_account.
    exclude = ["digest"]
    readonly_fields = ["public_id", "kind", "prefix", "account", "subaccount", "created_at",
                       "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)
