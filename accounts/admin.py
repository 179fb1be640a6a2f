from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery, Sum
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts import services
from accounts.audit import audit_outcome
from accounts.models import Account, ApiKey, AuditLog, Plan, SmtpCredential, SubAccount
from config.admin_bases import BigTableAdmin
from config.admin_filters import AccountFilter
from config.api.errors import ApplicationError


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "requests_per_minute", "monthly_email_quota"]


class SubAccountInline(admin.TabularInline):
    model = SubAccount
    extra = 0
    fields = ["public_id", "name", "status"]
    # Status changes go through the suspend/resume actions, which also evict cached keys.
    readonly_fields = ["public_id", "status"]
    show_change_link = True


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "plan", "status", "used_this_month", "contact_email", "created_at"]
    list_filter = ["status", "plan", "created_at"]
    list_select_related = ["plan"]
    search_fields = ["name", "=public_id", "contact_email"]
    readonly_fields = ["public_id", "status", "suspended_reason", "created_at", "updated_at"]
    inlines = [SubAccountInline]
    actions = ["suspend", "resume"]

    def get_queryset(self, request):
        from emails.models import MonthlyUsage
        from emails.services.quota import month_start

        # The quota counter of this month for every row of the page in the same query.
        used = (MonthlyUsage.objects.filter(account=OuterRef("pk"), month=month_start()).order_by()
                .values("account").annotate(total=Sum("emails")).values("total"))
        return super().get_queryset(request).annotate(used_this_month=Subquery(used))

    @admin.display(description="Emails this month")
    def used_this_month(self, account: Account) -> str:
        used, quota = account.used_this_month or 0, account.plan.monthly_email_quota
        return f"{used} / {quota if quota is not None else 'unlimited'}"

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
    list_filter = ["status", AccountFilter, "created_at"]
    list_select_related = ["account"]
    search_fields = ["name", "=public_id", "account__name", "=account__public_id"]
    raw_id_fields = ["account"]
    readonly_fields = ["public_id", "status", "suspended_reason", "created_at", "updated_at"]
    actions = ["suspend", "resume", "send_test_email"]

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

    @admin.action(description="Send a test email from the selected sub-account")
    def send_test_email(self, request, queryset):
        """A form first (recipient, sender, test or live), then one email through the normal send path."""
        from emails.services import email_send

        subaccounts = list(queryset.select_related("account")[:2])
        if len(subaccounts) != 1:
            for subaccount in subaccounts:
                audit_outcome(request, subaccount, "refused: select exactly one sub-account")
            self.message_user(request, "Select exactly one sub-account to send a test email from.", messages.WARNING)
            return None
        subaccount = subaccounts[0]
        form = TestEmailForm(request.POST if "apply" in request.POST else None,
                             initial=TestEmailForm.initial_for(subaccount, request.user))
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                email = email_send(subaccount=subaccount, environment=data["environment"], data={
                    "from": data["sender"], "to": data["to"], "subject": data["subject"], "tags": ["admin-test"],
                    "text": f"A test email sent by {request.user.get_username()} from the Mailroom admin.",
                })
            except ApplicationError as exc:
                form.add_error(None, " ".join([exc.message, *(f"{field}: {' '.join(errors)}" for field, errors
                                                              in (exc.details or {}).items())]))
            else:
                audit_outcome(request, subaccount, f"sent {email.public_id} to {data['to']} ({data['environment']})")
                self.message_user(request, format_html(
                    'Test email <a href="{}">{}</a> queued ({}).', reverse("admin:emails_email_change", args=[email.pk]),
                    email.public_id, data["environment"]), messages.SUCCESS)
                return None
        return TemplateResponse(request, "admin/accounts/subaccount/send_test_email.html", {
            **self.admin_site.each_context(request), "title": f"Send a test email from {subaccount.name}",
            "opts": self.opts, "subaccount": subaccount, "form": form,
        })


class TestEmailForm(forms.Form):
    environment = forms.ChoiceField(choices=[
        ("test", "Test: runs the whole pipeline, never leaves Mailroom (simulator addresses produce events)"),
        ("live", "Live: delivered for real; needs a verified sending domain and counts against the quota"),
    ], widget=forms.RadioSelect, initial="test")
    to = forms.EmailField(help_text="delivered@simulator.mailroom.test, bounce@..., complaint@... in test.")
    sender = forms.CharField(label="From", max_length=320)
    subject = forms.CharField(max_length=200, initial="Mailroom test email")

    @staticmethod
    def initial_for(subaccount: SubAccount, user) -> dict:
        domain = subaccount.domains.filter(verified_at__isnull=False).order_by("name").values_list(
            "name", flat=True).first()
        return {"to": "delivered@simulator.mailroom.test", "environment": "test",
                "sender": f"Mailroom test <test@{domain or 'example.com'}>"}


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "public_id", "kind", "account", "subaccount", "name", "created_at",
                    "last_used_at", "revoked_at"]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter), AccountFilter, "created_at"]
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


@admin.register(SmtpCredential)
class SmtpCredentialAdmin(admin.ModelAdmin):
    list_display = ["username", "public_id", "subaccount", "environment", "name", "created_at", "last_used_at",
                    "revoked_at"]
    list_filter = ["environment", ("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["subaccount"]
    search_fields = ["=username", "=public_id", "=subaccount__public_id"]
    raw_id_fields = ["subaccount"]
    # The password digest is never shown; credentials are made through the API.
    exclude = ["digest"]
    readonly_fields = ["public_id", "subaccount", "environment", "username", "created_at", "last_used_at",
                       "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected SMTP credentials")
    def revoke(self, request, queryset):
        from emails.relay.credentials import smtp_credential_revoke

        for credential in queryset:
            smtp_credential_revoke(credential=credential)
        self.message_user(request, f"{queryset.count()} credential(s) revoked.", messages.SUCCESS)


@admin.register(AuditLog)
class AuditLogAdmin(BigTableAdmin):
    """What operators did: written by the admin site for every action and edit, never changed."""

    list_display = ["created_at", "actor_username", "action", "object_link", "outcome", "ip"]
    list_filter = ["action", "created_at"]
    search_fields = ["=actor_username", "=object_id", "object_repr", "action"]
    search_help_text = "Exact user name or object id; or part of the object's name or of the action."
    fields = ["created_at", "actor", "actor_username", "action", "object_type", "object_id", "object_repr",
              "details", "ip"]
    readonly_fields = fields

    @admin.display(description="Object")
    def object_link(self, entry: AuditLog):
        if not entry.object_type:
            return "-"
        app_label, _, model = entry.object_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model}_change", args=[entry.object_id])
        except NoReverseMatch:
            return entry.object_repr
        return format_html('<a href="{}">{}</a>', url, entry.object_repr or entry.object_id)

    @admin.display(description="Outcome")
    def outcome(self, entry: AuditLog) -> str:
        return (entry.details or {}).get("outcome", "")
