"""Unsubscribe (RFC 8058 one-click and the confirmation page): read the token, record once."""

from dataclasses import dataclass

from django.db import transaction

from emails.models import Email, EmailEvent, Environment, EventType, Suppression
from emails.services.events import email_event_record
from emails.tokens import unsubscribe_token_read
from emails.tracking.hits import clean_ip, clean_user_agent


@dataclass(frozen=True)
class UnsubscribeTarget:
    email: Email
    recipient: str


def unsubscribe_target(*, token: str) -> UnsubscribeTarget | None:
    """The email and recipient a token was made for; None when forged, altered, expired or
    when the email no longer exists. The token alone decides: no tenant is asked for."""
    payload = unsubscribe_token_read(token)
    if payload is None:
        return None
    email = Email.objects.filter(public_id=payload["e"]).defer("html", "text", "source_html").first()
    if email is None:
        return None
    return UnsubscribeTarget(email=email, recipient=payload["r"].lower())


def email_unsubscribe(*, target: UnsubscribeTarget, ip: str | None, user_agent: str | None) -> bool:
    """Suppress the recipient for the email's sub-account and record ``unsubscribed`` (through
    ``email_event_record``, which adds the suppression). Idempotent: a second POST records
    nothing and returns False."""
    with transaction.atomic():
        # The email row's lock orders concurrent POSTs for it, so exactly one records.
        email = Email.objects.select_for_update().defer("html", "text", "source_html").get(pk=target.email.pk)
        if _already_unsubscribed(email, target.recipient):
            return False
        email_event_record(email=email, type=EventType.UNSUBSCRIBED, recipient=target.recipient,
                           data={"method": "one_click", "user_agent": clean_user_agent(user_agent),
                                 "ip": clean_ip(ip)})
    return True


def _already_unsubscribed(email: Email, recipient: str) -> bool:
    # Recorded before and still in effect: a suppression the tenant removed since (the person
    # re-subscribed) is added again by a new unsubscribe.
    if not EmailEvent.objects.filter(email=email, type=EventType.UNSUBSCRIBED, recipient=recipient).exists():
        return False
    return email.environment == Environment.TEST or Suppression.objects.filter(
        subaccount_id=email.subaccount_id, address=recipient).exists()
