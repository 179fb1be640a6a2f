"""Cancel, reschedule and resend: state changes guarded by the row's status."""

import base64
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.api.errors import Conflict, ValidationError
from emails.models import Email, EmailStatus, EventType
from emails.services.events import email_event_record
from emails.validation import MAX_SCHEDULE_AHEAD


@transaction.atomic
def email_cancel(*, email: Email) -> Email:
    # The status guard in the UPDATE is the claim: a worker that claimed the row first wins.
    cancelled = Email.objects.filter(pk=email.pk, status__in=[EmailStatus.QUEUED, EmailStatus.SCHEDULED]).update(
        status=EmailStatus.CANCELLED, updated_at=timezone.now())
    if not cancelled:
        email.refresh_from_db(fields=["status"])
        raise Conflict(f"An email that is {email.status} cannot be cancelled; only queued (not yet "
                       "picked up) or scheduled emails can.", details={"status": [email.status]})
    email.status = EmailStatus.CANCELLED
    email_event_record(email=email, type=EventType.CANCELLED)
    return email


@transaction.atomic
def email_reschedule(*, email: Email, scheduled_at: datetime) -> Email:
    now = timezone.now()
    if timezone.is_naive(scheduled_at):
        raise ValidationError(details={"scheduled_at": ["Include a time zone, e.g. 2026-01-31T09:00:00Z."]})
    if scheduled_at <= now:
        raise ValidationError(details={"scheduled_at": ["Must be in the future."]})
    if scheduled_at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationError(details={"scheduled_at": ["At most 30 days ahead."]})
    updated = Email.objects.filter(pk=email.pk, status=EmailStatus.SCHEDULED).update(
        scheduled_at=scheduled_at, next_attempt_at=scheduled_at, updated_at=now)
    if not updated:
        email.refresh_from_db(fields=["status"])
        raise Conflict(f"Only scheduled emails can be rescheduled; this one is {email.status}.",
                       details={"status": [email.status]})
    email.scheduled_at = email.next_attempt_at = scheduled_at
    email_event_record(email=email, type=EventType.SCHEDULED, data={"scheduled_at": scheduled_at.isoformat(),
                                                                    "rescheduled": True})
    return email


def email_resend(*, email: Email, environment: str) -> Email:
    """A new email with the same content (rendered bodies, attachments), sent now."""
    from emails.services.accept import email_send

    data = {
        "from": email.from_header, "to": email.to, "subject": email.subject, "headers": email.headers,
        "tags": email.tags, "metadata": email.metadata, "track_opens": email.track_opens,
        "track_clicks": email.track_clicks, "unsubscribe": email.unsubscribe,
    }
    for name in ("cc", "bcc", "reply_to"):
        if getattr(email, name):
            data[name] = getattr(email, name)
    # The sender's HTML, not the tracked copy: the new email gets its own links and pixel.
    html = email.source_html if email.source_html is not None else email.html
    if html is not None:
        data["html"] = html
    if email.text is not None:
        data["text"] = email.text
    attachments = [{"filename": a.filename, "content_type": a.content_type,
                    "content": base64.b64encode(bytes(a.content)).decode()} for a in email.attachments.all()]
    if attachments:
        data["attachments"] = attachments
    return email_send(subaccount=email.subaccount, environment=environment, data=data)
