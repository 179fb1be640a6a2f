"""The relay's cheap header reading agrees with policy.default, which it stands in for."""

from email import policy

import pytest

from emails.relay.headers import Header

ADDRESS_VALUES = [
    "ann@example.com",
    "  ann@example.com  ",
    "Ann <ann@example.com>",
    "Ann Lee <ann.lee@mail.example.com>",
    "Ann   Lee<ann@example.com>",
    " O'Brien  <ob@example.com> ",
    "a+tag=x@example.com",
    "Bench Shop <receipts@bench-plain.test>, customer1@example.org,Carol <c@x.y>",
    "UPPER@EXAMPLE.COM",
    "x{y}|z~ <odd!#$%&'*+-/=?^_`{|}~@example.com>",
    # Not plain: policy.default reads these.
    '"Lee, Ann" <ann@example.com>',
    "Mr. Lee <lee@example.com>",
    "ann@example.com (Ann)",
    "ann@example.com,",
    ",ann@example.com",
    "Team: ann@example.com, bob@example.com;",
    "undisclosed-recipients:;",
    "=?utf-8?q?J=C3=B6rg?= <joerg@example.com>",
    "Jörg <joerg@example.com>",
    "Ann\t<ann@example.com>",
    "ann..lee@example.com",
    "ann@example..com",
    "<ann@example.com>",
    "Ann <ann@[127.0.0.1]>",
    "ann",
    "",
]

TEXT_VALUES = [
    "Your receipt #100001",
    "  two  spaces  ",
    "tab\there",
    '(not a comment) "not quoted" \\ back',
    "a=b ?c",
    "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
    "prefix =?utf-8?b?R3LDvMOfZQ==?= suffix",
    "Grüße",
    "",
]


def _received(value: str) -> str:
    """The value as the relay's bytes parser holds it: UTF-8 bytes beyond ASCII as surrogates."""
    return value.encode("utf-8").decode("ascii", "surrogateescape")


def _expected_addresses(value: str) -> list[tuple[str, str, str]]:
    parsed = policy.default.header_fetch_parse("To", value)
    return [(a.display_name, a.username, a.domain) for a in parsed.addresses]


@pytest.mark.parametrize("value", ADDRESS_VALUES)
def test_addresses_are_what_policy_default_reads(value):
    header = Header("To", _received(value))
    assert [(a.display_name, a.username, a.domain) for a in header.addresses] == _expected_addresses(value)


@pytest.mark.parametrize("value", TEXT_VALUES)
def test_text_is_what_policy_default_reads(value):
    assert Header("Subject", _received(value)).text == str(policy.default.header_fetch_parse("Subject", value))


def test_folded_and_8bit_values_are_unfolded_and_decoded_as_utf8():
    raw = _received("Jörg <joerg@example.com>,\r\n Ann <ann@example.com>")
    assert [str(a) for a in Header("From", raw).addresses] == ["Jörg <joerg@example.com>", "Ann <ann@example.com>"]
    assert Header("Subject", _received("Grüße,\r\n\tfolded")).text == "Grüße,\tfolded"


def test_plain_values_skip_policy_default():
    # The point of the module: a typical message's headers are read without the slow parser.
    to = Header("To", "Bench Shop <receipts@bench-plain.test>, customer1@example.org")
    subject = Header("Subject", "Your receipt #100001")
    assert len(to.addresses) == 2 and subject.text == "Your receipt #100001"
    assert "_parsed" not in vars(to) and "_parsed" not in vars(subject)
