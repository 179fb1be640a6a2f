"""MIME building for an accepted email, with the standard library ``email`` package."""

import email.policy
import random
import re
import sys
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, parseaddr
from io import BytesIO

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from emails.tokens import unsubscribe_token


class _FoldOnce:
    """Mixed into every header class: a header folds the same way each time under the same
    settings, so a header object shared between messages (see ``_HeaderClasses``) is folded
    once. Folding reads only these three policy settings; the key is them, not the policy
    object, because the generator clones the policy for every part."""

    def fold(self, *, policy):
        key = (policy.linesep, policy.max_line_length, policy.utf8)
        folded = self.__dict__.get("_folded")
        if folded is None or folded[0] != key:
            folded = self._folded = (key, super().fold(policy=policy))
        return folded[1]


# Headers whose values repeat from message to message: parsed once per distinct value.
_SHARED_HEADERS = frozenset({"from", "reply-to", "mime-version", "content-type", "content-transfer-encoding",
                             "list-unsubscribe-post"})
_SHARED_MAX = 4096


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, made cheaper for building many similar messages.

    py-spy on two dispatch workers (bench/dispatch.py) put most of their CPU in the ``email``
    package's header handling. Three costs are avoided, with the same bytes out:

    - the stock ``__getitem__`` builds a new class with ``type()`` for every header of every
      message (each a reference cycle left to the cyclic collector); the class depends only on
      the registry entry, so it is made once per entry (a bounded set);
    - header objects are immutable values (the ``email`` package replaces them, never changes
      them), so the headers that repeat across messages (``_SHARED_HEADERS``: MIME-Version,
      the parts' Content-Type and Content-Transfer-Encoding, From, ...) are parsed once per
      distinct value and shared;
    - a shared header is folded once (``_FoldOnce``).
    """

    def __init__(self):
        super().__init__()
        self._made: dict[type, type] = {}
        self._shared: dict[tuple[str, str], object] = {}

    def __getitem__(self, name):
        cls = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(cls)
        if made is None:
            made = self._made[cls] = type("_" + cls.__name__, (_FoldOnce, cls, self.base_class), {})
        return made

    def __call__(self, name, value):
        if isinstance(value, str) and name.lower() in _VERBATIM_HEADERS and _needs_no_folding(name, value):
            return _VerbatimHeader(name, value)
        if isinstance(value, str) and name.lower() == "content-type":
            boundary = _MULTIPART_WITH_OUR_BOUNDARY.match(value)
            if boundary is not None:
                return _BoundaryHeader(name, value, self._multipart_template(name, boundary.group(1)),
                                       boundary.group(2))
        if not isinstance(value, str) or name.lower() not in _SHARED_HEADERS:
            return self[name](name, value)
        return self._shared_header(name, value)

    def _shared_header(self, name: str, value: str) -> object:
        """The stock header for this value, parsed once and shared (folded once, ``_FoldOnce``)."""
        header = self._shared.get((name, value))
        if header is None:
            if len(self._shared) >= _SHARED_MAX:
                self._shared.clear()
            header = self._shared[name, value] = self[name](name, value)
        return header

    def _multipart_template(self, name: str, subtype: str) -> object:
        """The stock header for this multipart subtype with a stand-in boundary."""
        return self._shared_header(name, f'multipart/{subtype}; boundary="{_STAND_IN_BOUNDARY}"')


# Per-message headers that are written as given when short and plain (``_VerbatimHeader``).
_VERBATIM_HEADERS = frozenset({"to", "cc", "subject", "date", "message-id", "x-mailroom-id"})
_MAX_LINE = 78  # RFC 5322's recommended limit, the policy's max_line_length


def _needs_no_folding(name: str, value: str) -> bool:
    """True when the stock header classes would write ``value`` unchanged: printable ASCII on
    one line, no encoded-word lookalike to decode and re-encode, no whitespace to normalise.
    Address values here come from ``formataddr`` (validation), so they are already quoted
    as the standard requires. tests/emails/test_mime.py checks the equivalence."""
    if name.lower() == "date" and not value.endswith(" +0000"):
        return False  # the stock class rewrites other zone spellings ("GMT", "-0000") as +0000
    return (bool(value) and len(name) + 2 + len(value) <= _MAX_LINE and value.isascii() and value.isprintable()
            and "=?" not in value and "  " not in value and value == value.strip())


class _VerbatimHeader(str):
    """A header the stock classes would parse into a tree only to write it back unchanged:
    the parse and the refold were a fifth of a dispatch worker's CPU (To, Subject, Date and
    Message-ID differ per message, so ``_SHARED_HEADERS`` cannot reuse them)."""

    def __new__(cls, name: str, value: str):
        header = super().__new__(cls, value)
        header.name = name
        header.defects = ()
        return header

    def fold(self, *, policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


# What ``Message.set_boundary`` stores for a boundary made by ``_Generator._make_boundary``.
_MULTIPART_WITH_OUR_BOUNDARY = re.compile(r'multipart/([a-z]+); boundary="(={15}[0-9]{19}==)"\Z')
_STAND_IN_BOUNDARY = "=" * 15 + "0" * 19 + "=="


class _BoundaryHeader(_VerbatimHeader):
    """A multipart Content-Type carrying a boundary the generator just made.

    The generator sets the boundary while it writes the message (``set_boundary``), and the
    stock class parses the new value (its parameter parser was a tenth of a dispatch worker's
    CPU). Every boundary of ``_make_boundary`` has the same length and characters, so the stock
    header folds them all alike: the stock header for a stand-in boundary is folded once and the
    real boundary put in its place. tests/emails/test_mime.py checks the bytes."""

    def __new__(cls, name: str, value: str, template, boundary: str):
        header = super().__new__(cls, name, value)
        header.template = template
        header.boundary = boundary
        return header

    def fold(self, *, policy) -> str:
        return self.template.fold(policy=policy).replace(_STAND_IN_BOUNDARY, self.boundary)


# CRLF line endings, as sent on the wire and as DKIM signs them.
_SMTP_POLICY = email.policy.SMTP.clone(header_factory=_HeaderClasses())


class _Generator(BytesGenerator):
    """The standard generator, with a cheaper multipart boundary check.

    The stock ``_make_boundary`` compiles a new regular expression for every boundary (a random
    pattern, so ``re``'s cache never helps): about a tenth of the time of serializing a message.
    Refusing any boundary whose ``--boundary`` occurs anywhere in the parts is a plain substring
    test, and stricter than the stock line match.
    """

    @classmethod
    def _make_boundary(cls, text=None):
        while True:
            boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
            needle = "--" + boundary
            if text is None or (needle.encode("ascii") if isinstance(text, bytes) else needle) not in text:
                return boundary


class _Message(MimeMessage):
    def as_bytes(self, unixfrom=False, policy=None) -> bytes:
        out = BytesIO()
        _Generator(out, mangle_from_=False, policy=self.policy if policy is None else policy).flatten(
            self, unixfrom=unixfrom)
        return out.getvalue()


class RawMime:
    """What ``EmailMessage.message()`` returns to Django backends: the exact bytes we signed."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def as_bytes(self, *args, linesep: str = "\r\n", **kwargs) -> bytes:
        return self.raw if linesep == "\r\n" else self.raw.replace(b"\r\n", linesep.encode())

    def as_string(self, *args, **kwargs) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def get_charset(self):
        return None


class OutgoingMessage(EmailMultiAlternatives):
    """A Django email message carrying pre-built, DKIM-signed MIME.

    SMTP, file and outbox backends send ``message()``, i.e. exactly the signed bytes. ESP
    backends (django-anymail) build their API payload from the ordinary attributes, which are
    filled in too; the ESP then signs with the domain's key on its side.
    """

    def __init__(self, *, raw: bytes, email_public_id: str, **kwargs):
        super().__init__(**kwargs)
        self.raw = raw
        self.email_public_id = email_public_id

    def message(self, *args, **kwargs):
        return RawMime(self.raw)

    def recipients(self) -> list[str]:
        return list(self.envelope_recipients)


class BuiltMessage:
    """A built, signed message as the transport needs it: the raw bytes and the envelope for an
    SMTP session, and the Django message an ESP backend sends (``django()``), built only when
    asked. Over SMTP the bytes are all that is sent, and building a Django message per email
    (parsing every address to filter the headers by the envelope) was 4% of a worker's CPU."""

    def __init__(self, *, raw: bytes, email_public_id: str, envelope_from: str, envelope_recipients: list[str],
                 make_django):
        self.raw = raw
        self.email_public_id = email_public_id
        self.envelope_from = envelope_from
        self.envelope_recipients = envelope_recipients
        self._make_django = make_django
        self._django: OutgoingMessage | None = None

    def django(self) -> OutgoingMessage:
        if self._django is None:
            self._django = self._make_django()
        return self._django

    @property
    def anymail_status(self):
        """What an anymail backend reported for the Django message, once one was sent."""
        return getattr(self._django, "anymail_status", None)

    def recipients(self) -> list[str]:
        return list(self.envelope_recipients)

    def message(self) -> RawMime:
        return RawMime(self.raw)


def unsubscribe_headers(*, email_public_id: str, recipient: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers."""
    token = unsubscribe_token(email_public_id=email_public_id, recipient=recipient)
    url = f"{settings.MAILROOM_PUBLIC_URL}/u/{token}"
    mailto = f"mailto:unsubscribe+{email_public_id}@{settings.MAILROOM_RETURN_PATH_HOST}"
    return {"List-Unsubscribe": f"<{url}>, <{mailto}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def sending_bodies(*, email, envelope_to: list[str]) -> tuple[str | None, str | None]:
    """(html, text) as sent: with the unsubscribe footer, made at build time for the same
    recipient as List-Unsubscribe, so the stored bodies never carry it (resend adds it once)."""
    if not (email.unsubscribe and envelope_to):
        return email.html, email.text
    from emails.tracking.bodies import unsubscribe_bodies, unsubscribe_url

    url = unsubscribe_url(email_public_id=email.public_id, recipient=envelope_to[0])
    return unsubscribe_bodies(html=email.html, text=email.text, url=url)


def build_mime(*, email, envelope_to: list[str], attachments) -> MimeMessage:
    msg = _Message(policy=_SMTP_POLICY)
    msg["From"] = email.from_header
    msg["To"] = ", ".join(email.to)
    if email.cc:
        msg["Cc"] = ", ".join(email.cc)
    if email.reply_to:
        msg["Reply-To"] = ", ".join(email.reply_to)
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.message_id
    msg["X-Mailroom-Id"] = email.public_id
    if email.unsubscribe and envelope_to:
        for name, value in unsubscribe_headers(email_public_id=email.public_id, recipient=envelope_to[0]).items():
            msg[name] = value
    for name, value in (email.headers or {}).items():
        msg[name] = value
    html, text = sending_bodies(email=email, envelope_to=envelope_to)
    if text is not None and html is not None:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    elif html is not None:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(text or "")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(bytes(attachment.content), maintype=maintype, subtype=subtype or "octet-stream",
                           filename=attachment.filename)
    return msg


def _addr(header_value: str) -> str:
    return parseaddr(header_value)[1].lower()


def outgoing_message(*, email, envelope_to: list[str], attachments, raw: bytes) -> OutgoingMessage:
    """The Django message for the configured backend, ordinary attributes filled for ESPs."""
    envelope = {a.lower() for a in envelope_to}
    html, text = sending_bodies(email=email, envelope_to=envelope_to)
    message = OutgoingMessage(
        raw=raw, email_public_id=email.public_id, subject=email.subject,
        body=text if text is not None else "", from_email=email.from_header,
        to=[a for a in email.to if _addr(a) in envelope], cc=[a for a in email.cc if _addr(a) in envelope],
        bcc=[a for a in email.bcc if _addr(a) in envelope], reply_to=email.reply_to,
        headers={**(email.headers or {}), "Message-ID": email.message_id, "X-Mailroom-Id": email.public_id},
    )
    # Envelope recipients: bcc included, suppressed addresses left out.
    message.envelope_recipients = envelope_to
    message.envelope_from = email.from_address
    if html is not None:
        if text is None:
            message.body = html
            message.content_subtype = "html"
        else:
            message.attach_alternative(html, "text/html")
    for attachment in attachments:
        message.attach(attachment.filename, bytes(attachment.content), attachment.content_type)
    return message
