"""ESP tracking webhooks through django-anymail's real views under /hooks/, payloads as the ESPs
document them, with the ESP's own authentication. The email was handed to the ESP's anymail
backend by our dispatcher (the ESP's HTTP API answered by a stand-in on loopback)."""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from emails.models import Email, EmailEvent, Suppression
from tests.conftest import assert_error
from tests.tracking.conftest import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()}
POSTMARK = "/hooks/postmark/tracking/"
MAILGUN = "/hooks/mailgun/tracking/"


def _post(client, url, payload, **extra):
    return client.post(url, json.dumps(payload), content_type="application/json", **{**AUTH, **extra})


def _types(email):
    return list(EmailEvent.objects.filter(email=email).order_by("timestamp", "id").values_list("type", flat=True))


def _later(seconds: float) -> str:
    """An ESP timestamp ``seconds`` from now, in Postmark's spelling (after our own "sent")."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


# --- Postmark (https://postmarkapp.com/developer/webhooks) --------------------------------------

def pm_delivery(message_id, recipient="ann@example.com", at=None):
    return {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": message_id,
            "Recipient": recipient, "Tag": "welcome-email", "DeliveredAt": at or _later(5),
            "Details": "smtp;250 2.0.0 OK 1730000000 ok", "Metadata": {"a_key": "a_value"}}


def pm_bounce(message_id, bounce_type="HardBounce", bounce_id=4323372036854775807, recipient="ann@example.com"):
    return {"RecordType": "Bounce", "MessageStream": "outbound", "ID": bounce_id, "Type": bounce_type,
            "TypeCode": 1 if bounce_type == "HardBounce" else 4096,
            "Name": "Hard bounce" if bounce_type == "HardBounce" else "Soft bounce", "Tag": "Test",
            "MessageID": message_id, "Metadata": {}, "ServerID": 23,
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": recipient, "From": "hello@acme.test", "BouncedAt": _later(6),
            "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Hi", "Content": ""}


def pm_open(message_id, user_agent, received_at="2026-03-01T10:05:54.9070259Z"):
    return {"RecordType": "Open", "MessageStream": "outbound", "FirstOpen": True,
            "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
            "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"},
            "Platform": "WebMail", "UserAgent": user_agent, "ReadSeconds": 5,
            "Geo": {"CountryISOCode": "RS", "Country": "Serbia", "City": "Novi Sad", "IP": "188.2.95.4"},
            "MessageID": message_id, "Metadata": {}, "ReceivedAt": received_at, "Tag": "welcome-email",
            "Recipient": "ann@example.com"}


def pm_click(message_id):
    return {"RecordType": "Click", "MessageStream": "outbound", "ClickLocation": "HTML",
            "Client": {"Name": "Chrome 51.0.2704.103", "Company": "Google", "Family": "Chrome"},
            "OS": {"Name": "Windows 7", "Company": "Microsoft Corporation", "Family": "Windows 7"},
            "Platform": "Desktop",
            "UserAgent": "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/51.0.2704.103 Safari/537.36",
            "OriginalLink": "https://example.com/offer", "Geo": {"IP": "192.0.2.10"}, "MessageID": message_id,
            "Metadata": {}, "ReceivedAt": _later(60), "Tag": "welcome-email",
            "Recipient": "ann@example.com"}


def pm_spam(message_id):
    return {"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42, "Type": "SpamComplaint",
            "TypeCode": 512, "Name": "Spam complaint", "Tag": "Test", "MessageID": message_id, "Metadata": {},
            "ServerID": 1234, "Description": "", "Details": "Test spam complaint details",
            "Email": "ann@example.com", "From": "hello@acme.test", "BouncedAt": _later(7),
            "DumpAvailable": True, "Inactive": True, "CanActivate": False, "Subject": "Hi", "Content": ""}


def pm_unsubscribe(message_id):
    return {"RecordType": "SubscriptionChange", "MessageID": message_id, "ServerID": 123456,
            "MessageStream": "outbound", "ChangedAt": _later(8),
            "Recipient": "ann@example.com", "Origin": "Recipient", "SuppressSending": True,
            "SuppressionReason": "ManualSuppression", "Tag": "my-tag", "Metadata": {}}


@pytest.fixture
def postmark_email(sent_via, tenants):
    return sent_via("postmark", tenants.a1.live_key)


def test_the_email_went_to_postmarks_api(postmark_email, fake_esp):
    [request] = fake_esp.requests
    assert request["path"] == "/email" and request["headers"]["X-Postmark-Server-Token"] == "server-token"
    assert json.loads(request["body"])["To"] == "ann@example.com"


def test_a_postmark_delivery_marks_the_email_delivered_once(client, postmark_email):
    payload = pm_delivery(postmark_email.provider_message_id, at="2030-03-01T10:00:05.9070259Z")
    assert _post(client, POSTMARK, payload).status_code == 200
    assert _post(client, POSTMARK, payload).status_code == 200  # Postmark retried: recorded once
    postmark_email.refresh_from_db()
    assert postmark_email.status == "delivered" and postmark_email.delivered_at is not None
    [event] = EmailEvent.objects.filter(email=postmark_email, type="delivered")
    assert event.recipient == "ann@example.com"
    assert event.timestamp.isoformat() == "2030-03-01T10:00:05.907025+00:00"  # when Postmark saw it
    assert event.data == {"provider": "Postmark", "mta_response": "smtp;250 2.0.0 OK 1730000000 ok"}
    assert event.provider_event_id.startswith("postmark:sha256:")


def test_a_postmark_hard_bounce_suppresses_the_recipient(client, postmark_email, send, tenants):
    payload = pm_bounce(postmark_email.provider_message_id)
    _post(client, POSTMARK, payload)
    _post(client, POSTMARK, payload)
    postmark_email.refresh_from_db()
    assert postmark_email.status == "bounced"
    [event] = EmailEvent.objects.filter(email=postmark_email, type="bounced")
    assert event.provider_event_id == "postmark:4323372036854775807"
    assert event.data["bounce_type"] == "hard" and event.data["reject_reason"] == "bounced"
    assert event.data["mta_response"].startswith("smtp;550 5.1.1")
    suppression = Suppression.objects.get()
    assert (suppression.subaccount, suppression.address, suppression.reason) == (
        tenants.a1.subaccount, "ann@example.com", "bounce")
    assert_error(send(tenants.a1.live_key, expect=422), 422, "recipient_suppressed")


def test_a_postmark_soft_bounce_is_only_a_delay(client, postmark_email):
    payload = pm_bounce(postmark_email.provider_message_id, bounce_type="SoftBounce", bounce_id=77)
    payload["Details"] = "smtp;452 4.2.2 The email account that you tried to reach is over quota."
    _post(client, POSTMARK, payload)
    postmark_email.refresh_from_db()
    assert postmark_email.status == "delivery_delayed"
    assert _types(postmark_email)[-1] == "delivery_delayed"
    assert not Suppression.objects.exists()


def test_a_postmark_spam_complaint_suppresses(client, postmark_email):
    _post(client, POSTMARK, pm_spam(postmark_email.provider_message_id))
    postmark_email.refresh_from_db()
    assert postmark_email.status == "complained"
    assert Suppression.objects.get().reason == "complaint"


def test_a_postmark_unsubscribe_suppresses(client, postmark_email):
    _post(client, POSTMARK, pm_unsubscribe(postmark_email.provider_message_id))
    assert _types(postmark_email)[-1] == "unsubscribed"
    assert Suppression.objects.get().reason == "unsubscribe"


def test_postmark_opens_and_clicks_carry_the_same_flags_as_ours(client, postmark_email):
    browser = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/35.0.1916.153 Safari/537.36")
    proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    Email.objects.filter(pk=postmark_email.pk).update(sent_at="2026-03-01T10:00:00Z")
    _post(client, POSTMARK, pm_open(postmark_email.provider_message_id, proxy, "2026-03-01T10:05:00.1Z"))
    _post(client, POSTMARK, pm_open(postmark_email.provider_message_id, browser, "2026-03-01T10:05:54.1Z"))
    _post(client, POSTMARK, pm_open(postmark_email.provider_message_id, browser, "2026-03-01T10:07:54.1Z"))
    _post(client, POSTMARK, pm_click(postmark_email.provider_message_id))
    opens = EmailEvent.objects.filter(email=postmark_email, type="opened").order_by("timestamp")
    assert [(e.data["machine"], e.data["unique"]) for e in opens] == [(True, False), (False, True), (False, False)]
    assert opens[1].data == {"provider": "Postmark", "machine": False, "unique": True, "user_agent": browser,
                             "ip": "188.2.95.4"}
    [click] = EmailEvent.objects.filter(email=postmark_email, type="clicked")
    assert click.data["url"] == "https://example.com/offer" and click.data["unique"] is True
    postmark_email.refresh_from_db()
    assert (postmark_email.opens_count, postmark_email.clicks_count) == (3, 1)


def test_status_never_moves_backwards(client, postmark_email):
    _post(client, POSTMARK, pm_bounce(postmark_email.provider_message_id))
    _post(client, POSTMARK, pm_delivery(postmark_email.provider_message_id, at=_later(9)))
    postmark_email.refresh_from_db()
    assert postmark_email.status == "bounced"
    assert "delivered" in _types(postmark_email)  # the event is kept; the status is not overwritten


@pytest.mark.parametrize("auth", [{}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"hooks:wrong").decode()},
                                  {"HTTP_AUTHORIZATION": "Bearer " + WEBHOOK_SECRET}])
def test_postmark_webhooks_without_the_secret_are_refused(client, postmark_email, auth):
    response = client.post(POSTMARK, json.dumps(pm_delivery(postmark_email.provider_message_id)),
                           content_type="application/json", **auth)
    assert_error(response, 400, "bad_request")
    assert _types(postmark_email) == ["queued", "sent"]


def test_an_unknown_message_id_is_ignored(client, postmark_email):
    assert _post(client, POSTMARK, pm_delivery("00000000-0000-0000-0000-000000000000")).status_code == 200
    assert _post(client, POSTMARK, pm_bounce("")).status_code == 200
    assert EmailEvent.objects.filter(type__in=["delivered", "bounced"]).count() == 0
    assert not Suppression.objects.exists()


def test_a_provider_event_only_touches_the_email_it_names(client, sent_via, tenants):
    mine = sent_via("postmark", tenants.a1.live_key)
    theirs = sent_via("postmark", tenants.b1.live_key)
    _post(client, POSTMARK, pm_bounce(mine.provider_message_id))
    theirs.refresh_from_db()
    assert theirs.status == "sent" and _types(theirs) == ["queued", "sent"]
    assert list(Suppression.objects.values_list("subaccount_id", flat=True)) == [tenants.a1.subaccount.pk]


# --- Mailgun (https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/) ----

def mg(message_id, event_data, token=None):
    timestamp = str(int(time.time()))
    token = token or hashlib.sha256(json.dumps(event_data, sort_keys=True).encode()).hexdigest()[:50]
    signature = hmac.new(MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    data = {"timestamp": time.time() + 30, "id": "CPgfbmQMTCKtHW6uIWtuVe", "recipient": "ann@example.com",
            "tags": ["welcome"], "user-variables": {}, "log-level": "info", "recipient-domain": "example.com",
            "envelope": {"transport": "smtp", "sender": "hello@acme.test", "targets": "ann@example.com"},
            "message": {"headers": {"to": "ann@example.com", "message-id": message_id.strip("<>"),
                                    "from": "Acme <hello@acme.test>", "subject": "Hi"},
                        "attachments": [], "size": 111}}
    data.update(event_data)
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": data}


MG_DELIVERED = {"event": "delivered", "delivery-status": {
    "tls": True, "mx-host": "smtp-in.example.com", "code": 250, "description": "", "attempt-no": 1,
    "message": "OK", "certificate-verified": True}}
MG_FAILED_PERMANENT = {"event": "failed", "severity": "permanent", "reason": "bounce", "delivery-status": {
    "attempt-no": 1, "code": 550, "description": "",
    "message": "5.1.1 The email account that you tried to reach does not exist."}}
MG_FAILED_TEMPORARY = {"event": "failed", "severity": "temporary", "reason": "generic", "delivery-status": {
    "attempt-no": 1, "code": 452, "description": "",
    "message": "4.2.2 The email account that you tried to reach is over quota."}}
MG_OPENED = {"event": "opened", "ip": "50.56.129.169", "client-info": {
    "client-type": "browser", "client-os": "Linux", "device-type": "desktop", "client-name": "Chrome",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}}


@pytest.fixture
def mailgun_email(sent_via, tenants):
    email = sent_via("mailgun", tenants.a1.live_key)
    assert email.provider_message_id.startswith("<") and email.provider_message_id.endswith("@sandbox.mailgun.org>")
    return email


def test_a_mailgun_delivery_with_a_valid_signature_marks_delivered_once(client, mailgun_email):
    payload = mg(mailgun_email.provider_message_id, MG_DELIVERED)
    assert _post(client, MAILGUN, payload).status_code == 200
    assert _post(client, MAILGUN, payload).status_code == 200
    mailgun_email.refresh_from_db()
    assert mailgun_email.status == "delivered"
    [event] = EmailEvent.objects.filter(email=mailgun_email, type="delivered")
    assert event.provider_event_id == f"mailgun:{payload['signature']['token']}"
    assert event.data == {"provider": "Mailgun", "mta_response": "OK"}


def test_a_mailgun_permanent_failure_is_a_hard_bounce(client, mailgun_email):
    _post(client, MAILGUN, mg(mailgun_email.provider_message_id, MG_FAILED_PERMANENT))
    mailgun_email.refresh_from_db()
    assert mailgun_email.status == "bounced"
    assert Suppression.objects.get().reason == "bounce"


def test_a_mailgun_temporary_failure_is_a_delay(client, mailgun_email):
    _post(client, MAILGUN, mg(mailgun_email.provider_message_id, MG_FAILED_TEMPORARY))
    mailgun_email.refresh_from_db()
    assert mailgun_email.status == "delivery_delayed" and not Suppression.objects.exists()


def test_a_mailgun_open_is_recorded_with_flags(client, mailgun_email):
    _post(client, MAILGUN, mg(mailgun_email.provider_message_id, MG_OPENED))
    [event] = EmailEvent.objects.filter(email=mailgun_email, type="opened")
    assert event.data["ip"] == "50.56.129.169" and event.data["machine"] is False


def test_a_mailgun_webhook_with_a_bad_signature_is_refused(client, mailgun_email):
    payload = mg(mailgun_email.provider_message_id, MG_DELIVERED)
    payload["signature"]["signature"] = "0" * 64
    assert_error(_post(client, MAILGUN, payload), 400, "bad_request")
    mailgun_email.refresh_from_db()
    assert mailgun_email.status == "sent"


def test_delivery_after_a_delay_moves_forward(client, mailgun_email):
    _post(client, MAILGUN, mg(mailgun_email.provider_message_id, MG_FAILED_TEMPORARY))
    _post(client, MAILGUN, mg(mailgun_email.provider_message_id, MG_DELIVERED))
    mailgun_email.refresh_from_db()
    assert mailgun_email.status == "delivered"
