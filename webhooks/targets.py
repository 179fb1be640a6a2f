"""Which webhook URLs Mailroom may call (SSRF guard).

A URL must be ``http`` or ``https`` with a host. Every address the host resolves to must be
public: loopback, private (RFC 1918), shared (100.64/10), link-local (169.254.169.254 cloud
metadata), unique-local (fc00::/7), multicast, reserved and unspecified addresses are refused,
whatever the spelling, because the check runs on the addresses the resolver returns
(``2130706433``, ``0177.0.0.1`` and ``[::ffff:127.0.0.1]`` all come back as 127.0.0.1 or a mapped
form, which is unwrapped). The check runs when an endpoint is saved and again on every new
connection (webhooks/transport.py connects to the very address it checked, so a DNS answer
that changes between check and connect cannot slip through).

``MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS`` turns the address check off (development, tests).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The URL or one of its addresses may not be called. ``str()`` says why, for the tenant."""


def private_targets_allowed() -> bool:
    return bool(getattr(settings, "MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS", False))


def _unwrap(ip: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address an IPv6 address stands for, when it embeds one a router would reach."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_refusal(address: str) -> str | None:
    """Why this IP address may not be called, or None when it is a public unicast address."""
    ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    for attribute, label in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, attribute):
            return f"{address} is a {label} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a webhook URL, or TargetRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"The URL is not valid: {exc}.") from None
    if parts.scheme not in ALLOWED_SCHEMES:
        raise TargetRefused("The URL must start with http:// or https://.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if any(ch.isspace() for ch in url):
        raise TargetRefused("The URL may not contain whitespace.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host``, in resolver order; raises TargetRefused if any is refused.

    One refused address refuses the host: otherwise a name with a public and a private record
    would reach the private one on some connections.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"The host {host} does not resolve ({exc}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not private_targets_allowed():
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise TargetRefused(f"The host {host} resolves to a refused address: {reason}.")
    return addresses


def url_check(url: str) -> None:
    """Raises TargetRefused unless the URL may be called now (scheme, host, addresses)."""
    _, host, port = split_url(url)
    resolve(host, port)
