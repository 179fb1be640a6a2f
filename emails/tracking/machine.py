"""Telling machine opens and clicks from human ones.

Mailbox providers and security gateways fetch images and follow links on the recipient's
behalf: at delivery (prefetch) or through a caching proxy. Those hits are still recorded, with
``machine: true``, and never count as the recipient's unique open or click. The lists below are
the signals the industry documents; docs/tracking.md explains each one.
"""

import ipaddress
import re
from datetime import datetime, timedelta
from functools import lru_cache

# Hits this soon after we handed the message over are prefetches and link scanners: no
# person has opened the message yet.
MACHINE_WINDOW = timedelta(seconds=5)

# Case-insensitive substrings of the User-Agent.
MACHINE_USER_AGENT_MARKERS = (
    "googleimageproxy",  # Gmail's image proxy ("... (via ggpht.com GoogleImageProxy)")
    "yahoomailproxy",  # Yahoo and AOL Mail image proxy
    "bingpreview",  # Outlook.com / Microsoft link previews
    "microsoft office existence discovery",  # Office checking a link before opening it
    "ms-office",
    "barracuda", "mimecast", "proofpoint", "symantec", "forcepoint", "trendmicro",  # security gateways
    "crawler", "spider", "facebookexternalhit", "whatsapp", "skypeuripreview",  # link unfurlers
    "python-requests", "python-urllib", "aiohttp", "curl/", "wget/", "go-http-client", "okhttp",
    "java/", "libwww-perl", "headlesschrome", "phantomjs",
)

# "Googlebot/2.1", "Slackbot-LinkExpanding", "TelegramBot (like TwitterBot)"; not "CUBOT X30" phones.
_BOT = re.compile(r"bot(?:[/;)\-]|$)")

# Whole User-Agent strings used by prefetchers that otherwise look like browsers.
MACHINE_USER_AGENTS = {
    # Apple Mail Privacy Protection's proxy sends exactly this.
    "mozilla/5.0",
    # Gmail prefetching images for a signed-in web/app session before the message is shown.
    "mozilla/5.0 (windows nt 10.0; win64; x64) applewebkit/537.36 (khtml, like gecko) "
    "chrome/42.0.2311.135 safari/537.36 edge/12.246 mozilla/5.0",
}

MACHINE_NETWORKS = (
    # Apple (Mail Privacy Protection proxies fetch from Apple's own 17.0.0.0/8).
    "17.0.0.0/8",
    # Microsoft Exchange Online / Outlook.com (Microsoft 365 endpoint list, Exchange Online
    # and Exchange Online Protection): link previews, Safe Links and image prefetch.
    "13.107.6.152/31", "13.107.18.10/31", "13.107.128.0/22", "23.103.160.0/20", "40.92.0.0/15",
    "40.96.0.0/13", "40.104.0.0/15", "40.107.0.0/16", "52.96.0.0/14", "52.100.0.0/14",
    "104.47.0.0/17", "132.245.0.0/16", "150.171.32.0/22",
)


@lru_cache(maxsize=1)
def _networks():
    return tuple(ipaddress.ip_network(net) for net in MACHINE_NETWORKS)


def machine_reason(*, user_agent: str | None, ip: str | None, at: datetime | None,
                   sent_at: datetime | None) -> str | None:
    """Why this hit looks automated, or None when it looks like a person."""
    agent = (user_agent or "").strip().lower()
    if not agent:
        return "no_user_agent"
    if agent in MACHINE_USER_AGENTS:
        return "known_prefetch_user_agent"
    for marker in MACHINE_USER_AGENT_MARKERS:
        if marker in agent:
            return "known_proxy_user_agent"
    if _BOT.search(agent):
        return "bot_user_agent"
    if ip:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
        if address is not None and any(address in network for network in _networks()):
            return "known_proxy_network"
    if sent_at is None:
        return "before_sent"  # nobody has the message yet: a preview of the stored HTML
    if at is not None and at - sent_at < MACHINE_WINDOW:
        return "too_soon_after_sending"
    return None
