"""A received SMTP message turned into the send request the API takes (DESIGN section 4).

The relay and the API share one send path: this module only translates. Recipients come from
the envelope (RCPT TO), which is what SMTP delivers to; the To and Cc headers say how each
one is shown, and envelope recipients named in neither become ``bcc``. Header-only addresses
that were not in the envelope are not mailed (an SMTP client never asked for that).
"""

import base64
import json
import mimetypes
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address as HeaderAddress
from email.message import Message
from email.parser import BytesParser

from config.api.errors import ValidationError
from emails.relay.headers import Header, addresses, first, top_headers
from emails.validation import RESERVED_HEADERS

CONTROL_PREFIX = "x-mailroom-"
# X-Mailroom-* headers and the send request field each one sets. Anything else under the
# prefix is refused, so a typo (X-Mailroom-Tag) is an error, not silently ignored.
CONTROL_HEADERS = {
    "x-mailroom-tags": "tags",
    "x-mailroom-track-opens": "track_opens",
    "x-mailroom-track-clicks": "track_clicks",
    "x-mailroom-unsubscribe": "unsubscribe",
    "x-mailroom-metadata": "metadata",
    "x-mailroom-scheduled-at": "scheduled_at",
    "x-mailroom-idempotency-key": "idempotency_key",
}
_BOOLEAN_HEADERS = {"track_opens", "track_clicks", "unsubscribe"}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
# Standard headers that are not the platform's to write and that senders rely on (threading,
# auto-reply suppression); they pass through like X- headers.
PASSTHROUGH_HEADERS = {
    "in-reply-to", "references", "auto-submitted", "precedence", "importance", "priority",
    "sensitivity", "keywords", "comments", "list-id",
}
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # the API's rule (emails/validation.py)
_FILENAME_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
# One parse of the message, with compat32: it walks the MIME tree cheaply. policy.default
# decodes header values (RFC 2047 words, RFC 6532 UTF-8, address lists) but is slow: on the
# whole tree it re-parses Content-Type on every access, and even a headers-only parse with it
# pays for Content-Type. So only the top-level headers the send request reads are decoded,
# each once, the way policy.default decodes them (emails/relay/headers.py).
_PARSER = BytesParser(policy=policy.compat32)


@dataclass
class ParsedMessage:
    data: dict
    idempotency_key: str | None
    dropped_headers: list[str]


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError("The email is invalid.", details={field: [message]})


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n", "", value).strip()


def _display(address: HeaderAddress) -> str:
    # headerregistry's str() quotes a display name when needed and keeps it Unicode, the form
    # the API's address parser reads back ("Ann Lee <ann@example.com>"). The API validates
    # the address itself.
    return str(address)


def _recipients(headers: list[Header], rcpt_tos: list[str]) -> tuple[list[str], list[str], list[str]]:
    envelope = {address.lower(): address for address in rcpt_tos}
    placed: set[str] = set()

    def shown(name: str) -> list[str]:
        result = []
        for address in addresses(headers, name):
            key = address.addr_spec.lower()
            if key in envelope and key not in placed:
                placed.add(key)
                result.append(_display(address))
        return result

    to, cc = shown("to"), shown("cc")
    names = {a.addr_spec.lower(): a for a in addresses(headers, "bcc")}
    bcc = []
    for key, address in envelope.items():
        if key not in placed:
            placed.add(key)
            bcc.append(_display(names[key]) if key in names else address)
    if not to:
        raise _invalid("to", "The To header must name at least one of the envelope recipients (RCPT TO); "
                             "a message sent to Bcc recipients only is not supported.")
    return to, cc, bcc


def _sender(headers: list[Header], mail_from: str) -> str:
    senders = addresses(headers, "from")
    if len(senders) > 1:
        raise _invalid("from", "The From header must hold exactly one address.")
    return _display(senders[0]) if senders else mail_from


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    try:
        content = payload.decode(part.get_content_charset() or "us-ascii", "replace")
    except LookupError:  # an unknown charset: keep what decodes
        content = payload.decode("utf-8", "replace")
    return content.replace("\r\n", "\n")


def _leaves(part: Message, found: list) -> list[tuple[Message, str]]:
    """Every non-multipart part with its content type, depth first; an attached message
    (message/rfc822) is one leaf."""
    content_type = part.get_content_type()
    if content_type.startswith("multipart/"):
        for sub in part.get_payload():
            _leaves(sub, found)
    else:
        found.append((part, content_type))
    return found


def _filename(part: Message) -> str:
    name = part.get_filename() or ""  # RFC 2231 parameters are decoded here
    if "=?" in name:  # RFC 2047 words in a parameter: not standard, but common
        try:
            name = str(make_header(decode_header(name)))
        except (LookupError, UnicodeError, ValueError):
            pass
    return _FILENAME_UNSAFE.sub("_", name.strip())[-255:].lstrip("._ ")


def _attachment(part: Message, content_type: str, index: int) -> dict:
    if content_type.startswith("message/") and part.is_multipart():
        content = part.get_payload(0).as_bytes()
    else:
        content = part.get_payload(decode=True) or b""
    filename = _filename(part) or f"attachment-{index}{mimetypes.guess_extension(content_type) or '.bin'}"
    return {"filename": filename, "content": base64.b64encode(content).decode("ascii"),
            "content_type": content_type}


def _bodies(tree: Message) -> tuple[str | None, str | None, list[dict]]:
    """The first text/plain and text/html parts not marked as attachments are the bodies (as
    ``EmailMessage.get_body`` chooses them); every other leaf is an attachment."""
    text_part = html_part = None
    attachments = []
    for part, content_type in _leaves(tree, []):
        if content_type in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            if content_type == "text/plain" and text_part is None:
                text_part = part
                continue
            if content_type == "text/html" and html_part is None:
                html_part = part
                continue
        attachments.append(_attachment(part, content_type, len(attachments) + 1))
    text = _text_of(text_part) if text_part is not None else None
    html = _text_of(html_part) if html_part is not None else None
    return text, html, attachments


def _control_value(field: str, header: str, value: str):
    if field in _BOOLEAN_HEADERS:
        lowered = value.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise _invalid(header, "Must be true or false.")
    if field == "tags":
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    if field == "metadata":
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _invalid(header, "Must be a JSON object, e.g. {\"order\": \"1234\"}.") from exc
    return value


def _headers(headers: list[Header]) -> tuple[dict, dict, list[str]]:
    """(custom headers to send, send request fields from X-Mailroom-*, names of dropped headers)."""
    custom: dict[str, str] = {}
    control: dict = {}
    dropped: list[str] = []
    seen: set[str] = set()
    for header in headers:  # a value is parsed only when it is used
        name, lowered = header.name, header.key
        if not (lowered.startswith("x-") or lowered in PASSTHROUGH_HEADERS):
            continue  # From, To, Date, Message-ID, MIME structure...: the platform writes those
        if lowered in seen:
            dropped.append(name)  # a repeated header: the first one counts, as for the API's dict
            continue
        seen.add(lowered)
        value = _unfold(header.text)
        if lowered.startswith(CONTROL_PREFIX):
            field = CONTROL_HEADERS.get(lowered)
            if field is None:
                raise _invalid(name, f"Unknown Mailroom header; known: "
                                     f"{', '.join(sorted(h.title() for h in CONTROL_HEADERS))}.")
            control[field] = _control_value(field, name, value)
            continue
        # Whatever the API would refuse is dropped rather than failing the whole message:
        # an SMTP client cannot fix headers its mail library adds on its own.
        if not _HEADER_NAME_RE.match(name) or lowered in RESERVED_HEADERS or len(value) > 998:
            dropped.append(name)
            continue
        custom[name] = value
    return custom, control, dropped


def message_to_send_request(raw: bytes, *, mail_from: str, rcpt_tos: list[str]) -> ParsedMessage:
    """Translate one received message; raises ValidationError (550 5.6.0) when it cannot be sent."""
    try:
        tree = _PARSER.parsebytes(raw)
        headers = top_headers(tree)
        sender = _sender(headers, mail_from)
        to, cc, bcc = _recipients(headers, rcpt_tos)
        reply_to = [_display(a) for a in addresses(headers, "reply-to")]
        subject_header = first(headers, "subject")
        subject = _unfold(subject_header.text) if subject_header is not None else None
        text, html, attachments = _bodies(tree)
        custom, control, dropped = _headers(headers)
    except ValidationError:
        raise
    except Exception as exc:  # the email package raises assorted errors on broken MIME
        raise _invalid("message", f"The message could not be parsed as MIME: {type(exc).__name__}.") from exc
    idempotency_key = control.pop("idempotency_key", None)
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
        raise _invalid("X-Mailroom-Idempotency-Key", "1 to 255 characters.")
    data = {"from": sender, "to": to, "cc": cc, "bcc": bcc, "reply_to": reply_to, "subject": subject,
            "text": text, "html": html, "headers": custom, "attachments": attachments, **control}
    return ParsedMessage(data={k: v for k, v in data.items() if v not in (None, [], {})},
                         idempotency_key=idempotency_key, dropped_headers=dropped)
