"""Domain names: IDNA normalisation and the public suffix rule.

Names are stored as lowercase IDNA A-labels (``xn--bcher-kva.example``), the form DNS and
DKIM's ``d=`` use; the Unicode form is only for display. The Public Suffix List comes from
the pinned ``publicsuffixlist`` package's bundled snapshot: nothing is fetched at run time.
"""

import functools
import ipaddress

import idna
from publicsuffixlist import PublicSuffixList


class InvalidDomain(ValueError):
    pass


@functools.lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def to_ascii(value: str) -> str:
    """The lowercase A-label form of ``value``; raises :class:`InvalidDomain`."""
    if not isinstance(value, str):
        raise InvalidDomain("A domain name is a string.")
    name = value.strip().rstrip(".")
    if not name:
        raise InvalidDomain("A domain name is required.")
    if any(ch.isspace() for ch in name) or any(ch in name for ch in "@/:\\?#*"):
        raise InvalidDomain("Give a bare domain name such as example.com (no scheme, path, port or address).")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidDomain("An IP address is not a domain name.")
    try:
        # UTS #46 mapping lowercases and folds compatibility characters the way browsers do;
        # non-transitional so "ß" stays "ß" (IDNA 2008), as registries now expect.
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise InvalidDomain(f"Not a valid domain name: {exc}.") from exc
    if len(ascii_name) > 253:
        raise InvalidDomain("A domain name is at most 253 characters.")
    return ascii_name.lower()


def to_unicode(ascii_name: str) -> str:
    try:
        return idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError):
        return ascii_name


def normalize_sending_domain(value: str) -> str:
    """A domain a tenant may add: valid, multi-label, and not a public suffix.

    ``com``, ``co.uk`` or ``github.io`` are refused: nobody owns them, and one tenant
    verifying a suffix would speak for every domain under it.
    """
    name = to_ascii(value)
    # A single label is a public suffix too: the list's "*" rule covers unknown TLDs.
    if "." not in name or _psl().is_public(name):
        raise InvalidDomain(f"{to_unicode(name)} is a public suffix; add a domain registered under it, "
                            f"such as example.{to_unicode(name)}.")
    return name


def organizational_domain(ascii_name: str) -> str:
    """The registered domain (RFC 7489 3.2): where DMARC policy is looked up as a fallback."""
    return _psl().privatesuffix(ascii_name) or ascii_name


def lookup_form(value: str) -> str | None:
    """``value`` normalised for a lookup, or None when it cannot be a domain at all."""
    try:
        return to_ascii(value)
    except InvalidDomain:
        return None


def validate_label(value: str, *, field: str) -> str:
    """One DNS label (a subdomain such as ``bounces``), normalised to lowercase."""
    label = to_ascii(value)
    if "." in label:
        raise InvalidDomain(f"{field} is a single label such as 'bounces', without dots.")
    if label.startswith("_"):
        raise InvalidDomain(f"{field} may not start with an underscore.")
    return label
