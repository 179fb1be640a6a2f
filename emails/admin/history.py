"""What happened to an email, row by row: events, attempts, recipients, attachments, links, hits."""

from django.contrib import admin
from django.db.models import F

from emails.admin.base import BigTableAdmin, id_search, link_to_email, short
from emails.models import (
    DeliveryAttempt,
    EmailAttachment,
    EmailEvent,
    EmailRecipient,
    PendingFanout,
    TrackedLink,
    TrackingHit,
)


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
        found = id_search(queryset, term)
        return (found if found is not None else self.search_other(queryset, term)), False

    def search_other(self, queryset, term: str):
        return queryset.none()

    @admin.display(description="Email", ordering="email_id")
    def email_link(self, obj):
        return link_to_email(obj.email_id, obj.email_public_id)


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
        return short(attempt.response, 100)


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
        return short(link.url, 120)


@admin.register(TrackingHit)
class TrackingHitAdmin(BigTableAdmin):
    """Raw pixel loads and clicks waiting for the flush task (usually few, short-lived)."""

    list_display = ["kind", "email_public_id", "link_index", "ip", "user_agent_short", "created_at"]
    list_filter = ["kind"]
    search_fields = ["=email_public_id"]
    ordering = ["-id"]

    @admin.display(description="User agent")
    def user_agent_short(self, hit: TrackingHit) -> str:
        return short(hit.user_agent, 60)


@admin.register(PendingFanout)
class PendingFanoutAdmin(BigTableAdmin):
    """Accepted mail's first events whose webhooks and counters are still to be applied. It
    drains every second; a list that keeps growing means the beat or the workers are down."""

    list_display = ["event_id", "event_type", "event_timestamp"]
    ordering = ["event_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event").only("event__type", "event__timestamp")

    @admin.display(description="Event type")
    def event_type(self, obj):
        return obj.event.type

    @admin.display(description="Recorded")
    def event_timestamp(self, obj):
        return obj.event.timestamp
