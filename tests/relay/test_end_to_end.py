"""Real clients end to end: swaks (PLAIN and LOGIN) and smtplib through the relay, out through the
worker's dispatch to the SMTP sink, DKIM-signed with the verified domain's key."""

import re
import shutil
import subprocess
from email.message import EmailMessage

import dkim
import pytest

from emails.models import Email
from emails.services import email_dispatch
from tests.conftest import assert_ok, require_service
from tests.relay.conftest import queued_id, transaction

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def swaks():
    path = shutil.which("swaks")
    require_service("swaks (apt-get install swaks)", path is not None)
    return path


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_sends_through_starttls_and_auth(swaks, relay, api, tenants, smtp_login, tmp_path, mechanism):
    login = smtp_login(tenants.a1)
    attachment = tmp_path / "report.pdf"
    attachment.write_bytes(b"%PDF-1.4 quarterly report")
    result = subprocess.run(
        [swaks, "--server", "localhost", "--port", str(relay.port), "--tls", "--tls-verify",
         "--tls-ca-path", str(relay.cert), "--auth", mechanism, "--auth-user", login.username,
         "--auth-password", login.password, "--from", "reports@acme.test", "--to", "ann@example.com",
         "--header", "Subject: Quarterly report", "--header", "X-Mailroom-Tags: reports",
         "--body", "The report is attached.", "--attach-type", "application/pdf", "--attach", f"@{attachment}"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"AUTH {mechanism}" in result.stdout
    match = re.search(r"<~  250 2\.0\.0 Ok: queued as (msg_[A-Za-z0-9]{24})", result.stdout)
    assert match, result.stdout
    data = assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{match.group(1)}"))
    assert (data["from"], data["to"], data["subject"], data["tags"]) == (
        "reports@acme.test", ["ann@example.com"], "Quarterly report", ["reports"])
    assert data["text"].strip() == "The report is attached."
    assert data["attachments"] == [{"filename": "report.pdf", "content_type": "application/pdf", "size": 25}]
    assert data["headers"]["X-Mailer"].startswith("swaks")


def test_swaks_with_a_wrong_password_gets_535(swaks, relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    result = subprocess.run(
        [swaks, "--server", "localhost", "--port", str(relay.port), "--tls", "--auth", "LOGIN",
         "--auth-user", login.username, "--auth-password", "mr_smtp_wrong", "--from", "a@acme.test",
         "--to", "ann@example.com"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "<~* 535 5.7.8 Authentication credentials invalid" in result.stdout, result.stdout


def test_an_accepted_message_is_delivered_dkim_signed(relay, api, tenants, smtp_login, settings, verified_domain,
                                                      smtp_sink):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    domain = verified_domain(tenants.a1, "acme.example")
    client = relay.login(smtp_login(tenants.a1))
    built = EmailMessage()
    built["From"] = "Acme <hello@acme.example>"
    built["To"] = "Ann <ann@example.com>"
    built["Subject"] = "Welcome"
    built["X-Campaign"] = "onboarding"
    built.set_content("Welcome aboard.")
    built.add_alternative("<p>Welcome aboard.</p>", subtype="html")
    built.add_attachment(b"%PDF-1.4 guide", maintype="application", subtype="pdf", filename="guide.pdf")
    email_id = queued_id(transaction(client, "hello@acme.example", ["ann@example.com", "audit@example.com"], built))
    client.quit()

    email = Email.objects.get(public_id=email_id)
    assert email_dispatch(ids=[email.pk]) == 1
    [received] = smtp_sink.wait_for(1)
    assert sorted(received["rcpt_tos"]) == ["ann@example.com", "audit@example.com"]
    delivered = received["message"]
    assert (delivered["From"], delivered["To"], delivered["Subject"], delivered["X-Campaign"]) == (
        "Acme <hello@acme.example>", "Ann <ann@example.com>", "Welcome", "onboarding")
    assert delivered["Bcc"] is None  # audit@ was a Bcc: in the envelope only
    assert delivered["Message-ID"] == f"<{email_id}@acme.example>"
    assert delivered.get_body(preferencelist=("plain",)).get_content().strip() == "Welcome aboard."
    [attachment] = list(delivered.iter_attachments())
    assert (attachment.get_filename(), attachment.get_content()) == ("guide.pdf", b"%PDF-1.4 guide")

    records = {r["name"]: r["value"] for r in domain["dns_records"] if r["purpose"] == "dkim"}

    def dns(name, timeout=5):
        return records.get(name.decode().rstrip(".")).encode()

    assert delivered["DKIM-Signature"] is not None
    assert dkim.verify(received["raw"], dnsfunc=dns)
    assert assert_ok(api(tenants.a1.live_key).get(f"/api/v1/emails/{email_id}"))["status"] == "sent"
