"""The SMTP conversation with a real smtplib client: TLS, AUTH, limits and every rejection."""

import base64
import smtplib
import time

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper

from accounts import services as account_services
from accounts.models import Plan
from emails.models import Email, MonthlyUsage
from emails.relay import credentials
from emails.services.quota import month_start
from tests.relay.conftest import (
    login_with_time_left,
    loopback_ip_with_time_left,
    message,
    queued_id,
    transaction,
    wire,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _plain(username: str, password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{username}\0{password}".encode()).decode()


def test_ehlo_offers_starttls_and_size_and_auth_only_after_starttls(relay):
    client = relay.connect()
    assert client.has_extn("starttls")
    assert client.esmtp_features["size"] == "10485760"
    assert not client.has_extn("auth")
    client.starttls(context=relay.client_context())
    client.ehlo("client.example")
    assert sorted(client.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
    assert client.esmtp_features["size"] == "10485760"
    assert not client.has_extn("starttls")
    client.quit()


def test_auth_and_mail_before_starttls_are_refused_with_530(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    client = relay.connect()
    code, reply = client.docmd("AUTH", _plain(login.username, login.password))
    assert (code, reply) == (530, b"Must issue a STARTTLS command first")
    code, _ = client.docmd("MAIL", "FROM:<hello@acme.test>")
    assert code == 530
    client.quit()


def test_mail_before_auth_is_refused_with_530(relay):
    client = relay.secure()
    assert client.mail("hello@acme.test") == (530, b"5.7.0 Authentication required")
    client.quit()


def test_plaintext_auth_on_loopback_needs_the_development_setting(make_relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    relay = make_relay(allow_plaintext_auth=True)
    client = relay.connect()
    assert sorted(client.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
    assert client.has_extn("starttls")  # still offered, and still the way for everyone else
    client.login(login.username, login.password)
    email_id = queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert Email.objects.filter(public_id=email_id).exists()
    client.quit()


def test_wrong_or_unknown_credentials_are_535(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    client = relay.secure()
    assert client.docmd("AUTH", _plain(login.username, "mr_smtp_wrong")) == (
        535, b"5.7.8 Authentication credentials invalid")
    assert client.docmd("AUTH", _plain("smtp_live_nobody", login.password))[0] == 535
    with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
        client.login(login.username, "nope")
    assert raised.value.smtp_code == 535
    client.quit()


def test_auth_plain_and_login_both_work(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    for mechanism in ("PLAIN", "LOGIN"):
        client = relay.secure()
        client.user, client.password = login.username, login.password
        code, reply = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"), initial_response_ok=False)
        assert (code, reply) == (235, b"2.7.0 Authentication successful")
        client.quit()


def test_a_revoked_credential_is_535(relay, api, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    response = api(tenants.a1.live_key).delete(f"/api/v1/smtp-credentials/{login.credential.public_id}")
    assert response.status_code == 200
    client = relay.secure()
    assert client.docmd("AUTH", _plain(login.username, login.password))[0] == 535
    client.quit()


def test_revocation_ends_an_open_session_at_its_next_message(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    client = relay.login(login)
    queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    credentials.smtp_credential_revoke(credential=login.credential)
    code, reply = client.mail("hello@acme.test")
    assert code == 421 and reply.startswith(b"4.7.0 The SMTP credential is no longer valid"), reply
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    assert Email.objects.count() == 1


def test_failed_authentications_are_limited_per_client_address(relay, tenants, smtp_login, settings):
    settings.MAILROOM_AUTH_FAILURES_PER_MINUTE = 3
    login = smtp_login(tenants.a1)
    ip = loopback_ip_with_time_left(rate="3/m", need=15)
    client = relay.secure(source_ip=ip)
    for _ in range(3):
        assert client.docmd("AUTH", _plain(login.username, "mr_smtp_guess"))[0] == 535
    # Now even the right password gets 421, so a guesser cannot tell a hit from a miss.
    code, reply = client.docmd("AUTH", _plain(login.username, login.password))
    assert code == 421 and reply.startswith(b"4.7.0 Too many failed authentications from this address"), reply
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    relay.login(login, source_ip="127.0.0.1" if ip != "127.0.0.1" else "127.0.0.2").quit()


def test_too_many_auth_commands_on_one_connection_close_it(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    client = relay.secure()
    for _ in range(5):
        assert client.docmd("AUTH", _plain(login.username, "mr_smtp_guess"))[0] == 535
    assert client.docmd("AUTH", _plain(login.username, login.password))[0] == 421


def test_a_message_over_the_size_limit_is_552_and_nothing_is_stored(make_relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    relay = make_relay(max_message_bytes=20_000)
    client = relay.login(login)
    big = message(text=("x" * 70 + "\n") * 400)
    # Declared in MAIL FROM (SIZE=), as smtplib's sendmail does: refused before any data.
    with pytest.raises(smtplib.SMTPSenderRefused) as raised:
        client.sendmail("hello@acme.test", ["ann@example.com"], wire(big))
    assert raised.value.smtp_code == 552
    # Not declared: refused once the data has arrived.
    client.rset()
    assert client.mail("hello@acme.test")[0] == 250
    assert client.rcpt("ann@example.com")[0] == 250
    code, _ = client.data(wire(big))
    assert code == 552
    assert Email.objects.count() == 0
    client.quit()


def test_a_live_credential_needs_a_verified_mail_from_domain(relay, tenants, smtp_login, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    client = relay.login(smtp_login(tenants.a1))
    code, reply = client.mail("hello@unverified.test")
    assert code == 550
    assert reply.startswith(b"5.7.1 The domain unverified.test is not verified for this sub-account"), reply
    assert Email.objects.count() == 0
    client.quit()


def test_a_verified_domain_may_send_live_mail(relay, tenants, smtp_login, settings, verified_domain):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    verified_domain(tenants.a1, "acme.example")
    client = relay.login(smtp_login(tenants.a1))
    email_id = queued_id(transaction(client, "hello@acme.example", ["ann@example.com"],
                                     message(sender="Acme <hello@acme.example>")))
    email = Email.objects.get(public_id=email_id)
    assert (email.environment, email.from_domain, email.subaccount_id) == ("live", "acme.example",
                                                                           tenants.a1.subaccount.pk)
    # Another tenant's verified domain is not this tenant's.
    other = relay.login(smtp_login(tenants.b1))
    assert other.mail("hello@acme.example")[0] == 550
    client.quit()
    other.quit()


def test_the_from_header_domain_must_be_verified_too(relay, tenants, smtp_login, settings, verified_domain):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    verified_domain(tenants.a1, "acme.example")
    client = relay.login(smtp_login(tenants.a1))
    code, reply = transaction(client, "hello@acme.example", ["ann@example.com"],
                              message(sender="Evil <ceo@bank.example>"))
    assert code == 550 and reply.startswith(b"5.7.1 The domain bank.example is not verified"), reply
    assert Email.objects.count() == 0
    client.quit()


def test_test_credentials_make_test_emails_without_a_verified_domain(relay, tenants, smtp_login, settings):
    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = True
    client = relay.login(smtp_login(tenants.a1, "test"))
    email_id = queued_id(transaction(client, "hello@unverified.test", ["delivered@simulator.mailroom.test"],
                                     message(sender="hello@unverified.test", to="delivered@simulator.mailroom.test")))
    assert Email.objects.get(public_id=email_id).environment == "test"
    client.quit()


def test_the_rate_limit_is_the_plans_per_minute_limit_then_421(relay, tenants, smtp_login):
    tiny = Plan.objects.create(code="tiny", name="Tiny", requests_per_minute=3, monthly_email_quota=None)
    tenants.a1.account.plan = tiny
    tenants.a1.account.save(update_fields=["plan"])
    login = login_with_time_left(smtp_login, tenants.a1, rate="3/m", need=20)
    client = relay.login(login)
    for _ in range(3):
        queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    code, reply = client.mail("hello@acme.test")
    assert code == 421, reply
    assert reply.startswith(b"4.7.0 Rate limit of 3 messages per minute exceeded; try again in "), reply
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    assert Email.objects.count() == 3
    # Another credential has its own budget, as another API key does.
    relay.login(smtp_login(tenants.a1)).quit()


def test_a_credentials_own_rate_limit_applies(relay, tenants, smtp_login):
    login = login_with_time_left(smtp_login, tenants.a1, rate="1/m", need=20, rate_limit=1)
    client = relay.login(login)
    queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert client.mail("hello@acme.test")[0] == 421


def test_an_exhausted_monthly_quota_is_452_and_nothing_is_stored(relay, tenants, smtp_login):
    quota = tenants.a1.account.plan.monthly_email_quota
    MonthlyUsage.objects.create(account=tenants.a1.account, month=month_start(), emails=quota)
    client = relay.login(smtp_login(tenants.a1))
    code, reply = transaction(client, "hello@acme.test", ["ann@example.com"], message())
    assert code == 452 and reply.startswith(b"4.3.1 The monthly email quota is used up"), reply
    assert Email.objects.count() == 0
    # Test mail does not count against the quota.
    test_client = relay.login(smtp_login(tenants.a1, "test"))
    queued_id(transaction(test_client, "hello@acme.test", ["ann@example.com"], message()))
    client.quit()
    test_client.quit()


def test_implicit_tls_mode_serves_auth_from_the_first_byte(make_relay, tenants, smtp_login):
    relay = make_relay(implicit_tls=True)
    client = relay.connect()  # SMTP_SSL, verifying the certificate
    assert not client.has_extn("starttls")
    assert sorted(client.esmtp_features["auth"].split()) == ["LOGIN", "PLAIN"]
    login = smtp_login(tenants.a1)
    client.login(login.username, login.password)
    email_id = queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert Email.objects.filter(public_id=email_id).exists()
    client.quit()


def test_the_reply_carries_the_id_of_the_stored_email(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    first = queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    second = queued_id(transaction(client, "hello@acme.test", ["bob@example.com"], message(to="bob@example.com")))
    assert first != second
    assert sorted(Email.objects.values_list("public_id", flat=True)) == sorted([first, second])
    client.quit()


def _cut_the_relays_database_connections() -> None:
    """Terminate every other connection to the test database (the relay's), and wait until
    they are gone."""
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        for _ in range(100):
            cursor.execute(f"SELECT count(*) {others}")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the relay's database connections did not end")


def test_a_database_outage_is_451_and_nothing_is_stored_then_mail_flows_again(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))  # connections opened
    database = connections.settings["default"]
    original = dict(database)
    try:
        # Every new connection now fails, and the relay's open ones are cut.
        database.update(HOST="127.0.0.1", PORT="1")
        _cut_the_relays_database_connections()
        code, reply = transaction(client, "hello@acme.test", ["ann@example.com"], message())
    finally:
        database.clear()
        database.update(original)
    assert (code, reply) == (451, b"4.3.0 Temporary failure, try again later")
    assert Email.objects.count() == 1
    # The database is back: the same session sends again, on new connections.
    queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert Email.objects.count() == 2
    client.quit()


def test_a_connection_the_database_closed_is_replaced_before_the_next_message(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    for _ in range(3):  # every worker the session used has an open connection
        queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    _cut_the_relays_database_connections()  # as a database restart or an idle timeout would
    queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert Email.objects.count() == 4
    client.quit()


def test_an_open_healthy_connection_is_not_health_checked_before_each_message(relay, tenants, smtp_login,
                                                                              monkeypatch):
    checks = []
    is_usable = DatabaseWrapper.is_usable
    monkeypatch.setattr(DatabaseWrapper, "is_usable", lambda wrapper: checks.append(1) or is_usable(wrapper))
    client = relay.login(smtp_login(tenants.a1))
    for _ in range(3):
        queued_id(transaction(client, "hello@acme.test", ["ann@example.com"], message()))
    assert checks == []  # Django's CONN_HEALTH_CHECKS would run a SELECT 1 per message
    client.quit()


def test_rcpt_refuses_bad_addresses_and_too_many_recipients(relay, tenants, smtp_login):
    client = relay.login(smtp_login(tenants.a1))
    assert client.mail("hello@acme.test")[0] == 250
    code, reply = client.rcpt("not-an-address@")
    assert code in (501, 553), reply
    for i in range(150):
        assert client.rcpt(f"user{i}@example.com")[0] == 250
    code, reply = client.rcpt("one-more@example.com")
    assert code == 452 and reply == b"4.5.3 Too many recipients (at most 150 per message)"
    client.quit()


def test_a_suspended_sub_account_cannot_authenticate_or_send(relay, tenants, smtp_login):
    login = smtp_login(tenants.a1)
    client = relay.login(login)
    account_services.subaccount_suspend(subaccount=tenants.a1.subaccount, reason="billing")
    credentials.forget_all()  # what the 30 s login cache does on its own in another process
    code, reply = client.mail("hello@acme.test")
    assert (code, reply) == (550, b"5.7.1 This sub-account is suspended: billing")
    client.quit()
    other = relay.secure()
    with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
        other.login(login.username, login.password)
    assert (raised.value.smtp_code, raised.value.smtp_error) == (535, b"5.7.8 This sub-account is suspended: billing")
    assert Email.objects.count() == 0
