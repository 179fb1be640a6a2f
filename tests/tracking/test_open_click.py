"""GET /t/o/{token} and /t/c/{token} through the real routes; hits become events on flush."""

import re
import struct
from datetime import timedelta

import pytest
from django.utils import timezone

from emails.models import Email, EmailEvent, EmailRecipient, TrackingHit
from emails.tracking.hits import tracking_hits_flush
from emails.tracking.machine import machine_reason
from emails.tracking.tasks import tracking_flush
from emails.tracking.tokens import tracking_token
from tests.conftest import assert_error, assert_exact_error

HTML = ('<html><body><p><a href="https://shop.example.com/cart?a=1&amp;b=2">Cart</a> '
        '<a href="https://example.com/second">Second</a></p></body></html>')
FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
HUMAN = {"HTTP_USER_AGENT": FIREFOX, "REMOTE_ADDR": "203.0.113.9"}


def _path(html: str, kind: str, index: int = 0) -> str:
    return re.findall(rf"https://mail\.example\.net(/t/{kind}/[A-Za-z0-9_-]{{50}})", html)[index]


@pytest.fixture
def tracked(sent, tenants):
    return sent(tenants.a1.test_key, html=HTML, to="Ann <Ann@Example.com>", track_opens=True, track_clicks=True)


def _events(email, event_type):
    return list(EmailEvent.objects.filter(email=email, type=event_type).order_by("timestamp", "id"))


def test_the_pixel_is_a_real_1x1_gif_with_no_cache_headers_and_records_an_open(client, tracked):
    response = client.get(_path(tracked.html, "o"), **HUMAN)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content[:6] == b"GIF89a"
    assert struct.unpack("<HH", response.content[6:10]) == (1, 1)
    assert response["Cache-Control"] == "no-store, no-cache, must-revalidate, max-age=0, private"
    assert response["Pragma"] == "no-cache" and response["Expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert "Set-Cookie" not in response
    assert TrackingHit.objects.count() == 1 and _events(tracked, "opened") == []  # recorded off the request

    assert tracking_hits_flush() == 1
    [event] = _events(tracked, "opened")
    assert event.recipient == "ann@example.com"
    assert event.data == {"machine": False, "unique": True, "user_agent": FIREFOX, "ip": "203.0.113.9"}
    tracked.refresh_from_db()
    assert tracked.opens_count == 1 and TrackingHit.objects.count() == 0
    assert EmailRecipient.objects.get(email=tracked).first_opened_at == event.timestamp


def test_the_first_human_open_is_unique_and_the_second_is_not(client, tracked):
    client.get(_path(tracked.html, "o"), **HUMAN)
    tracking_hits_flush()
    client.get(_path(tracked.html, "o"), **HUMAN)
    client.get(_path(tracked.html, "o"), **HUMAN)
    tracking_hits_flush()
    assert [e.data["unique"] for e in _events(tracked, "opened")] == [True, False, False]


def test_an_open_through_googles_image_proxy_is_machine_and_not_unique(client, tracked):
    client.get(_path(tracked.html, "o"), HTTP_USER_AGENT=GMAIL_PROXY, REMOTE_ADDR="66.249.84.1")
    client.get(_path(tracked.html, "o"), **HUMAN)
    tracking_hits_flush()
    proxy, human = _events(tracked, "opened")
    assert proxy.data == {"machine": True, "unique": False, "user_agent": GMAIL_PROXY, "ip": "66.249.84.1"}
    assert (human.data["machine"], human.data["unique"]) == (False, True)  # the proxy did not use it up


def test_an_open_from_apples_privacy_proxy_is_machine(client, tracked):
    client.get(_path(tracked.html, "o"), HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="203.0.113.7")
    client.get(_path(tracked.html, "o"), HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="17.58.101.4")
    tracking_hits_flush()
    assert [(e.data["machine"], e.data["unique"]) for e in _events(tracked, "opened")] == [(True, False)] * 2


def test_an_open_within_seconds_of_sending_is_machine(client, tracked):
    Email.objects.filter(pk=tracked.pk).update(sent_at=timezone.now() - timedelta(seconds=1))
    client.get(_path(tracked.html, "o"), **HUMAN)
    tracking_hits_flush()
    [event] = _events(tracked, "opened")
    assert (event.data["machine"], event.data["unique"]) == (True, False)


def test_a_click_redirects_to_the_exact_stored_url_and_records_it(client, tracked):
    response = client.get(_path(tracked.html, "c", 0), **HUMAN)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/cart?a=1&b=2"
    assert "no-store" in response["Cache-Control"]
    response = client.get(_path(tracked.html, "c", 1), **HUMAN)
    assert response["Location"] == "https://example.com/second"
    tracking_hits_flush()
    first, second = _events(tracked, "clicked")
    assert first.data == {"machine": False, "unique": True, "user_agent": FIREFOX, "ip": "203.0.113.9",
                          "url": "https://shop.example.com/cart?a=1&b=2"}
    assert (second.data["url"], second.data["unique"]) == ("https://example.com/second", False)
    tracked.refresh_from_db()
    assert tracked.clicks_count == 2


def test_a_scanner_click_still_redirects_but_is_machine(client, tracked):
    response = client.get(_path(tracked.html, "c"), HTTP_USER_AGENT="Mozilla/5.0 (compatible; BingPreview/1.0b)")
    assert response.status_code == 302
    tracking_hits_flush()
    [event] = _events(tracked, "clicked")
    assert (event.data["machine"], event.data["unique"]) == (True, False)


def _altered(token: str) -> list[str]:
    flip = {c: ("B" if c == "A" else "A") for c in token}
    return [flip[token[0]] + token[1:], token[:25] + flip[token[25]] + token[26:], token[:-1] + flip[token[-1]],
            token[:-1], token + "A", token.lower(), token[::-1]]


def test_an_altered_click_token_is_404_and_never_a_redirect(client, tracked):
    token = _path(tracked.html, "c").rsplit("/", 1)[1]
    for bad in _altered(token):
        response = client.get(f"/t/c/{bad}")
        assert_exact_error(response, 404, "not_found", "This tracking link is not valid.")
        assert "Location" not in response
    assert TrackingHit.objects.count() == 0


def test_an_altered_open_token_is_404(client, tracked):
    token = _path(tracked.html, "o").rsplit("/", 1)[1]
    for bad in _altered(token):
        assert_error(client.get(f"/t/o/{bad}"), 404, "not_found")
    assert TrackingHit.objects.count() == 0


def test_an_open_token_is_not_a_click_token_nor_the_reverse(client, tracked):
    open_token = _path(tracked.html, "o").rsplit("/", 1)[1]
    click_token = _path(tracked.html, "c").rsplit("/", 1)[1]
    assert_error(client.get(f"/t/c/{open_token}"), 404, "not_found")
    assert_error(client.get(f"/t/o/{click_token}"), 404, "not_found")


def test_a_valid_token_for_a_link_that_was_never_stored_is_404(client, tracked):
    token = tracking_token(kind="c", email_public_id=tracked.public_id, link_index=7)
    assert_error(client.get(f"/t/c/{token}"), 404, "not_found")


@pytest.mark.parametrize("attempt", [
    "{path}?url=https://evil.example/", "{path}?redirect=https%3A%2F%2Fevil.example%2F",
    "{path}/https://evil.example/", "{path}https://evil.example/", "/t/c/https://evil.example/",
    "/t/c/https%3A%2F%2Fevil.example%2F", "/t/c//evil.example", "/t/c/%2F%2Fevil.example",
    "/t/c/{token}%0D%0ALocation:%20https://evil.example/",
])
def test_open_redirect_attempts_never_send_anyone_elsewhere(client, tracked, attempt):
    path = _path(tracked.html, "c")
    response = client.get(attempt.format(path=path, token=path.rsplit("/", 1)[1]))
    location = response.get("Location", "")
    assert "evil" not in location
    if response.status_code == 302:
        assert location == "https://shop.example.com/cart?a=1&b=2"
    else:
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("token", [
    "x", "A" * 50, "A" * 49 + "=", "%00" * 20, "é" * 50, "../../../../etc/passwd", "A" * 5000,
    "<script>alert(1)</script>", "%E2%80%AE" * 10, "null", "-" * 50, "_" * 50,
])
@pytest.mark.parametrize("route", ["/t/o/", "/t/c/"])
def test_junk_tokens_are_404_never_500(client, route, token, db):
    assert_error(client.get(route + token), 404, "not_found")


@pytest.mark.parametrize("meta", [
    {"HTTP_USER_AGENT": "nul\x00in\x00agent"}, {"HTTP_USER_AGENT": "x" * 10000},
    {"HTTP_USER_AGENT": "ü ✓ 漢字"}, {"REMOTE_ADDR": "not-an-ip"}, {"REMOTE_ADDR": ""},
    {"REMOTE_ADDR": "2001:db8::1"}, {"HTTP_USER_AGENT": ""},
])
def test_odd_clients_are_served_and_recorded(client, tracked, meta):
    assert client.get(_path(tracked.html, "o"), **meta).status_code == 200
    assert client.get(_path(tracked.html, "c"), **meta).status_code == 302
    assert tracking_hits_flush() == 2
    opened, clicked = _events(tracked, "opened") + _events(tracked, "clicked")
    assert len(opened.data["user_agent"]) <= 512 and "\x00" not in opened.data["user_agent"]
    assert opened.data["ip"] in ("127.0.0.1", "2001:db8::1", None)


def test_head_requests_answer_but_record_nothing(client, tracked):
    assert client.head(_path(tracked.html, "o"), **HUMAN).status_code == 200
    assert client.head(_path(tracked.html, "c"), **HUMAN).status_code == 302
    assert TrackingHit.objects.count() == 0


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_are_405_json(client, tracked, method):
    for path in (_path(tracked.html, "o"), _path(tracked.html, "c")):
        response = getattr(client, method)(path)
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == "GET, HEAD"
    assert TrackingHit.objects.count() == 0


def test_each_endpoint_costs_one_query(client, tracked, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert client.get(_path(tracked.html, "o"), **HUMAN).status_code == 200
    with django_assert_num_queries(1):  # the INSERT reads the target itself
        assert client.get(_path(tracked.html, "c"), **HUMAN).status_code == 302
    with django_assert_num_queries(0):
        assert client.get("/t/c/" + "A" * 50).status_code == 404


def test_a_token_of_one_tenants_email_never_touches_another_tenants(client, sent, tenants):
    mine = sent(tenants.a1.test_key, html=HTML, track_opens=True, track_clicks=True)
    theirs = sent(tenants.b1.test_key, html='<a href="https://b.example/">b</a>', track_opens=True,
                  track_clicks=True)
    response = client.get(_path(mine.html, "c"), **HUMAN)
    assert response["Location"] == "https://shop.example.com/cart?a=1&b=2"
    client.get(_path(mine.html, "o"), **HUMAN)
    tracking_hits_flush()
    assert EmailEvent.objects.filter(email=theirs, type__in=["opened", "clicked"]).count() == 0
    assert EmailEvent.objects.filter(email=mine, type__in=["opened", "clicked"]).count() == 2
    theirs.refresh_from_db()
    assert (theirs.opens_count, theirs.clicks_count) == (0, 0)
    assert EmailRecipient.objects.get(email=theirs).first_opened_at is None
    # and B's token reaches B's link only
    assert client.get(_path(theirs.html, "c"), **HUMAN)["Location"] == "https://b.example/"


def test_hits_of_a_deleted_email_are_dropped(client, tracked):
    client.get(_path(tracked.html, "o"), **HUMAN)
    Email.objects.filter(pk=tracked.pk).delete()
    assert_error(client.get(_path(tracked.html, "c"), **HUMAN), 404, "not_found")
    assert tracking_hits_flush() == 1
    assert TrackingHit.objects.count() == 0 and EmailEvent.objects.filter(type="opened").count() == 0


def test_the_beat_task_drains_every_batch(client, tracked, monkeypatch):
    from emails.tracking import hits

    monkeypatch.setattr(hits, "FLUSH_BATCH", 2)
    for _ in range(5):
        client.get(_path(tracked.html, "o"), **HUMAN)
    assert tracking_flush() == 5
    assert len(_events(tracked, "opened")) == 5 and TrackingHit.objects.count() == 0


def test_links_keep_working_after_a_secret_key_rotation(client, tracked, settings):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-secret-key-" + "x" * 40, [old_key]
    assert client.get(_path(tracked.html, "c")).status_code == 302
    settings.SECRET_KEY_FALLBACKS = []
    assert_error(client.get(_path(tracked.html, "c")), 404, "not_found")


@pytest.mark.parametrize(("user_agent", "ip", "expected"), [
    (FIREFOX, "203.0.113.9", None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     "198.51.100.4", None),
    ("Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36", "1.2.3.4",
     None),
    (GMAIL_PROXY, "66.249.84.1", "known_proxy_user_agent"),
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "1.2.3.4",
     "known_proxy_user_agent"),
    ("Mozilla/5.0", "1.2.3.4", "known_prefetch_user_agent"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 "
     "Safari/537.36 Edge/12.246 Mozilla/5.0", "1.2.3.4", "known_prefetch_user_agent"),
    (FIREFOX, "17.58.101.4", "known_proxy_network"),
    (FIREFOX, "40.107.22.10", "known_proxy_network"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "1.2.3.4", "bot_user_agent"),
    ("python-requests/2.32.3", "1.2.3.4", "known_proxy_user_agent"),
    ("", "1.2.3.4", "no_user_agent"),
])
def test_machine_detection(user_agent, ip, expected):
    now = timezone.now()
    assert machine_reason(user_agent=user_agent, ip=ip, at=now, sent_at=now - timedelta(minutes=5)) == expected


def test_a_hit_before_the_email_was_sent_is_machine():
    assert machine_reason(user_agent=FIREFOX, ip="203.0.113.9", at=timezone.now(), sent_at=None) == "before_sent"
