"""The one choke point to the configured Django email backend, with error classification.

A failure says whether retrying can help (``permanent``): SMTP 5xx and ESP rejections are
permanent; 4xx, timeouts, refused connections and ESP 429/5xx are transient.
"""

import smtplib
import time
from dataclasses import dataclass

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from emails.mime import BuiltMessage


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    permanent: bool = False
    response: str = ""
    provider_message_id: str = ""
    duration_ms: int = 0


class Transport:
    """One backend connection reused for a batch of messages (``with Transport() as t``)."""

    def __init__(self):
        self.connection = get_connection(fail_silently=False)
        self._open = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.connection.close()
        except Exception:  # closing a broken connection must not mask the batch's outcome
            pass

    def send(self, message: BuiltMessage) -> SendOutcome:
        started = time.monotonic()
        try:
            if not self._open:
                # Opened here, not in __enter__, so an unreachable server is one message's
                # transient failure rather than an exception that strands the whole batch.
                self.connection.open()
                self._open = True
            sent = self._deliver(message)
        except AnymailRecipientsRefused as exc:
            return self._failed(started, permanent=True, response=str(exc))
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            transient = status is None or status == 429 or status >= 500
            return self._failed(started, permanent=not transient, response=str(exc))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {msg.decode(errors='replace')}"
                               for rcpt, (code, msg) in exc.recipients.items())
            return self._failed(started, permanent=all(code >= 500 for code in codes), response=detail)
        except smtplib.SMTPResponseException as exc:
            message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(
                exc.smtp_error)
            return self._failed(started, permanent=500 <= exc.smtp_code < 600,
                                response=f"{exc.smtp_code} {message}")
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            return self._failed(started, permanent=False, response=f"{type(exc).__name__}: {exc}")
        if not sent:
            return self._failed(started, permanent=False, response="The backend accepted no message.")
        status = message.anymail_status
        provider_id = getattr(status, "message_id", None) or ""
        return SendOutcome(ok=True, response="accepted", provider_message_id=str(provider_id),
                           duration_ms=int((time.monotonic() - started) * 1000))

    def _deliver(self, message: BuiltMessage) -> int:
        """Hand one message to the backend; returns how many it accepted (0 or 1).

        Over Django's SMTP backend the pre-built bytes go straight to its open smtplib session:
        ``send_messages`` would re-parse every envelope address with the ``email`` package's
        header parser (``sanitize_address``), a seventh of a dispatch worker's CPU, for
        addresses validated and normalised when the email was accepted. Only plain ASCII
        envelopes take this path; anything else (an IDN domain to encode, any other backend)
        goes through ``send_messages`` as usual.
        """
        smtp = getattr(self.connection, "connection", None)
        envelope, sender = message.envelope_recipients, message.envelope_from
        if (isinstance(self.connection, SmtpBackend) and smtp is not None and envelope and sender
                and sender.isascii() and all(address.isascii() for address in envelope)):
            smtp.sendmail(sender, envelope, message.raw)
            return 1
        return self.connection.send_messages([message.django()])  # made only for this path

    def _failed(self, started: float, *, permanent: bool, response: str) -> SendOutcome:
        # The session may be unusable after an error: start the next message on a new one.
        self._open = False
        try:
            self.connection.close()
        except Exception:  # already broken
            pass
        return SendOutcome(ok=False, permanent=permanent, response=response[:2000],
                           duration_ms=int((time.monotonic() - started) * 1000))
