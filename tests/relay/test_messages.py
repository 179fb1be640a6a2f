"""What an SMTP client sends lands in the stored email, as the API shows it; bad mail stores nothing."""

import base64
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from django.utils import timezone

from emails.models import Email, EmailAttachment, IdempotencyRecord
from tests.conftest import assert_ok
from tests.relay.conftest import message, queued_id, transaction

pytestmark = pytest.mark.django_db(transaction=True)


def _full_message() -> EmailMessage:
    built = EmailMessage()
    built["From"] = '"Acme Support" <support@acme.test>'
    built["To"] = "Ann Lee <ann@example.com>, bob@example.com"
    built["Cc"] = "Carol <carol@example.com>"
    built["Reply-To"] = "help@acme.test"
    built["Subject"] = "Your invoice for März"
    built["X-Campaign"] = "spring"
    built["X-Mailroom-Tags"] = "invoice, billing"
    built["X-Mailroom-Track-Opens"] = "true"
    built["X-Mailroom-Track-Clicks"] = "no"
    built["X-Mailroom-Metadata"] = '{"order": "1234"}'
    built["In-Reply-To"] = "<thread-1@acme.test>"
    built["List-Unsubscribe"] = "<mailto:unsubscribe@acme.test>"  # the platform's own header: dropped
    built["X-Mailer"] = "smtplib"
    built.set_content("Hello Ann,\nyour invoice is attached.\n")
    built.add_alternative("<p>Hello <b>Ann</b>, your invoice is attached.</p>\n", subtype="html")
    built.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    built.add_attachment("a,b\n1,2\n", subtype="csv", filename="rows.csv")
    return built


def test_a_multipart_message_lands_in_the_stored_email_with_every_field(relay, api, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    email_id = queued_id(transaction(
        client, "bounces@acme.test",
        ["ann@example.com", "BOB@example.com", "carol@example.com", "dave@example.com"], _full_message()))
    client.quit()

    data = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{email_id}"))
    assert data["from"] == "Acme Support <support@acme.test>"
    assert data["to"] == ["Ann Lee <ann@example.com>", "bob@example.com"]
    assert data["cc"] == ["Carol <carol@example.com>"]
    assert data["bcc"] == ["dave@example.com"]  # an envelope recipient in no header
    assert data["reply_to"] == ["help@acme.test"]
    assert data["subject"] == "Your invoice for März"
    assert data["text"] == "Hello Ann,\nyour invoice is attached.\n"
    # X-Mailroom-Track-Opens: true, so the open pixel follows the HTML as sent.
    assert data["html"].startswith("<p>Hello <b>Ann</b>, your invoice is attached.</p>\n<img src=")
    assert data["tags"] == ["invoice", "billing"]
    assert data["metadata"] == {"order": "1234"}
    assert data["environment"] == "live" and data["status"] == "queued"
    assert data["headers"] == {"X-Campaign": "spring", "In-Reply-To": "<thread-1@acme.test>",
                               "X-Mailer": "smtplib"}
    assert data["attachments"] == [
        {"filename": "invoice.pdf", "content_type": "application/pdf", "size": 16},
        {"filename": "rows.csv", "content_type": "text/csv", "size": 10},
    ]
    email = Email.objects.get(public_id=email_id)
    assert (email.track_opens, email.track_clicks) == (True, False)
    assert bytes(EmailAttachment.objects.get(email=email, filename="invoice.pdf").content) == b"%PDF-1.4 invoice"
    # A text attachment travels in canonical form (CRLF line ends, RFC 2046 section 4.1.1) and
    # is kept that way.
    assert bytes(EmailAttachment.objects.get(email=email, filename="rows.csv").content) == b"a,b\r\n1,2\r\n"
    assert sorted(email.recipients.values_list("kind", "address")) == [
        ("bcc", "dave@example.com"), ("cc", "carol@example.com"), ("to", "ann@example.com"),
        ("to", "bob@example.com")]


def test_a_plain_text_message_without_display_names(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    raw = (b"From: hello@acme.test\r\nTo: ann@example.com\r\nSubject: Plain\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nJust text.\r\n")
    email = Email.objects.get(public_id=queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], raw)))
    assert (email.from_header, email.to, email.cc, email.bcc) == ("hello@acme.test", ["ann@example.com"], [], [])
    assert (email.text, email.html, email.headers) == ("Just text.\n", None, {})
    client.quit()


def test_header_addresses_not_in_the_envelope_are_not_mailed(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    email_id = queued_id(transaction(client, "hello@acme.test", ["ann@example.com"],
                                     message(to="ann@example.com, eve@example.com", Cc="mallory@example.com")))
    email = Email.objects.get(public_id=email_id)
    assert (email.to, email.cc, email.bcc) == (["ann@example.com"], [], [])
    client.quit()


def test_the_idempotency_header_replays_the_first_email(relay, api, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    first = transaction(client, "hello@acme.test", ["ann@example.com"],
                        message(X_Mailroom_Idempotency_Key="order-1234-receipt"))
    again = transaction(client, "hello@acme.test", ["ann@example.com"],
                        message(X_Mailroom_Idempotency_Key="order-1234-receipt"))
    email_id = queued_id(first)
    assert again == (250, f"2.0.0 Ok: queued as {email_id} (idempotent replay)".encode())
    assert Email.objects.count() == 1
    # The same key with different content is refused, and stores nothing.
    code, reply = transaction(client, "hello@acme.test", ["ann@example.com"],
                              message(text="Different", X_Mailroom_Idempotency_Key="order-1234-receipt"))
    assert code == 550 and reply.startswith(b"5.6.0 This idempotency key was used with a different"), reply
    assert Email.objects.count() == 1
    client.quit()


@pytest.mark.parametrize("content, field_reply", [
    (message(subject=""), b"5.6.0 The email is invalid: subject: A subject is required"),
    (message(X_Mailroom_Track_Opens="maybe"), b"5.6.0 The email is invalid: X-Mailroom-Track-Opens: Must be true or false."),
    (message(X_Mailroom_Tag="typo"), b"5.6.0 The email is invalid: X-Mailroom-Tag: Unknown Mailroom header"),
    (message(X_Mailroom_Tags="ok, not ok!"), b"5.6.0 The email is invalid: tags.1: Letters, digits"),
    (message(X_Mailroom_Metadata="[1, 2]"), b"5.6.0 The email is invalid: metadata: Must be a flat object."),
    (message(to="undisclosed-recipients:;"), b"5.6.0 The email is invalid: to: The To header must name"),
    (message(sender="a@acme.test, b@acme.test"), b"5.6.0 The email is invalid: from: The From header must hold"),
    (message(sender="Acme <a..b@acme.test>"), b"5.6.0 The email is invalid: from: 'a..b@acme.test' is not a valid"),
])
def test_invalid_mail_is_550_with_the_reason_and_stores_nothing(relay, tenants, smtp_login, content, field_reply):
    client = relay.login(smtp_login(tenants.a1))
    code, reply = transaction(client, "hello@acme.test", ["ann@example.com"], content)
    assert code == 550 and reply.startswith(field_reply), reply
    assert Email.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0
    client.quit()


def test_attachments_over_the_api_limit_are_552(make_relay, tenants, smtp_login, settings):
    client = make_relay().login(smtp_login(tenants.a1))
    built = message()
    for i in range(11):
        built.add_attachment(b"x", maintype="application", subtype="octet-stream", filename=f"f{i}.bin")
    code, reply = transaction(client, "hello@acme.test", ["ann@example.com"], built)
    assert code == 550 and reply.startswith(b"5.6.0 The email is invalid: attachments: At most 10"), reply
    assert Email.objects.count() == 0
    client.quit()


def test_a_suppressed_recipient_is_550_when_every_to_is_suppressed(relay, api, tenants, smtp_login):
    assert_ok(api(tenants.a1.live_key).post("/api/v1/suppressions", {"address": "gone@example.com"},
                                            format="json"), 201)
    client = relay.login(smtp_login(tenants.a1))
    code, reply = transaction(client, "hello@acme.test", ["gone@example.com"], message(to="gone@example.com"))
    assert code == 550 and reply.startswith(b"5.7.1 Every 'to' recipient is on the suppression list"), reply
    assert Email.objects.count() == 0
    # Another tenant's suppression list is its own.
    other = relay.login(smtp_login(tenants.b1))
    queued_id(transaction(other, "hello@acme.test", ["gone@example.com"], message(to="gone@example.com")))
    client.quit()
    other.quit()


def test_an_attached_message_and_an_unnamed_part_become_attachments(relay, tenants, smtp_login):
    inner = message(subject="Forwarded", text="Inner body")
    built = message(text="See the attached message.")
    built.add_attachment(inner)
    raw_part = EmailMessage()
    raw_part.set_content(b"\x89PNG...", maintype="image", subtype="png")
    built.attach(raw_part)
    client = relay.login(smtp_login(tenants.a1))
    email = Email.objects.get(public_id=queued_id(transaction(client, "hello@acme.test", ["ann@example.com"],
                                                              built)))
    rows = {a.filename: (a.content_type, bytes(a.content)) for a in email.attachments.all()}
    assert set(rows) == {"attachment-1.eml", "attachment-2.png"}
    assert rows["attachment-1.eml"][0] == "message/rfc822"
    assert b"Subject: Forwarded" in rows["attachment-1.eml"][1]
    assert rows["attachment-2.png"] == ("image/png", b"\x89PNG...")
    assert email.text == "See the attached message.\n"
    client.quit()


def test_base64_and_quoted_printable_bodies_are_decoded(relay, tenants, smtp_login):
    text = base64.b64encode("Grüße aus Köln".encode()).decode()
    raw = ("From: hello@acme.test\r\nTo: ann@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b1\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           f"{text}\r\n"
           "--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           "<p>Gr=C3=BC=C3=9Fe</p>\r\n--b1--\r\n").encode()
    client = relay.login(smtp_login(tenants.a1))
    email = Email.objects.get(public_id=queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], raw)))
    assert (email.subject, email.text, email.html) == ("Grüße", "Grüße aus Köln", "<p>Grüße</p>")
    client.quit()


def _decoded(header: str) -> str:
    return str(make_header(decode_header(header)))


def test_raw_utf8_headers_8bit_bodies_and_encoded_file_names(relay, tenants, smtp_login):
    raw = ("From: Jörg Müller <joerg@acme.test>\r\nTo: Zoë <zoe@example.com>\r\nSubject: Grüße\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "Schöne Grüße\r\n"
           "--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           "Content-Disposition: attachment; filename=\"=?utf-8?q?Rechnung_M=C3=A4rz.pdf?=\"\r\n\r\n"
           "JVBERi0xLjQ=\r\n"
           "--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename*=utf-8''d%C3%A9tail%2Fx.csv\r\n"
           "\r\na,b\r\n--b1--\r\n").encode()
    client = relay.login(smtp_login(tenants.a1))
    email = Email.objects.get(public_id=queued_id(transaction(client, "joerg@acme.test", ["zoe@example.com"], raw)))
    # Stored as the API stores the same names (RFC 2047 words, emails.validation.Address.header).
    assert [_decoded(email.from_header), _decoded(email.to[0])] == [
        "Jörg Müller <joerg@acme.test>", "Zoë <zoe@example.com>"]
    assert (email.subject, email.text) == ("Grüße", "Schöne Grüße")
    assert sorted(email.attachments.values_list("filename", "content_type")) == [
        ("Rechnung März.pdf", "application/pdf"), ("détail_x.csv", "text/csv")]  # no path separators
    client.quit()


def test_scheduling_and_unsubscribe_headers_map_to_the_api_fields(relay, api, tenants, smtp_login):
    when = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    client = relay.login(smtp_login(tenants.a1))
    email_id = queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message(
        X_Mailroom_Scheduled_At=when.isoformat().replace("+00:00", "Z"), X_Mailroom_Unsubscribe="yes")))
    data = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{email_id}"))
    assert data["status"] == "scheduled"
    assert data["scheduled_at"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
    assert Email.objects.get(public_id=email_id).unsubscribe is True
    client.quit()

