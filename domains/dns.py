"""The DNS adapter: the one place the domains app talks to name servers (dnspython).

Every lookup answers with a :class:`Lookup` (records found, or a definite "no such name" /
"no such record") or raises :class:`DnsTemporaryError` (timeout, SERVFAIL, no server
answering): a retry may help with the latter, never with the former. That distinction is
what separates a ``failed`` domain from a ``temporary_failure``.
"""

import ipaddress
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NXDOMAIN = "nxdomain"
NODATA = "nodata"
FOUND = "found"


class DnsTemporaryError(Exception):
    """The question got no definite answer; asking again later may."""


@dataclass(frozen=True)
class Lookup:
    name: str
    rdtype: str
    outcome: str  # FOUND, NXDOMAIN or NODATA
    values: tuple[str, ...] = field(default=())
    # The name the answer really came from when CNAMEs were followed.
    canonical_name: str = ""

    @property
    def exists(self) -> bool:
        return self.outcome == FOUND

    def describe_absence(self) -> str:
        if self.outcome == NXDOMAIN:
            return f"{self.name} does not exist (NXDOMAIN)."
        return f"{self.name} has no {self.rdtype} record."


def parse_nameserver(entry: str) -> tuple[str, int]:
    """``"10.0.0.1"``, ``"10.0.0.1:5353"``, ``"::1"``, ``"[::1]:5353"`` -> (address, port)."""
    entry = entry.strip()
    host, port = entry, 53
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ImproperlyConfigured(f"DNS_NAMESERVERS: cannot parse {entry!r}")
            port = _port(entry, rest[1:])
    elif entry.count(":") == 1:
        host, raw_port = entry.split(":")
        port = _port(entry, raw_port)
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        # dnspython needs addresses; resolving a name server's own name would need DNS first.
        raise ImproperlyConfigured(f"DNS_NAMESERVERS: {entry!r} is not an IP address") from exc
    return host, port


def _port(entry: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS: bad port in {entry!r}")
    return int(raw)


def _system_nameservers() -> list[tuple[str, int]]:
    try:
        system = dns.resolver.Resolver(configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        raise DnsTemporaryError("No DNS_NAMESERVERS set and the system has no resolver configured.") from exc
    return [parse_nameserver(str(ns)) for ns in system.nameservers]


def make_resolver() -> dns.resolver.Resolver:
    """A resolver built from settings alone (DESIGN section 7).

    ``configure=False`` so /etc/resolv.conf's search list, ``ndots`` and options never apply;
    with ``DNS_NAMESERVERS`` empty only the system's server addresses are borrowed. No cache:
    a tenant who just fixed a record must see the fix at once. ``DNS_TIMEOUT_SECONDS`` is the
    whole budget of one question, shared among tries so a dead server leaves time for another.
    """
    entries = [parse_nameserver(e) for e in settings.DNS_NAMESERVERS] or _system_nameservers()
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in entries]
    resolver.cache = None
    budget = float(settings.DNS_TIMEOUT_SECONDS)
    resolver.lifetime = budget
    resolver.timeout = budget / max(2, len(entries))
    resolver.retry_servfail = False
    return resolver


def lookup(name: str, rdtype: str, *, resolver: dns.resolver.Resolver | None = None) -> Lookup:
    """Ask for ``rdtype`` records at ``name`` (absolute, CNAMEs followed, no search list)."""
    resolver = resolver or make_resolver()
    qname = dns.name.from_text(name)
    try:
        answer = resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return Lookup(name=name, rdtype=rdtype, outcome=NXDOMAIN)
    except dns.exception.Timeout as exc:
        raise DnsTemporaryError(f"Timed out asking for the {rdtype} record of {name}.") from exc
    except dns.resolver.NoNameservers as exc:
        # Every server answered SERVFAIL/REFUSED or garbage: the zone is broken right now.
        raise DnsTemporaryError(f"No name server could answer for {name} ({rdtype}): SERVFAIL.") from exc
    except (dns.resolver.YXDOMAIN, dns.resolver.NoRootSOA, dns.exception.DNSException) as exc:
        raise DnsTemporaryError(f"DNS error asking for {name} ({rdtype}): {exc}") from exc
    if answer.rrset is None:
        return Lookup(name=name, rdtype=rdtype, outcome=NODATA)
    return Lookup(name=name, rdtype=rdtype, outcome=FOUND, values=tuple(_text(r) for r in answer.rrset),
                  canonical_name=answer.canonical_name.to_text(omit_final_dot=True).lower())


def _text(rdata) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        # A TXT record is several <=255-byte strings; its value is their concatenation
        # (RFC 7208 3.3, RFC 6376 3.6.2.2) — a 2048-bit DKIM key never fits in one.
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    if rdata.rdtype == dns.rdatatype.CNAME:
        return rdata.target.to_text(omit_final_dot=True).lower()
    return rdata.to_text()


def txt(name: str, *, resolver: dns.resolver.Resolver | None = None) -> Lookup:
    return lookup(name, "TXT", resolver=resolver)


def cname(name: str, *, resolver: dns.resolver.Resolver | None = None) -> Lookup:
    return lookup(name, "CNAME", resolver=resolver)
