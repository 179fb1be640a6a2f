"""Validation of a send request (DESIGN section 4) into a ``SendRequest``.

Plain functions rather than a DRF serializer: a batch validates 500 items per call and this
path must cost microseconds per item. ``emails/serializers.py`` describes the same shape for
the OpenAPI schema; tests keep the two in step.
"""

import base64
import binascii
import functools
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formataddr, getaddresses

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from email_validator import EmailNotValidError, validate_email

from config.api.errors import PayloadTooLarge, ValidationError

MAX_TO = 50
MAX_CC = 50
MAX_BCC = 50
MAX_TAGS = 10
MAX_TAG_LENGTH = 64
MAX_ATTACHMENTS = 10
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_METADATA_KEYS = 20
MAX_METADATA_BYTES = 2048
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MAX_SUBJECT = 998
MAX_BODY_CHARS = 5 * 1024 * 1024

KNOWN_FIELDS = {
    "from", "to", "cc", "bcc", "reply_to", "subject", "html", "text", "headers", "tags", "metadata",
    "attachments", "template_id", "variables", "track_opens", "track_clicks", "unsubscribe",
    "scheduled_at", "idempotency_key", "idempotency_window_hours",
}
# Headers the platform writes itself (or that would let a tenant forge routing or signatures).
RESERVED_HEADERS = {
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "dkim-signature",
    "mime-version", "return-path", "received", "sender", "list-unsubscribe", "list-unsubscribe-post",
    "arc-seal", "arc-message-signature", "arc-authentication-results", "authentication-results",
    "content-transfer-encoding", "content-type", "content-disposition", "content-id",
}
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext, kept short
_TAG_RE = re.compile(r"^[\w.:/-]{1,64}$")
_CRLF = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class Address:
    address: str
    name: str = ""

    @property
    def header(self) -> str:
        return formataddr((self.name, self.address)) if self.name else self.address

    @property
    def key(self) -> str:
        return self.address.lower()

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass
class SendRequest:
    sender: Address
    to: list[Address]
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    template_id: str | None = None
    variables: dict = field(default_factory=dict)
    track_opens: bool | None = None
    track_clicks: bool | None = None
    unsubscribe: bool = False
    scheduled_at: datetime | None = None
    idempotency_key: str | None = None
    idempotency_window_hours: int | None = None


class _Errors:
    def __init__(self):
        self.details: dict[str, list[str]] = {}
        self.too_large: str | None = None

    def add(self, name: str, message: str) -> None:
        self.details.setdefault(name, []).append(message)


# A display name, quoting or a comment: the standard library's header parser is needed.
_NEEDS_HEADER_PARSER = re.compile(r'[<>",()]')


def parse_address(value, name: str, errors: _Errors) -> Address | None:
    if not isinstance(value, str) or not value.strip():
        errors.add(name, "Must be an email address, optionally with a display name: \"Name <a@b.com>\".")
        return None
    if _CRLF.search(value):
        errors.add(name, "Must not contain line breaks.")
        return None
    if _NEEDS_HEADER_PARSER.search(value):
        parsed = _display_and_address(value)
        if parsed is None:
            errors.add(name, f"{value!r} is not one valid email address.")
            return None
        display, raw = parsed
    else:  # a bare address, the common case: no header parsing needed
        display, raw = "", value.strip()
    try:
        normalized = _normalized_address(raw)
    except EmailNotValidError as exc:
        errors.add(name, f"{raw!r} is not a valid email address: {exc}")
        return None
    return Address(address=normalized, name=display.strip())


@functools.lru_cache(maxsize=4096)
def _display_and_address(value: str) -> tuple[str, str] | None:
    """``"Name <a@b.com>"`` -> (name, address); None unless exactly one address. Cached like the
    next function: the standard library's header parser is slow and a batch repeats its sender."""
    parsed = getaddresses([value])
    if len(parsed) != 1 or not parsed[0][1] or "@" not in parsed[0][1]:
        return None
    return parsed[0]


@functools.lru_cache(maxsize=4096)
def _normalized_address(raw: str) -> str:
    """email-validator's syntax check (a pure function of the string, so cached: a batch of 500
    repeats its sender 500 times, and senders repeat across requests)."""
    # test_environment: the simulator addresses live under the reserved .test TLD.
    return validate_email(raw, check_deliverability=False, allow_smtputf8=True, test_environment=True).normalized


def _address_list(data: dict, key: str, errors: _Errors, *, limit: int, required: bool = False) -> list[Address]:
    value = data.get(key)
    if value is None or value == [] or value == "":
        if required:
            errors.add(key, "At least one recipient is required.")
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        errors.add(key, "Must be an address or a list of addresses.")
        return []
    if len(items) > limit:
        errors.add(key, f"At most {limit} addresses.")
        return []
    parsed = [parse_address(item, f"{key}.{i}" if len(items) > 1 or not isinstance(value, str) else key, errors)
              for i, item in enumerate(items)]
    return [a for a in parsed if a is not None]


def _optional_str(data: dict, key: str, errors: _Errors, *, max_length: int, single_line: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.add(key, "Must be a string.")
        return None
    if len(value) > max_length:
        errors.add(key, f"At most {max_length} characters.")
        return None
    if single_line and _CRLF.search(value):
        errors.add(key, "Must not contain line breaks.")
        return None
    return value


def _optional_bool(data: dict, key: str, errors: _Errors) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    errors.add(key, "Must be true or false.")
    return None


def _headers(data: dict, errors: _Errors) -> dict[str, str]:
    value = data.get("headers")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("headers", "Must be an object of header names to string values.")
        return {}
    headers = {}
    for name, header_value in value.items():
        if not _HEADER_NAME_RE.match(name):
            errors.add(f"headers.{name}", "Not a valid header name.")
        elif name.lower() in RESERVED_HEADERS or name.lower().startswith(("content-", "x-mailroom-")):
            errors.add(f"headers.{name}", "This header is reserved and set by Mailroom.")
        elif not isinstance(header_value, str):
            errors.add(f"headers.{name}", "Must be a string.")
        elif _CRLF.search(header_value):
            errors.add(f"headers.{name}", "Must not contain line breaks.")
        elif len(header_value) > 998:
            errors.add(f"headers.{name}", "At most 998 characters.")
        else:
            headers[name] = header_value
    return headers


def _tags(data: dict, errors: _Errors) -> list[str]:
    value = data.get("tags")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        errors.add("tags", "Must be a list of strings.")
        return []
    if len(value) > MAX_TAGS:
        errors.add("tags", f"At most {MAX_TAGS} tags.")
        return []
    for i, tag in enumerate(value):
        if len(tag) > MAX_TAG_LENGTH:
            errors.add(f"tags.{i}", f"At most {MAX_TAG_LENGTH} characters.")
        elif not _TAG_RE.match(tag):
            errors.add(f"tags.{i}", "Letters, digits and _ . : / - only.")
    return list(dict.fromkeys(value))


def _metadata(data: dict, errors: _Errors) -> dict:
    value = data.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add("metadata", "Must be a flat object.")
        return {}
    if len(value) > MAX_METADATA_KEYS:
        errors.add("metadata", f"At most {MAX_METADATA_KEYS} keys.")
        return {}
    size = 0
    for key, item in value.items():
        if len(key) > 40:
            errors.add(f"metadata.{key[:40]}", "Keys are at most 40 characters.")
        if item is not None and not isinstance(item, str | int | float | bool):
            errors.add(f"metadata.{key}", "Values must be strings, numbers, booleans or null (flat object).")
        size += len(key) + len(str(item))
    if size > MAX_METADATA_BYTES:
        errors.add("metadata", f"At most {MAX_METADATA_BYTES} bytes in all.")
    return value


def _attachments(data: dict, errors: _Errors) -> list[Attachment]:
    value = data.get("attachments")
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("attachments", "Must be a list.")
        return []
    if len(value) > MAX_ATTACHMENTS:
        errors.add("attachments", f"At most {MAX_ATTACHMENTS} attachments.")
        return []
    result, total = [], 0
    for i, item in enumerate(value):
        prefix = f"attachments.{i}"
        if not isinstance(item, dict):
            errors.add(prefix, "Must be an object with filename, content and content_type.")
            continue
        filename, content = item.get("filename"), item.get("content")
        if not isinstance(filename, str) or not filename or len(filename) > 255 or \
                _CRLF.search(filename) or "/" in filename or "\\" in filename:
            errors.add(f"{prefix}.filename", "A file name (no path, no line breaks, up to 255 characters).")
            continue
        if not isinstance(content, str):
            errors.add(f"{prefix}.content", "Base64-encoded content is required.")
            continue
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            errors.add(f"{prefix}.content", "Not valid base64.")
            continue
        content_type = item.get("content_type") or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if not isinstance(content_type, str) or not re.match(r"^[\w.+-]+/[\w.+-]+$", content_type):
            errors.add(f"{prefix}.content_type", "A MIME type such as application/pdf.")
            continue
        total += len(raw)
        result.append(Attachment(filename=filename, content_type=content_type.lower(), content=raw))
    if total > MAX_ATTACHMENT_BYTES:
        errors.too_large = f"Attachments total {total} bytes; the limit is {MAX_ATTACHMENT_BYTES} bytes decoded."
    return result


def _scheduled_at(data: dict, errors: _Errors, now: datetime) -> datetime | None:
    value = data.get("scheduled_at")
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        errors.add("scheduled_at", "Must be an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z.")
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= now:
        errors.add("scheduled_at", "Must be in the future.")
    elif parsed > now + MAX_SCHEDULE_AHEAD:
        errors.add("scheduled_at", "At most 30 days ahead.")
    return parsed


def _content(data: dict, errors: _Errors, request: SendRequest) -> None:
    request.subject = _optional_str(data, "subject", errors, max_length=MAX_SUBJECT, single_line=True)
    request.html = _optional_str(data, "html", errors, max_length=MAX_BODY_CHARS)
    request.text = _optional_str(data, "text", errors, max_length=MAX_BODY_CHARS)
    template_id = data.get("template_id")
    variables = data.get("variables")
    if template_id is not None:
        if not isinstance(template_id, str) or not template_id or len(template_id) > 200:
            errors.add("template_id", "Must be a template id or name.")
        else:
            request.template_id = template_id
        if request.html is not None or request.text is not None:
            errors.add("template_id", "Send either template_id or html/text, not both.")
        if variables is not None and not isinstance(variables, dict):
            errors.add("variables", "Must be an object.")
        else:
            request.variables = variables or {}
        return
    if variables is not None:
        errors.add("variables", "Only used with template_id.")
    if request.html is None and request.text is None:
        errors.add("html", "Provide html or text (or a template_id).")
    if not request.subject:
        errors.add("subject", "A subject is required unless a template provides it.")


def send_request_parse(data, *, now: datetime | None = None) -> SendRequest:
    """Validate one send request; raise ValidationError (422) or PayloadTooLarge (413)."""
    errors = _Errors()
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.", details={"non_field_errors": [
            "Expected a JSON object."]})
    now = now or timezone.now()
    for unknown in sorted(set(data) - KNOWN_FIELDS):
        errors.add(unknown, "Unknown field.")
    sender = parse_address(data.get("from"), "from", errors) if data.get("from") is not None else None
    if data.get("from") is None:
        errors.add("from", "The sender address is required.")
    request = SendRequest(sender=sender, to=_address_list(data, "to", errors, limit=MAX_TO, required=True))
    request.cc = _address_list(data, "cc", errors, limit=MAX_CC)
    request.bcc = _address_list(data, "bcc", errors, limit=MAX_BCC)
    request.reply_to = _address_list(data, "reply_to", errors, limit=10)
    _content(data, errors, request)
    request.headers = _headers(data, errors)
    request.tags = _tags(data, errors)
    request.metadata = _metadata(data, errors)
    request.attachments = _attachments(data, errors)
    request.track_opens = _optional_bool(data, "track_opens", errors)
    request.track_clicks = _optional_bool(data, "track_clicks", errors)
    request.unsubscribe = bool(_optional_bool(data, "unsubscribe", errors))
    request.scheduled_at = _scheduled_at(data, errors, now)
    request.idempotency_key = _optional_str(data, "idempotency_key", errors, max_length=255, single_line=True)
    window = data.get("idempotency_window_hours")
    if window is not None:
        if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 72:
            errors.add("idempotency_window_hours", "A whole number of hours from 1 to 72.")
        else:
            request.idempotency_window_hours = window
    if errors.details:
        raise ValidationError("The email is invalid.", details=errors.details)
    if errors.too_large:
        raise PayloadTooLarge(errors.too_large, details={"attachments": [errors.too_large]})
    return request

