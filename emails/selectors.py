from datetime import datetime

from django.db.models import QuerySet

from config.api.errors import NotFound
from emails.models import Email, EmailEvent, Suppression


def email_list(*, subaccount, status: str | None = None, tag: str | None = None, to: str | None = None,
               sender: str | None = None, domain: str | None = None, from_date: datetime | None = None,
               to_date: datetime | None = None, environment: str | None = None) -> QuerySet[Email]:
    emails = subaccount.emails.all()
    if status:
        emails = emails.filter(status=status)
    if tag:
        emails = emails.filter(tags_index__contains=f",{tag},")
    if to:
        emails = emails.filter(recipients__address=to.lower())
    if sender:
        emails = emails.filter(from_address__iexact=sender)
    if domain:
        emails = emails.filter(from_domain=domain.lower())
    if from_date:
        emails = emails.filter(created_at__gte=from_date)
    if to_date:
        emails = emails.filter(created_at__lte=to_date)
    if environment:
        emails = emails.filter(environment=environment)
    return emails.defer("html", "text", "source_html").order_by("-created_at", "-id")


def email_get(*, subaccount, email_id: str) -> Email:
    email = subaccount.emails.filter(public_id=email_id).first()
    if email is None:
        raise NotFound("Email not found.")
    return email


def email_events(*, email: Email) -> QuerySet[EmailEvent]:
    return email.events.order_by("timestamp", "id")


def suppression_list(*, subaccount, reason: str | None = None, address: str | None = None) -> QuerySet[Suppression]:
    rows = subaccount.suppressions.all()
    if reason:
        rows = rows.filter(reason=reason)
    if address:
        rows = rows.filter(address=address.lower())
    return rows.order_by("-created_at", "-id")
