"""Provider events: django-anymail's normalised tracking webhooks onto our events.

anymail verifies the webhook (basic auth with ``ANYMAIL["WEBHOOK_SECRET"]``, plus the ESP's own
signature where it has one) and parses the ESP's payload into ``AnymailTrackingEvent``s; this
receiver of its ``tracking`` signal (the one signal we use) finds our email by the provider's
message id and calls ``email_event_record``, which does the rest (status forward only,
counters, suppressions, tenant webhooks). A provider event id makes a replay a no-op.
"""

import hashlib
import json
import logging
import re

from anymail.signals import EventType as Anymail
from django.db import transaction
from django.utils import timezone

from emails.models import Email, EmailEvent, EventType
from emails.services.events import email_event_record
from emails.tracking.hits import clean_ip, clean_user_agent, engagement_data, primary_recipients

logger = logging.getLogger(__name__)

# anymail event type -> ours. Absent: nothing to record (queued/sent: our dispatcher recorded
# "sent" when the ESP accepted the message; autoresponded/subscribed/unknown: no such event).
EVENT_TYPES = {
    Anymail.DELIVERED: EventType.DELIVERED,
    Anymail.DEFERRED: EventType.DELIVERY_DELAYED,
    Anymail.BOUNCED: EventType.BOUNCED,
    Anymail.REJECTED: EventType.BOUNCED,
    Anymail.FAILED: EventType.FAILED,
    Anymail.COMPLAINED: EventType.COMPLAINED,
    Anymail.UNSUBSCRIBED: EventType.UNSUBSCRIBED,
    Anymail.OPENED: EventType.OPENED,
    Anymail.CLICKED: EventType.CLICKED,
}
# Postmark's bounce Types that are temporary (anymail reports them as "bounced").
SOFT_BOUNCE_TYPES = {"SoftBounce", "Transient", "DnsError"}
# An SMTP reply's class: 4.x.x (RFC 3463 enhanced code) or a 4xx basic code is temporary.
_ENHANCED_CODE = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
_BASIC_CODE = re.compile(r"^\s*([245])\d\d(?:[\s-]|$)")
PROVIDER_EVENT_ID_MAX = 200


def _smtp_class(*texts: str | None) -> str | None:
    for text in texts:
        if not text:
            continue
        match = _ENHANCED_CODE.search(text) or _BASIC_CODE.search(text)
        if match:
            return match.group(1)
    return None


def bounce_type(event) -> str:
    """"hard" (permanent: suppress) or "soft" (temporary: only ``delivery_delayed``)."""
    if event.event_type == Anymail.REJECTED:
        return "hard"  # the ESP refused it for this address (invalid, suppressed, blocked)
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    if esp_event.get("Type") in SOFT_BOUNCE_TYPES:
        return "soft"
    return "soft" if _smtp_class(event.mta_response, event.description) == "4" else "hard"


def _esp_event_for_hash(esp_event):
    if hasattr(esp_event, "lists"):  # a QueryDict (form-encoded webhooks)
        return {key: values for key, values in esp_event.lists()}
    return esp_event


def provider_event_id(esp_name: str, event) -> str:
    """``<esp>:<event id>``; ESPs that send no id for some events (Postmark deliveries and
    opens) get a digest of the payload, so the same delivery twice still dedupes."""
    slug = re.sub(r"[^a-z0-9]+", "_", esp_name.lower()).strip("_")
    if event.event_id:
        raw = str(event.event_id)
    else:
        material = json.dumps([event.event_type, event.message_id, event.recipient,
                               event.timestamp.isoformat() if event.timestamp else None, event.click_url,
                               _esp_event_for_hash(event.esp_event)], sort_keys=True, default=str)
        raw = "sha256:" + hashlib.sha256(material.encode()).hexdigest()
    value = f"{slug}:{raw}"
    if len(value) > PROVIDER_EVENT_ID_MAX:
        value = f"{slug}:sha256:{hashlib.sha256(raw.encode()).hexdigest()}"
    return value


def _email_for(message_id: str | None) -> Email | None:
    if not message_id:
        return None
    bare = str(message_id).strip().strip("<>")
    if not bare:
        return None
    candidates = {str(message_id), bare, f"<{bare}>"}
    return (Email.objects.filter(provider_message_id__in=candidates).defer("html", "text", "source_html")
            .order_by("-id").first())


def _ip(event) -> str | None:
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    event_data = esp_event.get("event-data") if isinstance(esp_event.get("event-data"), dict) else {}
    geo = esp_event.get("Geo") if isinstance(esp_event.get("Geo"), dict) else {}
    for value in (event_data.get("ip"), geo.get("IP"), esp_event.get("ip")):
        if value:
            return clean_ip(str(value))
    return None


def _details(event, esp_name: str) -> dict:
    data = {"provider": esp_name}
    if event.description:
        data["reason"] = str(event.description)[:1000]
    if event.mta_response:
        data["mta_response"] = str(event.mta_response)[:1000]
    if event.reject_reason:
        data["reject_reason"] = str(event.reject_reason)
    return data


def anymail_tracking_received(sender, event, esp_name, **kwargs) -> None:
    """Receiver of ``anymail.signals.tracking`` (connected in EmailsConfig.ready)."""
    our_type = EVENT_TYPES.get(event.event_type)
    if our_type is None:
        logger.debug("Ignoring %s %s event for %s", esp_name, event.event_type, event.message_id)
        return
    email = _email_for(event.message_id)
    if email is None:
        logger.info("Ignoring %s %s event: unknown message id %r", esp_name, event.event_type, event.message_id)
        return
    event_id = provider_event_id(esp_name, event)
    if EmailEvent.objects.filter(provider_event_id=event_id).exists():
        return  # a replayed webhook
    timestamp = event.timestamp or timezone.now()
    recipient = (event.recipient or "").strip().lower() or primary_recipients([email.pk]).get(email.pk, "")
    data = _details(event, esp_name)
    if our_type == EventType.BOUNCED and bounce_type(event) == "soft":
        our_type = EventType.DELIVERY_DELAYED
    elif our_type == EventType.BOUNCED:
        data["bounce_type"] = "hard"
    with transaction.atomic():
        if our_type in (EventType.OPENED, EventType.CLICKED):
            user_agent = clean_user_agent(event.user_agent)
            data.update(engagement_data(email=email, event_type=our_type, recipient=recipient,
                                        user_agent=user_agent, ip=_ip(event), at=timestamp,
                                        url=event.click_url))
        email_event_record(email=email, type=our_type, recipient=recipient, data=data, timestamp=timestamp,
                           provider_event_id=event_id)
