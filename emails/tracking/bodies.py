"""What tracking and unsubscribe do to an email's bodies.

At accept time (``tracking_options`` + ``tracked_html``): links rewritten to ``/t/c/{token}``
and the pixel added, the original URLs returned by link index for ``TrackedLink`` rows. At build
time (``unsubscribe_bodies``): the footer link, made for the envelope recipient like the
List-Unsubscribe header, so a resend or retry never stacks a second footer.
"""

import html as html_lib
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from emails.tracking.html import Rewritten, rewrite_html
from emails.tracking.tokens import tracking_token


@dataclass(frozen=True)
class TrackingOptions:
    track_opens: bool
    track_clicks: bool
    base_url: str  # where /t/o and /t/c links point

    @property
    def active(self) -> bool:
        return self.track_opens or self.track_clicks


def _tracking_base_url(*, subaccount, from_domain: str) -> str:
    """The domain's own tracking host once its CNAME is verified, else MAILROOM_PUBLIC_URL."""
    from domains.selectors import domain_tracking_host

    host = domain_tracking_host(subaccount=subaccount, from_domain=from_domain)
    if host is None:
        return settings.MAILROOM_PUBLIC_URL
    scheme = urlsplit(settings.MAILROOM_PUBLIC_URL).scheme or "https"
    return f"{scheme}://{host}"


def tracking_options(*, subaccount, from_domain: str, track_opens: bool | None,
                     track_clicks: bool | None) -> TrackingOptions:
    """Per send, else the domain's default, else the sub-account's (one cached query)."""
    if track_opens is None or track_clicks is None:
        from domains.selectors import domain_tracking_defaults

        default_opens, default_clicks = domain_tracking_defaults(subaccount=subaccount, from_domain=from_domain)
        track_opens = default_opens if track_opens is None else track_opens
        track_clicks = default_clicks if track_clicks is None else track_clicks
    base_url = settings.MAILROOM_PUBLIC_URL
    if track_opens or track_clicks:
        base_url = _tracking_base_url(subaccount=subaccount, from_domain=from_domain)
    return TrackingOptions(track_opens=bool(track_opens), track_clicks=bool(track_clicks), base_url=base_url)


def open_url(base_url: str, email_public_id: str) -> str:
    return f"{base_url}/t/o/{tracking_token(kind='o', email_public_id=email_public_id)}"


def click_url(base_url: str, email_public_id: str, link_index: int) -> str:
    return f"{base_url}/t/c/{tracking_token(kind='c', email_public_id=email_public_id, link_index=link_index)}"


def tracked_html(*, html: str | None, email_public_id: str, options: TrackingOptions) -> Rewritten | None:
    """The HTML as it will be sent, or None when tracking leaves it alone. The text part is
    never touched: a rewritten URL there would be visible to the reader."""
    if html is None or not options.active:
        return None
    base = options.base_url
    rewritten = rewrite_html(
        html,
        click_url=(lambda index: click_url(base, email_public_id, index)) if options.track_clicks else None,
        pixel_url=open_url(base, email_public_id) if options.track_opens else None,
    )
    return rewritten if rewritten.html != html else None


def unsubscribe_url(*, email_public_id: str, recipient: str) -> str:
    from emails.tokens import unsubscribe_token

    return f"{settings.MAILROOM_PUBLIC_URL}/u/{unsubscribe_token(email_public_id=email_public_id, recipient=recipient)}"


FOOTER_TEXT = "Unsubscribe"


def unsubscribe_bodies(*, html: str | None, text: str | None, url: str) -> tuple[str | None, str | None]:
    """Both parts with the unsubscribe footer link; a missing part stays missing."""
    if html is not None:
        footer = ('<div style="margin:24px 0 0;font-size:12px;line-height:18px;color:#6b7280;text-align:center;">'
                  f'<a href="{html_lib.escape(url, quote=True)}" style="color:#6b7280;text-decoration:underline;">'
                  f'{FOOTER_TEXT}</a></div>')
        html = rewrite_html(html, footer_html=footer).html
    if text is not None:
        text = f"{text.rstrip()}\n\n--\n{FOOTER_TEXT}: {url}\n"
    return html, text
