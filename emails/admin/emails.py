"""The email list and an email's page: timeline, recipients, sandboxed HTML, headers, MIME."""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from accounts.audit import audit_outcome
from config.admin_filters import AccountFilter
from config.api.errors import ApplicationError
from emails import services
from emails.admin.base import BigTableAdmin, id_search, short
from emails.mime import build_mime
from emails.models import DeliveryAttempt, Email, EmailRecipient

EMAIL_HEAVY_FIELDS = ("html", "text", "source_html", "headers", "metadata", "last_error")
TIMELINE_LIMIT = 500
# What the preview iframe may load: inline styles and data: images only. The sandbox="" on
# the iframe already stops scripts, forms and navigation; this also stops remote images, so
# opening an email in the admin never calls a tracker or the tenant's servers.
PREVIEW_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; font-src data:"
# Headers made by the MIME build itself; the page lists the message's own headers.
STRUCTURAL_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "date"}


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
        found = id_search(queryset, term, email_path="", subaccount_path="subaccount")
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
        return f"{short(email.to[0], 60)}" + (f" +{more}" if more else "")

    @admin.display(description="Subject")
    def subject_short(self, email: Email) -> str:
        return short(email.subject, 60)

    @admin.display(description="Timeline")
    def timeline(self, email: Email):
        """Events and delivery attempts, oldest first, in one table."""
        events = list(email.events.order_by("timestamp", "id")[:TIMELINE_LIMIT + 1])
        attempts = list(email.delivery_attempts.order_by("attempted_at", "id"))
        rows = [(e.timestamp, 1, e.id, "event", e.type, e.recipient, short(json.dumps(e.data, sort_keys=True), 160))
                for e in events[:TIMELINE_LIMIT]]
        rows += [(a.attempted_at, 0, a.id, f"attempt #{a.number}", a.outcome, f"{a.duration_ms} ms",
                  short(a.response, 160)) for a in attempts]
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
