"""RFC 3464 delivery status notifications fed in through ``manage.py ingest_dsn``."""

import io

import pytest
from django.core.management import call_command

from emails.models import EmailEvent, Suppression
from emails.services import email_dispatch
from tests.conftest import assert_error


def dsn(*, message_id: str, public_id: str | None, recipient: str = "ann@example.com", action: str = "failed",
        status: str = "5.1.1", report_id: str = "<20260301100000.3F2A1@mx.example.com>") -> bytes:
    mailroom_id = f"X-Mailroom-Id: {public_id}\n" if public_id else ""
    return f"""Return-Path: <>
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@bounces.mailroom.local
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="3F2A1.1772359200/mx.example.com"

--3F2A1.1772359200/mx.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.
I'm sorry to have to inform you that your message could not be delivered.

--3F2A1.1772359200/mx.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
X-Postfix-Queue-ID: 3F2A1
Arrival-Date: Sun,  1 Mar 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F2A1.1772359200/mx.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Acme <hello@acme.test>
To: {recipient}
Subject: Hi
Message-ID: {message_id}
{mailroom_id}
--3F2A1.1772359200/mx.example.com--
""".replace("\n", "\r\n").encode()


@pytest.fixture
def relayed(send, tenants, smtp_sink):
    email = send(tenants.a1.live_key)
    email_dispatch(ids=[email.pk])
    smtp_sink.wait_for(1)
    email.refresh_from_db()
    assert email.status == "sent" and email.provider_message_id == ""
    return email


def _ingest(tmp_path, raw: bytes) -> str:
    path = tmp_path / "bounce.eml"
    path.write_bytes(raw)
    out = io.StringIO()
    call_command("ingest_dsn", str(path), stdout=out)
    return out.getvalue()


def test_a_permanent_failure_is_a_hard_bounce_and_suppresses(relayed, tmp_path, send, tenants):
    out = _ingest(tmp_path, dsn(message_id=relayed.message_id, public_id=relayed.public_id))
    assert f"ann@example.com {relayed.public_id} bounced recorded" in out
    relayed.refresh_from_db()
    assert relayed.status == "bounced"
    [event] = EmailEvent.objects.filter(email=relayed, type="bounced")
    assert event.recipient == "ann@example.com"
    assert event.data["bounce_type"] == "hard" and event.data["status"] == "5.1.1"
    assert event.data["reason"].startswith("smtp; 550 5.1.1 <ann@example.com>: Recipient address rejected")
    assert Suppression.objects.get().reason == "bounce"
    assert_error(send(tenants.a1.live_key, expect=422), 422, "recipient_suppressed")


def test_the_same_dsn_twice_is_recorded_once(relayed, tmp_path):
    raw = dsn(message_id=relayed.message_id, public_id=relayed.public_id)
    _ingest(tmp_path, raw)
    assert "already recorded" in _ingest(tmp_path, raw)
    assert EmailEvent.objects.filter(email=relayed, type="bounced").count() == 1


@pytest.mark.parametrize(("action", "status"), [("failed", "4.2.2"), ("delayed", "4.4.1")])
def test_a_temporary_failure_or_delay_is_delivery_delayed(relayed, tmp_path, action, status):
    _ingest(tmp_path, dsn(message_id=relayed.message_id, public_id=relayed.public_id, action=action, status=status))
    relayed.refresh_from_db()
    assert relayed.status == "delivery_delayed" and not Suppression.objects.exists()


def test_the_message_id_alone_finds_the_email(relayed, tmp_path):
    _ingest(tmp_path, dsn(message_id=relayed.message_id, public_id=None, action="delivered", status="2.0.0"))
    relayed.refresh_from_db()
    assert relayed.status == "delivered"


def test_a_report_about_someone_else_or_an_unknown_message_changes_nothing(relayed, tmp_path):
    out = _ingest(tmp_path, dsn(message_id=relayed.message_id, public_id=relayed.public_id,
                                recipient="victim@example.org"))
    assert "not a recipient of this email" in out
    out = _ingest(tmp_path, dsn(message_id="<msg_AAAAAAAAAAAAAAAAAAAAAAAA@acme.test>", public_id=None,
                                report_id="<other@mx>"))
    assert "unknown message" in out
    out = _ingest(tmp_path, dsn(message_id="<forged@acme.test>", public_id=relayed.public_id, report_id="<x@mx>"))
    assert "unknown message" in out  # the returned Message-ID must be the one we made
    relayed.refresh_from_db()
    assert relayed.status == "sent" and not Suppression.objects.exists()


def test_a_message_that_is_not_a_dsn_is_skipped(tmp_path, db):
    out = _ingest(tmp_path, b"From: a@b.example\r\nSubject: hello\r\n\r\nJust mail.\r\n")
    assert "not a delivery status notification" in out
