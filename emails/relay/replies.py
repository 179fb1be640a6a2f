"""SMTP replies for the relay's outcomes: RFC 5321 codes with RFC 3463 enhanced status codes.

A 4xx reply tells the client to keep the message and retry; a 5xx reply tells it to give up.
Anything that could succeed later (database down, quota, rate limit) is 4xx.
"""

import re

from config.api.errors import ApplicationError

QUEUED = "250 2.0.0 Ok: queued as {email_id}"
QUEUED_REPLAYED = "250 2.0.0 Ok: queued as {email_id} (idempotent replay)"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
AUTH_TEMPORARY = "454 4.7.0 Temporary authentication failure, try again later"
AUTH_REVOKED = "421 4.7.0 The SMTP credential is no longer valid, closing connection"
TEMPORARY = "451 4.3.0 Temporary failure, try again later"
SENDER_OK = "250 2.1.0 Ok"
RECIPIENT_OK = "250 2.1.5 Ok"

# Error code -> (reply code, enhanced status code). Unlisted 4xx errors: 550 5.7.0; 5xx: 451.
_BY_CODE = {
    "validation_error": ("550", "5.6.0"),
    "payload_too_large": ("552", "5.3.4"),
    "domain_not_verified": ("550", "5.7.1"),
    "recipient_suppressed": ("550", "5.7.1"),
    "spam_rejected": ("550", "5.7.1"),
    "authorization_error": ("550", "5.7.1"),
    "idempotency_mismatch": ("550", "5.6.0"),
    "idempotency_conflict": ("451", "4.3.0"),
    "rate_limit_exceeded": ("421", "4.7.0"),
    # The month's allowance is used up: temporary (it returns with the next month or a bigger
    # plan), so the client keeps the message; 452 is "insufficient system storage".
    "quota_exceeded": ("452", "4.3.1"),
}
MAX_TEXT = 400
_UNNAMED_FIELDS = {"quota", "non_field_errors"}  # details that name no field of the message  # a reply line stays well under RFC 5321's 512 octets


def clean(text: str) -> str:
    """One printable ASCII line: replies are sent before any SMTPUTF8 negotiation matters."""
    text = re.sub(r"\s+", " ", text).strip()
    text = text.encode("ascii", "replace").decode("ascii")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 3] + "..."


def _describe(error: ApplicationError) -> str:
    parts = []
    for field, messages in (error.details or {}).items():
        items = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        if items:
            parts.append(items if field in _UNNAMED_FIELDS else f"{field}: {items}")
    if not parts or any(error.message in p for p in parts):
        return error.message
    return f"{error.message.rstrip('.')}: {'; '.join(parts)}"


def reply_for_error(error: ApplicationError) -> str:
    code, enhanced = _BY_CODE.get(error.code, ("451", "4.3.0") if error.status >= 500 else ("550", "5.7.0"))
    if code == "451" and error.code not in _BY_CODE:
        return TEMPORARY
    if code == "421":
        return f"421 {enhanced} {clean(error.message)}, closing connection"
    return f"{code} {enhanced} {clean(_describe(error))}"


def closes_connection(reply: str) -> bool:
    """RFC 5321 section 3.8: a 421 reply means the server is closing the channel."""
    return reply.startswith("421")
