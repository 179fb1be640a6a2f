"""The MIME builder's shortcuts write exactly what the standard library's classes would."""

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, formatdate

import pytest

from emails import mime

NAMES = ["Ann", "Ann Lee", "J. R. R. Tolkien", "Doe, John", 'The "Best" Shop', "O'Brien (sales)", "a;b:c",
         "Caf\u00e9", "x" * 70]
ADDRESSES = ["ann@example.com", "o'brien+tag@sub.example.co.uk", "very.long.local.part.for.testing@example.com"]
ADDRESS_VALUES = ([formataddr((name, address)) for name in NAMES for address in ADDRESSES] + ADDRESSES
                  + [", ".join(formataddr((n, a)) for n, a in zip(NAMES[:3], ADDRESSES, strict=True))])
SUBJECTS = ["Hi", "Your receipt #42", "Re: [ticket 7] (urgent) a: b; c", "  padded ", "two  spaces", "tab\there",
            "=?utf-8?q?looks_encoded?=", "Caf\u00e9 ouvert", "50% off -- today!", "x" * 90, "", "quote \" and \\"]
WHEN = 1_795_000_000  # fixed: pytest-xdist needs the same test ids in every worker
OTHER = [("Date", formatdate(WHEN, usegmt=True)), ("Date", formatdate(WHEN)),
         ("Date", format_datetime(datetime.fromtimestamp(WHEN, UTC))), ("Date", "Sun, 22 Nov 2026 03:31:43 +0100"),
         ("Message-ID", "<msg_3Jf0aB9zQ2xY7wV5uT1sR0pO@acme.test>"), ("X-Mailroom-Id", "msg_3Jf0aB9zQ2xY7wV5uT1sR0pO")]
CASES = ([("To", v) for v in ADDRESS_VALUES] + [("Cc", v) for v in ADDRESS_VALUES]
         + [("Subject", v) for v in SUBJECTS] + OTHER)


def _bytes(policy, name: str, value: str) -> bytes:
    message = EmailMessage(policy=policy)
    message[name] = value
    message.set_content("body")
    return message.as_bytes()


@pytest.mark.parametrize(("name", "value"), CASES)
def test_a_header_is_written_byte_for_byte_as_the_stock_classes_write_it(name, value):
    assert _bytes(mime._SMTP_POLICY, name, value) == _bytes(email.policy.SMTP, name, value)


def test_the_shortcut_is_taken_for_the_common_cases():
    taken = [v for v in ADDRESS_VALUES if mime._needs_no_folding("To", v)]
    assert "Ann <ann@example.com>" in taken and '"Doe, John" <ann@example.com>' in taken
    assert not mime._needs_no_folding("Subject", "Caf\u00e9 ouvert")  # encoded-word: the stock path
    assert not mime._needs_no_folding("Subject", "x" * 90)  # folded: the stock path


def _multipart(policy, boundary: str | None) -> EmailMessage:
    message = EmailMessage(policy=policy)
    message["Subject"] = "Hi"
    message.set_content("text")
    message.add_alternative("<p>html</p>", subtype="html")
    message.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream", filename="a.bin")
    if boundary is not None:  # the same boundary on both sides, as the generator would set it
        for part in (message, *message.iter_parts()):
            if part.is_multipart():
                part.set_boundary(boundary)
    return message


@pytest.mark.parametrize("boundary", ["=" * 15 + "0" * 19 + "==", "=" * 15 + "9223372036854775807==",
                                      "=" * 15 + "0000000000000004242=="])
def test_a_multipart_with_a_made_boundary_is_written_as_the_stock_classes_write_it(boundary):
    ours = _multipart(mime._SMTP_POLICY, boundary)
    assert isinstance(ours["Content-Type"], mime._BoundaryHeader)
    assert ours.get_boundary() == boundary and ours.get_content_type() == "multipart/mixed"
    assert mime._Message.as_bytes(ours) == _multipart(email.policy.SMTP, boundary).as_bytes()


def test_a_generated_boundary_takes_the_shortcut_and_parses_back():
    message = mime._Message(policy=mime._SMTP_POLICY)
    message.set_content("text")
    message.add_alternative("<p>html</p>", subtype="html")
    raw = message.as_bytes()
    assert isinstance(message["Content-Type"], mime._BoundaryHeader)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_boundary() == message.get_boundary() and len(parsed.get_payload()) == 2
    assert [part.get_content().strip() for part in parsed.iter_parts()] == ["text", "<p>html</p>"]


def test_other_content_types_keep_the_stock_class():
    for value in ('multipart/mixed; boundary="custom"', "text/plain; charset=\"utf-8\""):
        assert not isinstance(mime._SMTP_POLICY.header_factory("Content-Type", value), mime._BoundaryHeader)
