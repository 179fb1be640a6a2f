"""A received message's top-level headers, decoded as ``policy.default`` decodes them, cheaply.

``policy.default`` turns a header into what the sender meant (RFC 2047 encoded words, RFC 6532
UTF-8, address lists with display names), but its parser costs ~150 us for a one-address
header and ~50 us for a one-line Subject: more than parsing the rest of a typical message.
Most values need none of that work: printable ASCII without encoded words, and addresses
written ``local@domain`` or ``Display Name <local@domain>``. Those are read with regular
expressions that accept only what ``policy.default`` reads the same way
(tests/relay/test_headers.py compares the two); any other value goes to ``policy.default``.
"""

import functools
import re
from email import policy
from email.headerregistry import Address
from email.message import Message

# RFC 5322 atext; an atom is a run of it. A phrase of atoms is a display name that needs no
# quoting; a dot-atom on each side of "@" is an address that needs none either.
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM = rf"{ATOM}(?:\.{ATOM})*"
_PLAIN_MAILBOX = re.compile(
    rf" *(?:(?P<name>{ATOM}(?: +{ATOM})*) *<(?P<local>{DOT_ATOM})@(?P<domain>{DOT_ATOM})>"
    rf"|(?P<bare_local>{DOT_ATOM})@(?P<bare_domain>{DOT_ATOM})) *"
)
_PLAIN_TEXT = re.compile(r"[\t -~]*")  # printable ASCII: nothing to decode
_ENCODED_WORD_START = "=?"  # RFC 2047
_LINE_BREAK = re.compile(r"[\r\n]")  # unfolding, as policy.default does it: drop the breaks


class Header:
    """One header as received (``raw``: 8-bit bytes kept as surrogates by the bytes parser)."""

    def __init__(self, name: str, raw: str):
        self.name = name
        self.key = name.lower()
        self.raw = raw

    @functools.cached_property
    def _unfolded(self) -> str:
        return _LINE_BREAK.sub("", self.raw)

    @functools.cached_property
    def _parsed(self):
        """The header object an ``EmailMessage`` (policy.default) returns for this header."""
        # Raw 8-bit header bytes are UTF-8 (RFC 6532, which SMTPUTF8 clients use).
        text = self.raw.encode("ascii", "surrogateescape").decode("utf-8", "replace")
        return policy.default.header_fetch_parse(self.name, text)

    @functools.cached_property
    def text(self) -> str:
        """The decoded value of an unstructured header (Subject, X-*): ``str()`` of the parsed one."""
        value = self._unfolded
        if _ENCODED_WORD_START not in value and _PLAIN_TEXT.fullmatch(value):
            return value
        return str(self._parsed)

    @functools.cached_property
    def addresses(self) -> tuple[Address, ...]:
        """The addresses of an address header (From, To...), as ``policy.default`` reads them."""
        value = self._unfolded
        if _ENCODED_WORD_START not in value:
            # Splitting on commas is safe here: a plain mailbox holds no comma, quote or comment,
            # and one item that is not plain sends the whole value to policy.default.
            mailboxes = [_PLAIN_MAILBOX.fullmatch(item) for item in value.split(",")]
            if all(mailboxes):
                return tuple(_address(match) for match in mailboxes)
        return tuple(getattr(self._parsed, "addresses", ()))


def _address(match: re.Match) -> Address:
    if match["name"] is None:
        return Address(username=match["bare_local"], domain=match["bare_domain"])
    # policy.default joins a phrase's words with single spaces.
    return Address(display_name=" ".join(match["name"].split()), username=match["local"], domain=match["domain"])


def top_headers(tree: Message) -> list[Header]:
    """The message's own headers, in order (not its MIME parts')."""
    return [Header(name, raw) for name, raw in tree.raw_items()]


def first(headers: list[Header], key: str) -> Header | None:
    return next((header for header in headers if header.key == key), None)


def addresses(headers: list[Header], key: str) -> list[Address]:
    """Every address in every header named ``key`` (lowercase)."""
    return [address for header in headers if header.key == key for address in header.addresses]
