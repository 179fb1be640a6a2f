"""MIME building for an accepted email, with the standard library ``email`` package."""

import email.policy
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from emails.tokens import unsubscribe_token

_SMTP_POLICY = email.policy.SMTP  # CRLF line endings, as sent on the wire and as DKIM signs them


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
    msg = MimeMessage(policy=_SMTP_POLICY)
    msg["From"] = email.from_header
    msg["To"] = ", ".join(email.to)
    if email.cc:
        msg["Cc"] = ", ".join(email.cc)
    if email.reply_to:
        msg["Reply-To"] = ", ".join(email.reply_to)
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(usegmt=True)
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
    if html is not None:
        if text is None:
            message.body = html
            message.content_subtype = "html"
        else:
            message.attach_alternative(html, "text/html")
    for attachment in attachments:
        message.attach(attachment.filename, bytes(attachment.content), attachment.content_type)
    return message
