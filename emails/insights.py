"""``GET /emails/{id}/insights``: what may hurt this email's delivery or rendering.

Read-only checks on the stored email and the domain's last verification (no DNS lookup, no
network): authentication (SPF/DKIM/DMARC), a missing text part, HTML over Gmail's clipping
size, links to domains other than the sender's. Spam scoring (rspamd) is not configured in
this deployment, so no spam symbols are reported.
"""

from urllib.parse import urlsplit

from domains.names import lookup_form, organizational_domain
from domains.selectors import domain_authentication_warnings
from emails.models import Email
from emails.tracking.html import link_urls

# Gmail clips messages whose HTML is over about 102 KB ("[Message clipped]"), hiding the rest,
# including the unsubscribe footer and the open pixel.
CLIP_BYTES = 102 * 1024


def _insight(code: str, severity: str, message: str, **details) -> dict:
    return {"code": code, "severity": severity, "message": message, "details": details}


def _foreign_link_hosts(email: Email, html: str) -> list[str]:
    urls = [link.url for link in email.tracked_links.all()] or link_urls(html)
    sender = organizational_domain(lookup_form(email.from_domain) or email.from_domain)
    hosts = []
    for url in urls:
        host = lookup_form(urlsplit(url).hostname or "")
        if host and organizational_domain(host) != sender and host not in hosts:
            hosts.append(host)
    return hosts


def email_insights(*, email: Email) -> list[dict]:
    found = [_insight(w["code"], "warning", w["message"])
             for w in domain_authentication_warnings(subaccount_id=email.subaccount_id, domain=email.from_domain)]
    html = email.source_html if email.source_html is not None else email.html
    if email.text is None:
        found.append(_insight("no_text_part", "warning",
                              "No text part: some clients and spam filters penalise HTML-only mail."))
    if html is not None:
        size = len(html.encode())
        if size > CLIP_BYTES:
            found.append(_insight("html_clipped", "warning",
                                  f"The HTML is {size:,} bytes; Gmail clips messages over about 102 KB.",
                                  size=size))
        hosts = _foreign_link_hosts(email, html)
        if hosts:
            found.append(_insight("link_domain_mismatch", "info",
                                  f"Links point to domains other than the sender's ({email.from_domain}): "
                                  + ", ".join(hosts[:10]), hosts=hosts))
    return found
