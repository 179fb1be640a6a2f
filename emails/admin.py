"""Operators' view of mail: emails with their timeline, events, attempts, suppressions, usage.

History is read-only here: an email, its events and its delivery attempts are what happened,
so nothing is edited or deleted; operators act through actions that call the services
(cancel, resend, remove a suppression), which the admin site audits.

Large tables (emails, events, attempts, recipients) never count every row on a page
(``EstimatedCountPaginator``), list only cheap columns, and search exact, indexed values:
"msg_..." ids, Message-IDs, recipient addresses, account / sub-account ids, sending domains.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from accounts.audit import audit_outcome
from config.admin_filters import AccountFilter, SubaccountAccountFilter
from config.admin_pagination import EstimatedCountPaginator
from config.api.errors import ApplicationError
from emails import services
from emails.mime import build_mime
from emails.models import (
    DeliveryAttempt,
    Email,
    EmailAttachment,
    EmailEvent,
    EmailRecipient,
    IdempotencyRecord,
    MonthlyUsage,
    Suppression,
    TrackedLink,
    TrackingHit,
)

# Columns a list page never shows; loading them for 100 rows would move megabytes.
EMAIL_HEAVY_FIELDS = ("html", "text", "source_html", "headers", "metadata", "last_error")
TIMELINE_LIMIT = 500
# What the preview iframe may load: inline styles and data: images only. The sandbox="" on
# the iframe already stops scripts, forms and navigation; this also stops remote images, so
# opening an email in the admin never calls a tracker or the tenant's servers.
PREVIEW_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; font-src data:"
# Headers made by the MIME build itself; the page lists the message's own headers.
STRUCTURAL_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "date"}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewing only: rows are written by the pipeline, never by a form."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class BigTableAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False


def _email_link(email_id: int, label: str):
    return format_html('<a href="{}">{}</a>', reverse("admin:emails_email_change", args=[email_id]), label)


def _short(value, length: int = 80) -> str:
    return Truncator(value or "").chars(length)


def _id_search(queryset, term: str, *, email_path: str | None = "email", subaccount_path: str | None = None):
    """Exact searches on indexed columns shared by the email-related lists; None: not an id."""
    if term.startswith("msg_") and email_path is not None:
        return queryset.filter(**{f"{email_path}__public_id" if email_path else "public_id": term})
    if term.startswith("sub_") and subaccount_path is not None:
        return queryset.filter(**{f"{subaccount_path}__public_id": term})
    return None


# --- emails ---------------------------------------------------------------------------------


class EmailChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer(*EMAIL_HEAVY_FIELDS)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "attempted_at", "outcome", "duration_ms", "response"]
    readonly_fields = fields
    ordering = ["attempted_at", "id"]
    classes = ["collapse"]
    verbose_name_plural = "delivery attempts"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Email)
class EmailAdmin(BigTableAdmin):
    list_display = ["public_id", "status", "to_first", "subject_short", "from_address", "subaccount",
                    "environment", "attempts", "created_at"]
    list_filter = ["status", "environment", AccountFilter, "created_at"]
    list_select_related = ["subaccount"]
    search_fields = ["public_id"]  # shows the box; get_search_results does the real work
    search_help_text = ('Exact match: "msg_..." id or Message-ID, recipient address, "from:sender@domain", '
                        'sending domain, provider message id, "acc_..." or "sub_..." id.')
    raw_id_fields = ["account", "subaccount"]
    ordering = ["-created_at", "-id"]
    actions = ["cancel", "resend"]
    inlines = [DeliveryAttemptInline]
    fieldsets = [
        (None, {"fields": ["public_id", "status", "environment", "account", "subaccount", "from_header", "to",
                           "cc", "bcc", "reply_to", "subject", "created_at", "scheduled_at", "sent_at",
                           "delivered_at"]}),
        ("Timeline", {"fields": ["timeline"]}),
        ("Recipients", {"fields": ["recipients_table"]}),
        ("Content", {"fields": ["html_preview", "text_body", "attachments_list"]}),
        ("Headers", {"fields": ["message_id", "provider_message_id", "headers_table", "raw_mime"]}),
        ("Delivery", {"fields": ["attempts", "next_attempt_at", "locked_until", "last_error"]}),
        ("Options", {"fields": ["tags", "metadata", "template_id", "template_version", "track_opens",
                                "track_clicks", "unsubscribe", "opens_count", "clicks_count"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.fieldsets)

    def get_changelist(self, request, **kwargs):
        return EmailChangeList

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "subaccount")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        lowered = term.lower()
        found = _id_search(queryset, term, email_path="", subaccount_path="subaccount")
        if found is not None:
            return found, False
        if term.startswith("acc_"):
            return queryset.filter(account__public_id=term), False
        if term.startswith("<") and term.endswith(">"):
            # Our Message-IDs are <msg_...@domain>: answered by the public id's unique index.
            local = term[1:-1].partition("@")[0]
            if local.startswith("msg_"):
                return queryset.filter(public_id=local, message_id=term), False
            return queryset.filter(message_id=term), False
        if lowered.startswith("from:"):
            address = lowered[5:].strip()
            return queryset.filter(from_domain=address.rpartition("@")[2], from_address=address), False
        if "@" in term:
            recipients = EmailRecipient.objects.filter(address=lowered).values("email_id")
            return queryset.filter(pk__in=recipients), False
        if "." in term:
            return queryset.filter(Q(from_domain=lowered) | Q(provider_message_id=term)), False
        return queryset.filter(provider_message_id=term), False

    @admin.display(description="To")
    def to_first(self, email: Email) -> str:
        if not email.to:
            return "-"
        more = len(email.to) - 1 + len(email.cc) + len(email.bcc)
        return f"{_short(email.to[0], 60)}" + (f" +{more}" if more else "")

    @admin.display(description="Subject")
    def subject_short(self, email: Email) -> str:
        return _short(email.subject, 60)

    @admin.display(description="Timeline")
    def timeline(self, email: Email):
        """Events and delivery attempts, oldest first, in one table."""
        events = list(email.events.order_by("timestamp", "id")[:TIMELINE_LIMIT + 1])
        attempts = list(email.delivery_attempts.order_by("attempted_at", "id"))
        rows = [(e.timestamp, 1, e.id, "event", e.type, e.recipient, _short(json.dumps(e.data, sort_keys=True), 160))
                for e in events[:TIMELINE_LIMIT]]
        rows += [(a.attempted_at, 0, a.id, f"attempt #{a.number}", a.outcome, f"{a.duration_ms} ms",
                  _short(a.response, 160)) for a in attempts]
        rows.sort(key=lambda row: row[:3])
        body = format_html_join(
            "", '<tr class="timeline-{}"><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td><code>{}</code></td></tr>',
            ((kind.split(" ")[0], when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], kind, what, who, detail)
             for when, _, _, kind, what, who, detail in rows))
        more = ""
        if len(events) > TIMELINE_LIMIT:
            url = reverse("admin:emails_emailevent_changelist") + f"?q={email.public_id}"
            more = format_html('<p>First {} events shown; <a href="{}">all events</a>.</p>', TIMELINE_LIMIT, url)
        return format_html(
            '<table id="email-timeline"><thead><tr><th>When (UTC)</th><th>Kind</th><th>What</th><th>Recipient / '
            'duration</th><th>Details</th></tr></thead><tbody>{}</tbody></table>{}', body, more)

    @admin.display(description="Recipients")
    def recipients_table(self, email: Email):
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.kind, r.address, r.display_name or "-", "suppressed" if r.suppressed else "-",
              r.first_opened_at or "-", r.first_clicked_at or "-")
             for r in email.recipients.order_by("id")))
        return format_html('<table id="email-recipients"><thead><tr><th>Kind</th><th>Address</th><th>Name</th>'
                           '<th>Suppressed</th><th>First open</th><th>First click</th></tr></thead>'
                           "<tbody>{}</tbody></table>", body)

    @admin.display(description="HTML (rendered)")
    def html_preview(self, email: Email):
        # The sender's HTML (before tracking rewrote links and added the pixel), when kept.
        html = email.source_html if email.source_html is not None else email.html
        if html is None:
            return "No HTML part."
        document = f'<meta http-equiv="Content-Security-Policy" content="{PREVIEW_CSP}">{html}'
        return format_html('<iframe id="email-html-preview" sandbox="" srcdoc="{}" title="Rendered HTML" '
                           'style="width: 100%; min-width: 600px; height: 480px; border: 1px solid #ccc; '
                           'background: #fff"></iframe>', document)

    @admin.display(description="Text")
    def text_body(self, email: Email):
        if email.text is None:
            return "No text part."
        return format_html('<pre style="white-space: pre-wrap; max-height: 320px; overflow: auto">{}</pre>',
                           email.text)

    @admin.display(description="Attachments")
    def attachments_list(self, email: Email):
        rows = email.attachments.order_by("id").values_list("filename", "content_type", "size")
        return format_html_join("", "<div>{} ({}, {} bytes)</div>", rows) or "None."

    @admin.display(description="Message headers")
    def headers_table(self, email: Email):
        message = _mime(email, attachments=[])
        rows = [(name, value) for name, value in message.items() if name.lower() not in STRUCTURAL_HEADERS]
        body = format_html_join("", "<tr><th>{}</th><td><code>{}</code></td></tr>", rows)
        return format_html('<table id="email-headers"><tbody>{}</tbody></table><p class="help">Rebuilt from the '
                           "stored email as the pipeline builds it; the Date and DKIM-Signature headers are "
                           "added when it is sent.</p>", body)

    @admin.display(description="Raw MIME")
    def raw_mime(self, email: Email):
        url = reverse("admin:emails_email_mime", args=[email.pk])
        return format_html('<a href="{}" id="email-raw-mime">View the MIME message</a> (rebuilt on demand, '
                           "attachments included, without the DKIM signature)", url)

    def get_urls(self):
        return [path("<int:object_id>/mime/", self.admin_site.admin_view(self.mime_view), name="emails_email_mime"),
                *super().get_urls()]

    def mime_view(self, request, object_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        email = Email.objects.filter(pk=object_id).first()
        if email is None:
            raise Http404("No such email.")
        message = _mime(email, attachments=list(email.attachments.all()))
        return HttpResponse(message.as_bytes(), content_type="text/plain; charset=utf-8")

    @admin.action(description="Cancel selected emails (queued or scheduled only)")
    def cancel(self, request, queryset):
        cancelled, refused = 0, []
        for email in queryset.order_by("id"):
            try:
                services.email_cancel(email=email)
            except ApplicationError as exc:
                refused.append(email.public_id)
                audit_outcome(request, email, f"refused: {exc.message}")
                continue
            cancelled += 1
            audit_outcome(request, email, "cancelled")
        if cancelled:
            self.message_user(request, f"{cancelled} email(s) cancelled.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not cancelled (already picked up or finished): {', '.join(refused[:20])}"
                                       + (" ..." if len(refused) > 20 else ""), messages.WARNING)

    @admin.action(description="Resend selected emails (a new email with the same content)")
    def resend(self, request, queryset):
        created, refused = [], []
        for email in queryset.order_by("id"):
            try:
                new = services.email_resend(email=email, environment=email.environment)
            except ApplicationError as exc:
                refused.append(f"{email.public_id}: {exc.message}")
                audit_outcome(request, email, f"refused: {exc.message}")
                continue
            created.append(new.public_id)
            audit_outcome(request, email, f"resent as {new.public_id}")
        if created:
            self.message_user(request, f"{len(created)} email(s) queued again: {', '.join(created[:20])}.",
                              messages.SUCCESS)
        for line in refused[:20]:
            self.message_user(request, f"Not resent: {line}", messages.WARNING)


def _mime(email: Email, *, attachments: list):
    envelope = [r.address for r in email.recipients.all() if not r.suppressed]
    return build_mime(email=email, envelope_to=envelope, attachments=attachments)


# --- what happened to an email --------------------------------------------------------------


class EmailChildAdmin(BigTableAdmin):
    """Rows of one email: linked by id (no join of the email's bodies), newest first by id."""

    raw_id_fields = ["email"]
    ordering = ["-id"]
    search_fields = ["email__public_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(email_public_id=F("email__public_id"))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        found = _id_search(queryset, term)
        return (found if found is not None else self.search_other(queryset, term)), False

    def search_other(self, queryset, term: str):
        return queryset.none()

    @admin.display(description="Email", ordering="email_id")
    def email_link(self, obj):
        return _email_link(obj.email_id, obj.email_public_id)


@admin.register(EmailEvent)
class EmailEventAdmin(EmailChildAdmin):
    list_display = ["public_id", "type", "email_link", "recipient", "timestamp"]
    list_filter = ["type", "timestamp"]
    search_help_text = 'Exact: "msg_..." (the email), "evt_..." or a recipient address.'

    def search_other(self, queryset, term: str):
        if term.startswith("evt_"):
            return queryset.filter(public_id=term)
        return queryset.filter(recipient=term.lower())


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(EmailChildAdmin):
    list_display = ["email_link", "number", "outcome", "attempted_at", "duration_ms", "response_short"]
    list_filter = ["outcome", "attempted_at"]
    search_help_text = 'Exact: "msg_..." (the email).'

    @admin.display(description="Response")
    def response_short(self, attempt: DeliveryAttempt) -> str:
        return _short(attempt.response, 100)


@admin.register(EmailRecipient)
class EmailRecipientAdmin(EmailChildAdmin):
    list_display = ["address", "kind", "email_link", "suppressed", "first_opened_at", "first_clicked_at"]
    list_filter = ["kind", "suppressed"]
    search_help_text = 'Exact: a recipient address or "msg_..." (the email).'

    def search_other(self, queryset, term: str):
        return queryset.filter(address=term.lower())


@admin.register(EmailAttachment)
class EmailAttachmentAdmin(EmailChildAdmin):
    list_display = ["filename", "content_type", "size", "email_link"]
    fields = ["email", "filename", "content_type", "size"]
    readonly_fields = fields
    search_help_text = 'Exact: "msg_..." (the email) or a file name.'

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    def search_other(self, queryset, term: str):
        return queryset.filter(filename=term)


@admin.register(TrackedLink)
class TrackedLinkAdmin(EmailChildAdmin):
    list_display = ["email_link", "index", "url_short"]
    search_help_text = 'Exact: "msg_..." (the email).'

    @admin.display(description="URL")
    def url_short(self, link: TrackedLink) -> str:
        return _short(link.url, 120)


@admin.register(TrackingHit)
class TrackingHitAdmin(BigTableAdmin):
    """Raw pixel loads and clicks waiting for the flush task (usually few, short-lived)."""

    list_display = ["kind", "email_public_id", "link_index", "ip", "user_agent_short", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=email_public_id"]
    ordering = ["-id"]

    @admin.display(description="User agent")
    def user_agent_short(self, hit: TrackingHit) -> str:
        return _short(hit.user_agent, 60)


# --- per sub-account and per account ---------------------------------------------------------


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
        found = _id_search(queryset, term, email_path=None, subaccount_path="subaccount")
        return (found if found is not None else queryset.filter(address=term.lower())), False

    @admin.display(description="Source email")
    def source_email(self, suppression: Suppression):
        return suppression.source_email_id or "-"

    @admin.display(description="Note")
    def note_short(self, suppression: Suppression) -> str:
        return _short(suppression.note, 60)

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
        found = _id_search(queryset, term, email_path=None, subaccount_path="subaccount")
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

