"""Dispatch (claim -> MIME -> backend -> outcome) against a real SMTP server on loopback."""

import base64
import smtplib
from datetime import timedelta

import pytest
from django.utils import timezone

from emails.models import DeliveryAttempt, Email
from emails.services import email_dispatch, email_sweep
from emails.services.dispatch import MAX_ATTEMPTS
from tests.conftest import assert_ok


def _send(send, key, **fields):
    return Email.objects.get(public_id=assert_ok(send(key, **fields), 201)["id"])


def test_a_sent_email_reaches_the_smtp_server_with_its_headers_parts_and_attachments(
        send, tenants, smtp_sink, outbox_tasks):
    pdf = base64.b64encode(b"%PDF-1.4 body").decode()
    email = _send(send, tenants.a1.live_key, to=["Ann <ann@example.com>"], cc="cc@example.com",
                  bcc="hidden@example.com", reply_to="help@acme.test", html="<p>Hello <b>Ann</b></p>",
                  text="Hello Ann", headers={"X-Campaign": "spring"},
                  attachments=[{"filename": "invoice.pdf", "content": pdf}])
    assert email_dispatch(ids=[email.pk]) == 1
    [received] = smtp_sink.wait_for(1)
    message = received["message"]
    assert sorted(received["rcpt_tos"]) == ["ann@example.com", "cc@example.com", "hidden@example.com"]
    assert message["From"] == "Acme <hello@acme.test>"
    assert message["To"] == "Ann <ann@example.com>"
    assert message["Cc"] == "cc@example.com"
    assert message["Bcc"] is None
    assert message["Reply-To"] == "help@acme.test"
    assert message["Subject"] == "Hi"
    assert message["Message-ID"] == email.message_id == f"<{email.public_id}@acme.test>"
    assert message["X-Campaign"] == "spring"
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(preferencelist=("html",))
    assert body.get_content().strip() == "<p>Hello <b>Ann</b></p>"
    assert message.get_body(preferencelist=("plain",)).get_content().strip() == "Hello Ann"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 body"
    email.refresh_from_db()
    assert email.status == "sent" and email.sent_at is not None and email.locked_until is None
    assert list(email.events.values_list("type", flat=True)) == ["queued", "sent"]
    attempt = DeliveryAttempt.objects.get(email=email)
    assert (attempt.number, attempt.outcome) == (1, "sent")


def test_suppressed_recipients_are_left_out_of_the_envelope(send, api, tenants, smtp_sink, outbox_tasks):
    assert_ok(api(tenants.a1.live_key).post("/api/v1/suppressions", {"address": "gone@example.com"},
                                            format="json"), 201)
    email = _send(send, tenants.a1.live_key, to=["ok@example.com", "gone@example.com"])
    email_dispatch(ids=[email.pk])
    [received] = smtp_sink.wait_for(1)
    assert received["rcpt_tos"] == ["ok@example.com"]


def test_unsubscribe_adds_rfc8058_headers(send, tenants, smtp_sink, outbox_tasks, settings):
    settings.MAILROOM_PUBLIC_URL = "https://mail.example.net"
    email = _send(send, tenants.a1.live_key, unsubscribe=True)
    email_dispatch(ids=[email.pk])
    [received] = smtp_sink.wait_for(1)
    message = received["message"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://mail.example.net/u/")
    assert f"mailto:unsubscribe+{email.public_id}@" in message["List-Unsubscribe"]


def test_one_connection_carries_a_whole_batch(send, tenants, smtp_sink, outbox_tasks, monkeypatch):
    opened = []
    original = smtplib.SMTP.connect

    def counting_connect(self, *args, **kwargs):
        opened.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "connect", counting_connect)
    emails = [_send(send, tenants.a1.live_key, to=f"u{i}@example.com") for i in range(5)]
    assert email_dispatch(ids=[e.pk for e in emails]) == 5
    smtp_sink.wait_for(5)
    assert len(opened) == 1


def test_the_batch_size_is_a_setting(send, tenants, smtp_sink, outbox_tasks, settings):
    settings.MAILROOM_DISPATCH_BATCH_SIZE = 3
    emails = [_send(send, tenants.a1.live_key, to=f"u{i}@example.com") for i in range(5)]
    assert email_dispatch() == 3 and email_dispatch() == 2 and email_dispatch() == 0
    assert len(smtp_sink.wait_for(5)) == 5
    assert {e.status for e in Email.objects.filter(pk__in=[e.pk for e in emails])} == {"sent"}


@pytest.mark.parametrize(("messages", "size", "expected"), [
    (2, 16 * 1024 * 1024, ["build", "build", "send", "send", "build", "send"]),  # groups of two
    (50, 1, ["build", "send"] * 3),  # every message over the byte cap: sent on its own
])
def test_messages_are_built_and_sent_a_bounded_group_at_a_time(send, tenants, smtp_sink, outbox_tasks, monkeypatch,
                                                              messages, size, expected):
    from emails.providers.transport import Transport
    from emails.services import dispatch

    monkeypatch.setattr(dispatch, "GROUP_MESSAGES", messages)
    monkeypatch.setattr(dispatch, "GROUP_BYTES", size)
    steps = []
    build, deliver = dispatch.build_message, Transport.send
    monkeypatch.setattr(dispatch, "build_message", lambda *a, **k: steps.append("build") or build(*a, **k))
    monkeypatch.setattr(Transport, "send", lambda self, m: steps.append("send") or deliver(self, m))
    [_send(send, tenants.a1.live_key, to=f"u{i}@example.com",
           attachments=[{"filename": "a.txt", "content": base64.b64encode(b"attached %d" % i).decode()}])
     for i in range(3)]
    assert email_dispatch() == 3
    assert steps == expected
    received = smtp_sink.wait_for(3)
    assert sorted(m["message"].get_payload()[1].get_payload(decode=True) for m in received) == [
        b"attached 0", b"attached 1", b"attached 2"]


def test_a_long_batch_renews_the_lease_of_what_it_has_not_sent_yet(send, tenants, smtp_sink, outbox_tasks,
                                                                    settings, monkeypatch):
    import time

    from emails.providers.transport import Transport

    settings.MAILROOM_SEND_LEASE_SECONDS = 1
    leases_left = []
    deliver = Transport.send

    def slow_send(self, message):
        time.sleep(0.45)  # four messages take longer than the whole lease
        email = Email.objects.get(public_id=message.email_public_id)
        leases_left.append((email.status, (email.locked_until - timezone.now()).total_seconds()))
        return deliver(self, message)

    monkeypatch.setattr(Transport, "send", slow_send)
    [_send(send, tenants.a1.live_key, to=f"u{i}@example.com") for i in range(4)]
    assert email_dispatch() == 4
    # When each message goes out its row is still claimed: the sweeper would not hand it on.
    assert [status for status, _ in leases_left] == ["sending"] * 4
    assert all(left > 0 for _, left in leases_left), leases_left
    assert email_sweep()["requeued"] == 0 and set(Email.objects.values_list("status", flat=True)) == {"sent"}


def test_a_temporary_smtp_failure_requeues_with_backoff_stored_in_the_database(
        send, tenants, smtp_sink, outbox_tasks):
    smtp_sink.data_replies.append("451 4.3.0 Mailbox busy, try later")
    email = _send(send, tenants.a1.live_key)
    before = timezone.now()
    email_dispatch(ids=[email.pk])
    email.refresh_from_db()
    assert email.status == "queued" and email.attempts == 1
    assert before + timedelta(seconds=20) < email.next_attempt_at < before + timedelta(seconds=40)
    assert "451" in email.last_error
    assert DeliveryAttempt.objects.get(email=email).outcome == "transient_failure"
    assert email_dispatch(ids=[email.pk]) == 0  # not due yet
    Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert email_dispatch(ids=[email.pk]) == 1
    smtp_sink.wait_for(1)
    email.refresh_from_db()
    assert email.status == "sent" and email.attempts == 2
    assert list(email.delivery_attempts.values_list("outcome", flat=True)) == ["transient_failure", "sent"]


def test_a_permanent_smtp_failure_fails_the_email(send, tenants, smtp_sink, outbox_tasks):
    smtp_sink.data_replies.append("550 5.7.1 Rejected by policy")
    email = _send(send, tenants.a1.live_key)
    email_dispatch(ids=[email.pk])
    email.refresh_from_db()
    assert email.status == "failed"
    failed = email.events.get(type="failed")
    assert "550" in failed.data["reason"] and failed.data["permanent"] is True


def test_all_recipients_refused_permanently_fails(send, tenants, smtp_sink, outbox_tasks):
    smtp_sink.rcpt_replies["nobody@example.com"] = "550 5.1.1 No such user"
    email = _send(send, tenants.a1.live_key, to="nobody@example.com")
    email_dispatch(ids=[email.pk])
    email.refresh_from_db()
    assert email.status == "failed"


def test_an_unreachable_server_is_transient_and_after_8_attempts_the_email_fails(
        send, tenants, outbox_tasks, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens
    email = _send(send, tenants.a1.live_key)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert email_dispatch(ids=[email.pk]) == 1
        email.refresh_from_db()
        assert email.attempts == attempt
    assert email.status == "failed"
    assert email.delivery_attempts.count() == MAX_ATTEMPTS
    assert "Connection" in email.last_error or "refused" in email.last_error.lower()


@pytest.mark.parametrize(("address", "expected"), [
    ("delivered@simulator.mailroom.test", ["queued", "sent", "delivered"]),
    ("bounce@simulator.mailroom.test", ["queued", "sent", "bounced"]),
    ("complaint@simulator.mailroom.test", ["queued", "sent", "delivered", "complained"]),
    ("open@simulator.mailroom.test", ["queued", "sent", "delivered", "opened", "clicked"]),
    ("delay@simulator.mailroom.test", ["queued", "sent", "delivery_delayed", "delivered"]),
    ("someone@example.com", ["queued", "sent"]),
])
def test_test_keys_never_reach_the_transport_and_simulator_addresses_make_events(
        send, tenants, smtp_sink, outbox_tasks, address, expected):
    email = _send(send, tenants.a1.test_key, to=address)
    email_dispatch(ids=[email.pk])
    assert smtp_sink.messages == []
    email.refresh_from_db()
    assert list(email.events.order_by("timestamp", "id").values_list("type", flat=True)) == expected
    assert email.delivery_attempts.get().outcome == "simulated"
    assert email.environment == "test"


def test_simulated_bounces_do_not_suppress(send, tenants, outbox_tasks):
    email = _send(send, tenants.a1.test_key, to="bounce@simulator.mailroom.test")
    email_dispatch(ids=[email.pk])
    assert tenants.a1.subaccount.suppressions.count() == 0


def test_the_sweeper_releases_due_scheduled_mail_and_requeues_expired_leases(
        send, tenants, outbox_tasks, django_capture_on_commit_callbacks):
    scheduled = _send(send, tenants.a1.live_key, scheduled_at=(timezone.now() + timedelta(minutes=5)).isoformat())
    assert email_sweep()["released"] == 0
    Email.objects.filter(pk=scheduled.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    stuck = _send(send, tenants.a1.live_key)
    Email.objects.filter(pk=stuck.pk).update(status="sending", locked_until=timezone.now() - timedelta(seconds=1))
    lost = _send(send, tenants.a1.live_key)
    Email.objects.filter(pk=lost.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    fresh = _send(send, tenants.a1.live_key)
    outbox_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True):
        counts = email_sweep()
    assert counts == {"released": 1, "requeued": 1, "republished": 1}
    assert sorted(sum(outbox_tasks, [])) == sorted([scheduled.pk, stuck.pk, lost.pk])
    assert Email.objects.get(pk=scheduled.pk).status == "queued"
    assert Email.objects.get(pk=stuck.pk).status == "queued"
    assert fresh.pk not in sum(outbox_tasks, [])


def test_a_claimed_row_cannot_be_claimed_or_cancelled_again(send, api, tenants, outbox_tasks):
    from emails.services import email_claim

    email = _send(send, tenants.a1.live_key)
    assert email_claim(ids=[email.pk]) == [email.pk]
    assert email_claim(ids=[email.pk]) == []
    response = api(tenants.a1.live_key).post(f"/api/v1/emails/{email.public_id}/cancel")
    assert response.status_code == 409


def test_the_signed_bytes_go_over_the_smtp_session_as_built(send, tenants, smtp_sink, outbox_tasks, monkeypatch):
    from django.core.mail.backends import smtp

    def not_used(self, messages):
        raise AssertionError("send_messages re-parses plain ASCII envelopes; the transport sends directly")

    monkeypatch.setattr(smtp.EmailBackend, "send_messages", not_used)
    email = _send(send, tenants.a1.live_key, to=["Ann <ann@example.com>"], bcc="hidden@example.com")
    assert email_dispatch(ids=[email.pk]) == 1
    [received] = smtp_sink.wait_for(1)
    assert received["mail_from"] == "hello@acme.test"
    assert received["rcpt_tos"] == ["ann@example.com", "hidden@example.com"]
    from emails.services.dispatch import build_message

    email.refresh_from_db()
    assert received["raw"].split(b"\r\n\r\n", 1)[1] == build_message(email).raw.split(b"\r\n\r\n", 1)[1]


def test_an_internationalised_envelope_goes_through_the_backend(send, tenants, smtp_sink, outbox_tasks):
    email = _send(send, tenants.a1.live_key, to="ann@b\u00fccher.example")
    assert email_dispatch(ids=[email.pk]) == 1
    [received] = smtp_sink.wait_for(1)
    assert received["rcpt_tos"] == ["ann@xn--bcher-kva.example"]  # Django's backend IDNA-encodes it


def test_the_django_message_is_built_only_for_backends_that_send_it(send, tenants, smtp_sink, outbox_tasks,
                                                                     monkeypatch, settings):
    from django.core import mail

    from emails.services import dispatch

    built = []
    make = dispatch.outgoing_message
    monkeypatch.setattr(dispatch, "outgoing_message", lambda **kw: built.append(kw["email"].pk) or make(**kw))
    over_smtp = _send(send, tenants.a1.live_key, to="ann@example.com")
    assert email_dispatch() == 1 and len(smtp_sink.wait_for(1)) == 1
    assert built == []  # the SMTP session got the signed bytes; no Django message was made

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    other = _send(send, tenants.a1.live_key, to="Bob <bob@example.com>", cc="cc@example.com")
    assert email_dispatch() == 1
    assert built == [other.pk] and over_smtp.pk not in built
    [sent] = mail.outbox
    assert (sent.to, sent.cc) == (["Bob <bob@example.com>"], ["cc@example.com"])
    assert Email.objects.get(pk=other.pk).status == "sent"


def test_a_message_that_cannot_be_built_fails_and_the_rest_of_the_batch_is_sent(send, tenants, smtp_sink,
                                                                                 outbox_tasks, monkeypatch):
    from emails.services import dispatch

    emails = [_send(send, tenants.a1.live_key, to=f"u{i}@example.com") for i in range(3)]
    build = dispatch.build_message

    def broken_for_the_second(email, *args, **kwargs):
        if email.pk == emails[1].pk:
            raise ValueError("no such charset")
        return build(email, *args, **kwargs)

    monkeypatch.setattr(dispatch, "build_message", broken_for_the_second)
    assert email_dispatch() == 3
    assert sorted(m["rcpt_tos"][0] for m in smtp_sink.wait_for(2)) == ["u0@example.com", "u2@example.com"]
    broken = Email.objects.get(pk=emails[1].pk)
    assert (broken.status, broken.events.filter(type="failed").count()) == ("failed", 1)
    attempt = DeliveryAttempt.objects.get(email=broken)
    assert (attempt.outcome, attempt.response) == ("permanent_failure", "build error: no such charset")
    assert {e.status for e in Email.objects.exclude(pk=broken.pk)} == {"sent"}
