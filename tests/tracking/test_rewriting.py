"""Accept-time tracking: links rewritten to /t/c/{token}, the pixel added, URLs stored by index."""

import re

import pytest

from domains.models import Domain
from emails.models import Email, TrackedLink
from emails.tracking.html import rewrite_html
from emails.tracking.tokens import tracking_token, tracking_token_read
from tests.conftest import assert_ok

HTML = """<html><head><style>a{color:red}</style></head><body>
<p>Hi <a href="https://shop.example.com/cart?a=1&amp;b=2" class="btn">Your cart</a></p>
<p><a HREF='http://Example.com/Path'>Plain http</a></p>
<p><a href="mailto:help@acme.test">Mail us</a> <a href="tel:+15550100">Call</a> <a href="#top">Top</a></p>
<p><a data-mailroom-notrack href="https://secret.example.com/reset?t=abc">Reset</a></p>
<p><a href="/relative">Relative</a> <a href="https://shop.example.com/cart?a=1&amp;b=2">Again</a></p>
<script>document.write('<a href="https://script.example.com/">x</a>')</script>
<!-- <a href="https://comment.example.com/">old</a> -->
</body></html>"""
TEXT = "Your cart: https://shop.example.com/cart?a=1&b=2"

TRACKED_URL = re.compile(r"https://mail\.example\.net/t/c/([A-Za-z0-9_-]{50})")
PIXEL = re.compile(r'<img src="https://mail\.example\.net/t/o/([A-Za-z0-9_-]{50})" width="1" height="1"')


def test_the_stored_html_of_a_tracked_email_has_rewritten_links_and_a_pixel(sent, tenants):
    email = sent(tenants.a1.test_key, html=HTML, text=TEXT, track_opens=True, track_clicks=True)
    tokens = TRACKED_URL.findall(email.html)
    assert len(tokens) == 3
    assert [tracking_token_read(t, kind="c").link_index for t in tokens] == [0, 1, 2]
    assert {tracking_token_read(t, kind="c").email_public_id for t in tokens} == {email.public_id}
    assert list(TrackedLink.objects.filter(email=email).order_by("index").values_list("index", "url")) == [
        (0, "https://shop.example.com/cart?a=1&b=2"),
        (1, "http://Example.com/Path"),
        (2, "https://shop.example.com/cart?a=1&b=2"),
    ]
    [pixel_token] = PIXEL.findall(email.html)
    assert tracking_token_read(pixel_token, kind="o").email_public_id == email.public_id
    assert email.html.index("<img src=") < email.html.index("</body>")
    # Left alone: mailto, tel, anchors, marked links, relative links, script and comments.
    for kept in ('href="mailto:help@acme.test"', 'href="tel:+15550100"', 'href="#top"',
                 'href="https://secret.example.com/reset?t=abc"', 'href="/relative"',
                 '<a href="https://script.example.com/">', '<a href="https://comment.example.com/">'):
        assert kept in email.html
    assert 'class="btn"' in email.html and "<style>a{color:red}</style>" in email.html
    assert email.text == TEXT  # the text part is never rewritten
    assert email.source_html == HTML
    assert (email.track_opens, email.track_clicks) == (True, True)


def test_what_the_recipient_receives_is_the_tracked_html(send, tenants, smtp_sink):
    from emails.services import email_dispatch

    email = send(tenants.a1.live_key, html=HTML, text=TEXT, track_opens=True, track_clicks=True)
    email_dispatch(ids=[email.pk])
    [received] = smtp_sink.wait_for(1)
    html = received["message"].get_body(preferencelist=("html",)).get_content()
    assert len(TRACKED_URL.findall(html)) == 3 and len(PIXEL.findall(html)) == 1
    assert "shop.example.com" not in html
    assert received["message"].get_body(preferencelist=("plain",)).get_content().strip() == TEXT


def test_without_tracking_the_html_is_stored_as_given(sent, tenants):
    email = sent(tenants.a1.test_key, html=HTML, track_opens=False, track_clicks=False)
    assert email.html == HTML and email.source_html is None
    assert not TrackedLink.objects.filter(email=email).exists()


def test_opens_only_adds_the_pixel_and_keeps_links(sent, tenants):
    email = sent(tenants.a1.test_key, html=HTML, track_opens=True, track_clicks=False)
    assert not TRACKED_URL.search(email.html) and len(PIXEL.findall(email.html)) == 1
    assert 'href="https://shop.example.com/cart?a=1&amp;b=2"' in email.html
    assert not TrackedLink.objects.filter(email=email).exists()


def test_clicks_only_rewrites_links_without_a_pixel(sent, tenants):
    email = sent(tenants.a1.test_key, html=HTML, track_opens=False, track_clicks=True)
    assert len(TRACKED_URL.findall(email.html)) == 3 and not PIXEL.search(email.html)


def test_a_text_only_email_is_not_touched(sent, tenants):
    email = sent(tenants.a1.test_key, text=TEXT, track_opens=True, track_clicks=True)
    assert email.html is None and email.text == TEXT and email.source_html is None


@pytest.mark.parametrize(("subaccount_flags", "domain_flags", "request_flags", "expected"), [
    ((False, False), None, {}, (False, False)),
    ((True, True), None, {}, (True, True)),
    ((True, True), (False, None), {}, (False, True)),  # domain overrides opens, clicks as the sub-account
    ((False, False), (True, True), {}, (True, True)),
    ((False, False), (True, True), {"track_opens": False}, (False, True)),  # the send wins
    ((True, True), (True, True), {"track_opens": False, "track_clicks": False}, (False, False)),
])
def test_tracking_comes_from_the_send_else_the_domain_else_the_subaccount(
        sent, tenants, subaccount_flags, domain_flags, request_flags, expected):
    subaccount = tenants.a1.subaccount
    subaccount.track_opens, subaccount.track_clicks = subaccount_flags
    subaccount.save()
    if domain_flags is not None:
        Domain.objects.create(subaccount=subaccount, name="acme.test", verification_token="t",
                              track_opens=domain_flags[0], track_clicks=domain_flags[1])
    email = sent(tenants.a1.test_key, html=HTML, **request_flags)
    assert (email.track_opens, email.track_clicks) == expected
    assert bool(PIXEL.search(email.html)) is expected[0]
    assert bool(TrackedLink.objects.filter(email=email).exists()) is expected[1]


def test_another_subaccounts_domain_settings_do_not_apply(sent, tenants):
    Domain.objects.create(subaccount=tenants.b1.subaccount, name="acme.test", verification_token="t",
                          track_opens=True, track_clicks=True)
    email = sent(tenants.a1.test_key, html=HTML)
    assert (email.track_opens, email.track_clicks) == (False, False)


def _domain_with_tracking_host(subaccount, *, verified: bool) -> Domain:
    states = {"tracking": {"status": "verified" if verified else "missing"}}
    return Domain.objects.create(subaccount=subaccount, name="acme.test", verification_token="t",
                                 tracking_subdomain="links", record_states=states)


def test_links_use_the_domains_tracking_host_once_its_record_is_verified(sent, tenants):
    _domain_with_tracking_host(tenants.a1.subaccount, verified=True)
    email = sent(tenants.a1.test_key, html=HTML, track_opens=True, track_clicks=True)
    assert len(re.findall(r'href="https://links\.acme\.test/t/c/[A-Za-z0-9_-]{50}"', email.html)) == 3
    assert '<img src="https://links.acme.test/t/o/' in email.html


def test_an_unverified_tracking_host_is_not_used(sent, tenants):
    _domain_with_tracking_host(tenants.a1.subaccount, verified=False)
    email = sent(tenants.a1.test_key, html=HTML, track_opens=True, track_clicks=True)
    assert len(TRACKED_URL.findall(email.html)) == 3 and "links.acme.test" not in email.html


def test_resend_starts_from_the_senders_html_not_the_tracked_copy(sent, api, tenants):
    first = sent(tenants.a1.test_key, html=HTML, text=TEXT, track_opens=True, track_clicks=True)
    data = assert_ok(api(tenants.a1.test_key).post(f"/api/v1/emails/{first.public_id}/resend"), 201)
    second = Email.objects.get(public_id=data["id"])
    assert second.source_html == HTML
    tokens = TRACKED_URL.findall(second.html)
    assert len(tokens) == 3 and len(PIXEL.findall(second.html)) == 1
    assert {tracking_token_read(t, kind="c").email_public_id for t in tokens} == {second.public_id}
    assert list(TrackedLink.objects.filter(email=second).order_by("index").values_list("url", flat=True)) == [
        "https://shop.example.com/cart?a=1&b=2", "http://Example.com/Path", "https://shop.example.com/cart?a=1&b=2"]


def test_a_batch_stores_each_emails_links(api, tenants, outbox_tasks):
    items = [{"from": "a@acme.test", "to": f"u{i}@example.com", "subject": "s", "track_clicks": True,
              "html": f'<a href="https://example.com/{i}">x</a><a href="https://example.com/{i}/b">y</a>'}
             for i in range(3)]
    response = api(tenants.a1.test_key).post("/api/v1/emails/batch", {"emails": items}, format="json")
    results = assert_ok(response, 200)["results"]
    assert all("id" in r for r in results), results
    for i, result in enumerate(results):
        email = Email.objects.get(public_id=result["id"])
        assert list(email.tracked_links.order_by("index").values_list("url", flat=True)) == [
            f"https://example.com/{i}", f"https://example.com/{i}/b"]


# --- the rewriter on its own -------------------------------------------------------------------

def _click(index: int) -> str:
    return f"https://t.example/c/{index}"


@pytest.mark.parametrize(("source", "expected_html", "expected_links"), [
    ('<a href=https://x.example/a>u</a>', '<a href="https://t.example/c/0">u</a>', ["https://x.example/a"]),
    ("<a\r\nhref='https://x.example/a'\r\n>u</a>\r\n<a href=\"https://x.example/b\">v</a>",
     '<a href="https://t.example/c/0">u</a>\r\n<a href="https://t.example/c/1">v</a>',
     ["https://x.example/a", "https://x.example/b"]),
    ('<p>héllo ✓</p>\n<a href="https://x.example/é">u</a>', '<p>héllo ✓</p>\n<a href="https://t.example/c/0">u</a>',
     ["https://x.example/é"]),
    ('<a href="https://x.example/1" href="https://x.example/2">u</a>',
     '<a href="https://t.example/c/0" href="https://x.example/2">u</a>', ["https://x.example/1"]),
    ('<a href=" \thttps://x.example/s \n">u</a>', '<a href="https://t.example/c/0">u</a>', ["https://x.example/s"]),
    ('<a href="HTTPS://X.example/up">u</a>', '<a href="https://t.example/c/0">u</a>', ["HTTPS://X.example/up"]),
    ('<a href="javascript:alert(1)">u</a><a href="https:no-slashes">v</a><a href="//x.example/p">w</a>'
     '<a href="ftp://x.example/f">f</a><a name="n">n</a>',
     '<a href="javascript:alert(1)">u</a><a href="https:no-slashes">v</a><a href="//x.example/p">w</a>'
     '<a href="ftp://x.example/f">f</a><a name="n">n</a>', []),
    ('<area shape="rect" href="https://x.example/map"/>', '<area shape="rect" href="https://t.example/c/0" />',
     ["https://x.example/map"]),
    ('<a title="&quot;q&quot; &lt;b&gt;" href="https://x.example/?a=1&amp;b=2">u</a>',
     '<a title="&quot;q&quot; &lt;b&gt;" href="https://t.example/c/0">u</a>', ["https://x.example/?a=1&b=2"]),
    ('<a download href="https://x.example/f.pdf">u</a>', '<a download href="https://t.example/c/0">u</a>',
     ["https://x.example/f.pdf"]),
])
def test_the_rewriter_handles_real_world_markup(source, expected_html, expected_links):
    result = rewrite_html(source, click_url=_click)
    assert result.html == expected_html
    assert result.links == expected_links


def test_the_pixel_goes_before_body_end_or_at_the_end():
    assert rewrite_html("<body><p>x</p></body>", pixel_url="P").html.startswith(
        '<body><p>x</p><img src="P" width="1" height="1"')
    assert rewrite_html("<body><p>x</p></body>", pixel_url="P").html.endswith("/></body>")
    assert rewrite_html("<p>x</p>", pixel_url="P").html.startswith('<p>x</p><img src="P"')
    assert rewrite_html("<html><p>x</p></html>", pixel_url="P").html.endswith("/></html>")


@pytest.mark.parametrize("junk", [
    "<a href=", "<a href='https://x.example/", "<<<a>>>", "<!DOCTYPE", "<![if mso]><a href='https://x.example'>",
    "<a href=\"https://x.example/\x00\">u</a>", "</body></body><body>", "&#xffffffff;", "<a " * 1000,
])
def test_the_rewriter_never_raises_on_broken_markup(junk):
    result = rewrite_html(junk, click_url=_click, pixel_url="P")
    assert 'src="P"' in result.html


def test_tokens_of_the_same_link_are_stable_and_distinct_per_index():
    assert tracking_token(kind="c", email_public_id="msg_" + "a" * 24, link_index=1) == tracking_token(
        kind="c", email_public_id="msg_" + "a" * 24, link_index=1)
    assert tracking_token(kind="c", email_public_id="msg_" + "a" * 24, link_index=1) != tracking_token(
        kind="c", email_public_id="msg_" + "a" * 24, link_index=2)
