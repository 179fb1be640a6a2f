"""Delivery status notifications (RFC 3464) for mail we relayed over SMTP without an ESP.

A bounce that reaches the return path is parsed with the standard library's ``email`` package
(it splits ``message/delivery-status`` into its per-message and per-recipient field blocks),
matched to our email by the returned headers (``X-Mailroom-Id``, else the ``Message-ID`` we
made) and recorded through ``email_event_record``: ``failed`` with a 5.x.x status is a hard
bounce (suppressed), a 4.x.x failure or ``delayed`` is ``delivery_delayed``, ``delivered``,
``relayed`` and ``expanded`` are ``delivered``. Only the email's own recipients are accepted,
so a forged report cannot suppress an address the email was never sent to.
"""

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass
from email.parser import HeaderParser

from emails.models import Email, EventType
from emails.services.events import email_event_record

logger = logging.getLogger(__name__)

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_PUBLIC_ID = re.compile(r"^<?(msg_[A-Za-z0-9]{24})@")


@dataclass(frozen=True)
class DsnRecipient:
    address: str
    action: str
    status: str
    diagnostic: str
    remote_mta: str


@dataclass(frozen=True)
class DsnOutcome:
    recipient: str
    email_id: str | None
    event_type: str | None
    recorded: bool
    note: str = ""


def _address(value: str | None) -> str:
    """``rfc822; Ann@Example.com`` -> ``ann@example.com``."""
    if not value:
        return ""
    _, _, address = str(value).partition(";")
    return (address or str(value)).strip().strip("<>").lower()


def _returned_headers(message) -> dict[str, str]:
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "text/rfc822-headers":
            headers = HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
            return {name.lower(): str(value) for name, value in headers.items()}
        if content_type == "message/rfc822":
            inner = part.get_payload()[0]
            return {name.lower(): str(value) for name, value in inner.items()}
    return {}


def _recipients(message) -> list[DsnRecipient]:
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        found = []
        for block in blocks[1:]:  # the first block is about the message, the rest one per recipient
            address = _address(block.get("Original-Recipient")) or _address(block.get("Final-Recipient"))
            if address:
                found.append(DsnRecipient(
                    address=address, action=str(block.get("Action", "")).strip().lower(),
                    status=str(block.get("Status", "")).strip(),
                    diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:1000],
                    remote_mta=str(block.get("Remote-MTA", "")).strip()[:255]))
        return found
    return []


def _email_for(headers: dict[str, str]) -> Email | None:
    public_id = headers.get("x-mailroom-id", "").strip()
    if not public_id:
        match = _PUBLIC_ID.match(headers.get("message-id", "").strip())
        public_id = match.group(1) if match else ""
    if not public_id:
        return None
    found = Email.objects.filter(public_id=public_id).defer("html", "text", "source_html").first()
    # The Message-ID, when returned, must be the one we made for that email.
    if found and headers.get("message-id") and headers["message-id"].strip() != found.message_id:
        return None
    return found


def _classify(recipient: DsnRecipient) -> tuple[str | None, dict]:
    status = _STATUS.match(recipient.status)
    status_class = status.group(1) if status else None
    details = {"source": "dsn", "status": recipient.status, "action": recipient.action}
    if recipient.diagnostic:
        details["reason"] = recipient.diagnostic
    if recipient.remote_mta:
        details["remote_mta"] = recipient.remote_mta
    if recipient.action == "failed":
        if status_class == "4":
            return EventType.DELIVERY_DELAYED, details
        return EventType.BOUNCED, {**details, "bounce_type": "hard"}
    if recipient.action == "delayed":
        return EventType.DELIVERY_DELAYED, details
    if recipient.action in ("delivered", "relayed", "expanded"):
        return EventType.DELIVERED, details
    return None, details


def dsn_ingest(*, raw: bytes) -> list[DsnOutcome]:
    """Record what one DSN reports; each recipient block once (a re-fed DSN records nothing)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    recipients = _recipients(message)
    if not recipients:
        return [DsnOutcome(recipient="", email_id=None, event_type=None, recorded=False,
                           note="not a delivery status notification")]
    target = _email_for(_returned_headers(message))
    if target is None:
        logger.info("DSN for a message we do not know (%s)", message.get("Message-ID"))
        return [DsnOutcome(recipient=r.address, email_id=None, event_type=None, recorded=False,
                           note="unknown message") for r in recipients]
    ours = set(target.recipients.values_list("address", flat=True))
    report_id = str(message.get("Message-ID") or "").strip() or hashlib.sha256(raw).hexdigest()
    outcomes = []
    for recipient in recipients:
        event_type, details = _classify(recipient)
        if recipient.address not in ours or event_type is None:
            note = "not a recipient of this email" if recipient.address not in ours else "action not reported"
            outcomes.append(DsnOutcome(recipient.address, target.public_id, None, False, note))
            continue
        digest = hashlib.sha256(f"{report_id}|{recipient.address}|{recipient.action}|{recipient.status}".encode())
        event = email_event_record(email=target, type=event_type, recipient=recipient.address, data=details,
                                   provider_event_id=f"dsn:{digest.hexdigest()}")
        outcomes.append(DsnOutcome(recipient.address, target.public_id, event_type, event is not None,
                                   "" if event is not None else "already recorded"))
    return outcomes
