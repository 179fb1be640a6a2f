"""unsubscribe: RFC 8058 headers, the footer link, GET /u/{token} (a page) and POST (one-click)."""

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emails.dkim import dkim_sign
from emails.mime import build_mime
from emails.models import Email, EmailEvent, Suppression
from emails.services import email_dispatch
from emails.tokens import unsubscribe_token, unsubscribe_token_read
from tests.conftest import assert_error, assert_ok

URL = re.compile(r"https://mail\.example\.net/u/([A-Za-z0-9_-]+)")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _delivered(send, smtp_sink, key, **fields):
    email = send(key, unsubscribe=True, **fields)
    email_dispatch(ids=[email.pk])
    [received] = smtp_sink.wait_for(1)
    email.refresh_from_db()
    return email, received["message"]


def test_a_sent_email_carries_the_headers_and_a_footer_link_in_both_parts(send, tenants, smtp_sink):
    email, message = _delivered(send, smtp_sink, tenants.a1.live_key, to=["Ann <ann@example.com>", "bob@example.com"],
                                html="<html><body><p>Hello</p></body></html>", text="Hello")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header_url, mailto = [part.strip(" <>") for part in message["List-Unsubscribe"].split(",")]
    assert URL.fullmatch(header_url)
    assert mailto.startswith(f"mailto:unsubscribe+{email.public_id}@")
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    [html_token] = URL.findall(html)
    [text_token] = URL.findall(text)
    assert html.index("Unsubscribe</a>") < html.index("</body>")
    assert text.rstrip().endswith(f"Unsubscribe: https://mail.example.net/u/{text_token}")
    expected = {"e": email.public_id, "r": "ann@example.com"}  # the first envelope recipient, as the header
    for token in (URL.fullmatch(header_url).group(1), html_token, text_token):
        assert unsubscribe_token_read(token) == expected
    # The stored bodies stay the sender's: a resend or a retry adds the footer once.
    assert email.html == "<html><body><p>Hello</p></body></html>" and email.text == "Hello"


def test_a_text_only_email_gets_the_footer_in_text(send, tenants, smtp_sink):
    _, message = _delivered(send, smtp_sink, tenants.a1.live_key, text="Just text")
    assert message.get_content_type() == "text/plain"
    assert URL.search(message.get_content())


def test_both_list_unsubscribe_headers_are_dkim_signed_with_the_footer_in_the_body(send, tenants):
    email = send(tenants.a1.live_key, unsubscribe=True, html="<p>Hi</p>", text="Hi")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    raw = build_mime(email=email, envelope_to=["ann@example.com"], attachments=[]).as_bytes()
    signed = dkim_sign(raw, domain="acme.test", selector="mr1", private_key_pem=pem)
    signature = signed.split(b"\r\n\r\n", 1)[0].decode()
    signed_headers = re.search(r"h=([^;]+);", signature.replace("\r\n", "").replace(" ", "")).group(1).split(":")
    assert "list-unsubscribe" in signed_headers and "list-unsubscribe-post" in signed_headers
    assert b"/u/" in signed.split(b"\r\n\r\n", 1)[1]
    assert dkim.verify(signed, dnsfunc=lambda name, timeout=5: f"v=DKIM1; k=rsa; p={public}".encode())


@pytest.fixture
def unsubscribable(send, tenants, smtp_sink):
    email, message = _delivered(send, smtp_sink, tenants.a1.live_key, html="<p>Hi</p>")
    return email, "/u/" + URL.search(message["List-Unsubscribe"]).group(1)


def _unsubscribed(email):
    return list(EmailEvent.objects.filter(email=email, type="unsubscribed"))


def test_get_shows_a_confirmation_page_and_changes_nothing(client, unsubscribable):
    email, path = unsubscribable
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert '<form method="post">' in body
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in body
    assert "ann@example.com" in body and "Acme &lt;hello@acme.test&gt;" in body
    assert "Set-Cookie" not in response and response["Cache-Control"] == "no-store"
    assert _unsubscribed(email) == [] and not Suppression.objects.exists()


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_one_click_post_suppresses_the_recipient_and_records_the_event(client, unsubscribable, encoding, send,
                                                                         tenants):
    email, path = unsubscribable
    if encoding == "urlencoded":
        response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded",
                               HTTP_USER_AGENT="Gmail One-Click", REMOTE_ADDR="198.51.100.20")
    else:
        response = client.post(path, ONE_CLICK, HTTP_USER_AGENT="Gmail One-Click", REMOTE_ADDR="198.51.100.20")
        assert response.wsgi_request.content_type == "multipart/form-data"
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html") and "Location" not in response
    assert "Set-Cookie" not in response
    assert "You are unsubscribed" in response.content.decode()
    suppression = Suppression.objects.get()
    assert (suppression.subaccount, suppression.address, suppression.reason, suppression.source_email_id) == (
        tenants.a1.subaccount, "ann@example.com", "unsubscribe", email.public_id)
    [event] = _unsubscribed(email)
    assert event.recipient == "ann@example.com"
    assert event.data == {"method": "one_click", "user_agent": "Gmail One-Click", "ip": "198.51.100.20"}

    later = send(tenants.a1.live_key, expect=422, to="ann@example.com")
    assert_error(later, 422, "recipient_suppressed")


def test_a_second_post_records_nothing_more(client, unsubscribable):
    email, path = unsubscribable
    assert client.post(path, ONE_CLICK).status_code == 200
    assert client.post(path, ONE_CLICK).status_code == 200
    assert len(_unsubscribed(email)) == 1 and Suppression.objects.count() == 1


def test_unsubscribing_again_after_a_resubscribe_suppresses_again(client, api, unsubscribable, tenants):
    email, path = unsubscribable
    client.post(path, ONE_CLICK)
    api(tenants.a1.live_key).delete("/api/v1/suppressions/ann@example.com")
    assert not Suppression.objects.exists()
    client.post(path, ONE_CLICK)
    assert Suppression.objects.filter(address="ann@example.com").count() == 1
    assert len(_unsubscribed(email)) == 2


@pytest.mark.parametrize("body", [{}, {"List-Unsubscribe": "yes"}, {"list-unsubscribe": "One-Click"}])
def test_a_post_without_the_one_click_body_changes_nothing(client, unsubscribable, body):
    email, path = unsubscribable
    response = client.post(path, body)
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert _unsubscribed(email) == [] and not Suppression.objects.exists()


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "multipart/form-data",
                                          "multipart/form-data; boundary=\"\""])
def test_a_malformed_multipart_body_is_a_400_page(client, unsubscribable, content_type):
    email, path = unsubscribable
    response = client.post(path, b"--x\r\nnot a part", content_type=content_type)
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert _unsubscribed(email) == []


def _altered(token: str) -> list[str]:
    swap = {c: ("B" if c == "A" else "A") for c in token}
    return [swap[token[0]] + token[1:], token[:-1] + swap[token[-1]], token[:-3], token + "AAAA", "junk", "A" * 90]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_altered_token_is_a_404_page(client, unsubscribable, method):
    email, path = unsubscribable
    for bad in _altered(path.rsplit("/", 1)[1]):
        response = getattr(client, method)(f"/u/{bad}", ONE_CLICK) if method == "post" else client.get(f"/u/{bad}")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert "not valid or has expired" in response.content.decode()
    assert _unsubscribed(email) == [] and not Suppression.objects.exists()


def test_a_token_older_than_60_days_is_expired(client, unsubscribable, monkeypatch):
    email, _ = unsubscribable
    import emails.tokens as tokens

    real_time = tokens.time.time
    monkeypatch.setattr(tokens.time, "time", lambda: real_time() - 61 * 24 * 3600)
    old = unsubscribe_token(email_public_id=email.public_id, recipient="ann@example.com")
    monkeypatch.setattr(tokens.time, "time", lambda: real_time() - 59 * 24 * 3600)
    recent = unsubscribe_token(email_public_id=email.public_id, recipient="ann@example.com")
    monkeypatch.setattr(tokens.time, "time", real_time)
    assert client.post(f"/u/{old}", ONE_CLICK).status_code == 404
    assert _unsubscribed(email) == []
    assert client.post(f"/u/{recent}", ONE_CLICK).status_code == 200
    assert len(_unsubscribed(email)) == 1


def test_an_unsubscribe_in_one_subaccount_never_suppresses_in_another(client, unsubscribable, send, tenants):
    _, path = unsubscribable
    client.post(path, ONE_CLICK)
    assert list(Suppression.objects.values_list("subaccount_id", flat=True)) == [tenants.a1.subaccount.pk]
    for key in (tenants.a2.live_key, tenants.b1.live_key):
        assert isinstance(send(key, to="ann@example.com"), Email)
    assert assert_ok(send(tenants.b1.live_key, expect=0, to="ann@example.com"), 201)


def test_a_test_key_email_records_the_unsubscribe_without_suppressing(client, send, tenants):
    email = send(tenants.a1.test_key, unsubscribe=True)
    email_dispatch(ids=[email.pk])
    token = unsubscribe_token(email_public_id=email.public_id, recipient="ann@example.com")
    assert client.post(f"/u/{token}", ONE_CLICK).status_code == 200
    assert len(_unsubscribed(email)) == 1 and not Suppression.objects.exists()


def test_other_methods_are_refused(client, unsubscribable):
    _, path = unsubscribable
    response = client.put(path)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD, POST"
