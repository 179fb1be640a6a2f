"""Pieces of the relay that need no server: loopback detection, SMTP reply mapping, TLS files."""

import datetime

import pytest
from aiosmtpd.smtp import SMTP
from cryptography import x509

from config.api.errors import (
    ApplicationError,
    DomainNotVerified,
    IdempotencyConflict,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimitExceeded,
    RecipientSuppressed,
    ServiceUnavailable,
    ValidationError,
)
from emails.relay import replies, tls
from emails.relay.server import RelaySMTP, _is_loopback, _plain_path
from emails.relay.tls import self_signed_certificate


@pytest.mark.parametrize("peer, loopback", [
    (("127.0.0.1", 1), True), (("127.8.9.10", 1), True), (("::1", 1, 0, 0), True),
    (("::ffff:127.0.0.1", 1, 0, 0), True), (("10.0.0.1", 1), False), (("192.0.2.7", 1), False),
    (("2001:db8::1", 1, 0, 0), False), (None, False),
])
def test_only_loopback_peers_count_as_loopback(peer, loopback):
    assert _is_loopback(peer) is loopback


PLAIN_PATHS = ["<ann@example.com>", "<Ann.Lee+x@Mail.Example.COM> SIZE=2048", "<a@b>SIZE=1",
               "<a@b>  SIZE=10 BODY=8BITMIME", "<a@b>\tSMTPUTF8", "<a@b> \u00a0X", "<a@b>\x0bX", "<a@b>>"]
OTHER_PATHS = ["<>", "<a@b> (comment) SIZE=1", " <a@b>", "<a@b", "a@b", '<"a b"@example.com>',
               "<a@[127.0.0.1]>", "<@relay.example:a@b>", "<jö@example.com>", "<a..b@example.com>", "<a@b.>", ""]


@pytest.mark.parametrize("arg", PLAIN_PATHS + OTHER_PATHS)
def test_paths_are_read_as_aiosmtpd_reads_them(arg):
    # Protocol objects without a connection: _getaddr only reads local_part_limit.
    aiosmtpd, relay = SMTP.__new__(SMTP), RelaySMTP.__new__(RelaySMTP)
    aiosmtpd.local_part_limit = relay.local_part_limit = 0
    assert relay._getaddr(arg) == aiosmtpd._getaddr(arg)
    assert (_plain_path(arg) is not None) is (arg in PLAIN_PATHS)  # the cheap reading is used for these


@pytest.mark.parametrize("error, reply", [
    (ValidationError("The email is invalid.", details={"subject": ["A subject is required."]}),
     "550 5.6.0 The email is invalid: subject: A subject is required."),
    (PayloadTooLarge("Attachments total 11 bytes; the limit is 10 bytes decoded.",
                     details={"attachments": ["Attachments total 11 bytes; the limit is 10 bytes decoded."]}),
     "552 5.3.4 Attachments total 11 bytes; the limit is 10 bytes decoded."),
    (DomainNotVerified("The domain x.test is not verified.", details={"from": ["The domain x.test is not verified."]}),
     "550 5.7.1 The domain x.test is not verified."),
    (RecipientSuppressed("Every 'to' recipient is on the suppression list.",
                         details={"to": ["gone@example.com is suppressed."]}),
     "550 5.7.1 Every 'to' recipient is on the suppression list: to: gone@example.com is suppressed."),
    (QuotaExceeded(details={"quota": ["The Free plan's 1000 emails for this month are used up."]}),
     "452 4.3.1 The monthly email quota is used up: The Free plan's 1000 emails for this month are used up."),
    (RateLimitExceeded("Too many requests."), "421 4.7.0 Too many requests., closing connection"),
    (IdempotencyConflict(), "451 4.3.0 A request with this idempotency key is still being processed."),
    (ServiceUnavailable(), "451 4.3.0 Temporary failure, try again later"),
    (ApplicationError(), "451 4.3.0 Temporary failure, try again later"),
])
def test_application_errors_map_to_smtp_replies(error, reply):
    assert replies.reply_for_error(error) == reply


def test_replies_are_one_short_ascii_line():
    error = ValidationError("Ungültige\r\nNachricht " + "x" * 600)
    reply = replies.reply_for_error(error)
    assert reply.isascii() and "\n" not in reply and "\r" not in reply
    assert len(reply) <= 4 + 6 + replies.MAX_TEXT and reply.endswith("...")


def test_a_self_signed_certificate_is_made_once_and_renewed_near_expiry(tmp_path, monkeypatch):
    cert, key = self_signed_certificate(tmp_path, hostname="relay.example")
    first = cert.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    loaded = x509.load_pem_x509_certificate(first)
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["relay.example", "localhost"]
    assert self_signed_certificate(tmp_path, hostname="relay.example")[0].read_bytes() == first
    # Another host name, or a certificate about to expire, makes a new pair.
    assert self_signed_certificate(tmp_path, hostname="other.example")[0].read_bytes() != first
    second = cert.read_bytes()
    monkeypatch.setattr(tls, "RENEW_BEFORE", datetime.timedelta(days=400))
    assert self_signed_certificate(tmp_path, hostname="other.example")[0].read_bytes() != second
