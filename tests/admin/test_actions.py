"""Each operator action does its job through the services and is written to the audit log."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account, ApiKey, AuditLog, Plan, SmtpCredential, SubAccount, TenantStatus
from domains import services as domain_services
from domains.models import DkimKey
from emails import services
from emails.models import Email, EmailStatus, Suppression
from emails.relay.credentials import smtp_credential_create
from templates_app.models import Template
from templates_app.services import template_create
from tests.admin.conftest import send
from tests.conftest import assert_exact_error, assert_ok
from webhooks.models import DeliveryStatus, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


def run_action(client, model: str, action: str, pks: list, **extra):
    app, _, name = model.partition(".")
    return client.post(f"/admin/{app}/{name}/", {"action": action, "_selected_action": [str(pk) for pk in pks],
                                                 **extra}, follow=True)


def audit_rows(action: str) -> list[tuple[str, str, str]]:
    return list(AuditLog.objects.filter(action=action).order_by("id")
                .values_list("actor_username", "object_id", "details__outcome"))


def page_text(response) -> str:
    return response.content.decode()


def test_suspend_and_resume_an_account_block_and_free_its_keys(operator, api, tenants):
    account = tenants.b1.account
    run_action(operator, "accounts.account", "suspend", [account.pk])

    assert Account.objects.get(pk=account.pk).status == TenantStatus.SUSPENDED
    assert_exact_error(api(tenants.b1.live_key).get("/api/v1/emails"), 403, "authorization_error",
                       "This account is suspended: Suspended by ops")
    run_action(operator, "accounts.account", "resume", [account.pk])
    assert_ok(api(tenants.b1.live_key).get("/api/v1/emails"))
    assert audit_rows("accounts.account.suspend") == [("ops", str(account.pk), "done")]
    assert audit_rows("accounts.account.resume") == [("ops", str(account.pk), "done")]
    entry = AuditLog.objects.get(action="accounts.account.suspend")
    assert entry.object_type == "accounts.account" and entry.object_repr == str(account)
    assert entry.actor.username == "ops" and entry.ip == "127.0.0.1"


def test_suspend_and_resume_a_subaccount(operator, api, tenants):
    sub = tenants.a2.subaccount
    run_action(operator, "accounts.subaccount", "suspend", [sub.pk])

    assert_exact_error(api(tenants.a2.live_key).get("/api/v1/emails"), 403, "authorization_error",
                       "This sub-account is suspended: Suspended by ops")
    assert_ok(api(tenants.a1.live_key).get("/api/v1/emails"))
    run_action(operator, "accounts.subaccount", "resume", [sub.pk])
    assert SubAccount.objects.get(pk=sub.pk).status == TenantStatus.ACTIVE
    assert audit_rows("accounts.subaccount.suspend") == [("ops", str(sub.pk), "done")]
    assert audit_rows("accounts.subaccount.resume") == [("ops", str(sub.pk), "done")]


def test_revoke_an_api_key(operator, api, tenants):
    key = ApiKey.objects.get(prefix=tenants.a1.live_key[:12])
    run_action(operator, "accounts.apikey", "revoke", [key.pk])

    assert api(tenants.a1.live_key).get("/api/v1/emails").status_code == 401
    assert audit_rows("accounts.apikey.revoke") == [("ops", str(key.pk), "done")]


def test_revoke_an_smtp_credential(operator, tenants):
    credential, _ = smtp_credential_create(subaccount=tenants.a1.subaccount, environment="live", operator=True)
    run_action(operator, "accounts.smtpcredential", "revoke", [credential.pk])

    assert SmtpCredential.objects.get(pk=credential.pk).revoked_at is not None
    assert audit_rows("accounts.smtpcredential.revoke") == [("ops", str(credential.pk), "done")]


def test_send_a_test_email_asks_first_then_sends_through_the_pipeline(operator, tenants):
    sub = tenants.a1.subaccount
    form = run_action(operator, "accounts.subaccount", "send_test_email", [sub.pk])

    assert 'id="send-test-email"' in page_text(form)
    assert "Mailroom test &lt;test@example.com&gt;" in page_text(form)
    assert not Email.objects.exists() and not AuditLog.objects.exists()  # a form is not an action yet

    done = run_action(operator, "accounts.subaccount", "send_test_email", [sub.pk], apply="1",
                      environment="test", to="delivered@simulator.mailroom.test",
                      sender="Ops <ops@acme.test>", subject="Ping")
    email = Email.objects.get()
    assert (email.subaccount_id, email.environment, email.to, email.subject, email.tags) == (
        sub.pk, "test", ["delivered@simulator.mailroom.test"], "Ping", ["admin-test"])
    assert f"Test email <a href=\"/admin/emails/email/{email.pk}/change/\">{email.public_id}</a> queued" in \
        page_text(done)
    assert audit_rows("accounts.subaccount.send_test_email") == [
        ("ops", str(sub.pk), f"sent {email.public_id} to delivered@simulator.mailroom.test (test)")]


def test_send_a_test_email_shows_the_send_error_and_stores_nothing(operator, tenants):
    response = run_action(operator, "accounts.subaccount", "send_test_email", [tenants.a1.subaccount.pk],
                          apply="1", environment="test", to="a@example.com", sender="not an address",
                          subject="Ping")

    assert response.status_code == 200
    assert 'class="errornote"' in page_text(response) and "from" in page_text(response)
    assert not Email.objects.exists() and not AuditLog.objects.exists()


def test_send_a_test_email_needs_exactly_one_subaccount(operator, tenants):
    response = run_action(operator, "accounts.subaccount", "send_test_email",
                          [tenants.a1.subaccount.pk, tenants.a2.subaccount.pk])

    assert "Select exactly one sub-account" in page_text(response)
    assert not Email.objects.exists()
    assert {row[2] for row in audit_rows("accounts.subaccount.send_test_email")} == {
        "refused: select exactly one sub-account"}


def test_cancel_cancels_queued_mail_and_refuses_mail_already_sent(operator, tenants):
    queued = send(tenants.a1, to="one@example.com")
    gone = send(tenants.a1, environment="test", to="delivered@simulator.mailroom.test")
    services.email_dispatch(ids=[gone.pk], limit=1)

    response = run_action(operator, "emails.email", "cancel", [queued.pk, gone.pk])

    assert Email.objects.get(pk=queued.pk).status == EmailStatus.CANCELLED
    assert Email.objects.get(pk=gone.pk).status != EmailStatus.CANCELLED
    assert "1 email(s) cancelled." in page_text(response)
    assert f"Not cancelled (already picked up or finished): {gone.public_id}" in page_text(response)
    assert dict((pk, outcome) for _, pk, outcome in audit_rows("emails.email.cancel")) == {
        str(queued.pk): "cancelled",
        str(gone.pk): f"refused: An email that is {Email.objects.get(pk=gone.pk).status} cannot be cancelled; "
                      "only queued (not yet picked up) or scheduled emails can."}
    assert list(Email.objects.get(pk=queued.pk).events.values_list("type", flat=True)) == ["queued", "cancelled"]


def test_resend_makes_a_new_email_with_the_same_content(operator, tenants):
    original = send(tenants.a1, to="again@example.com", subject="Invoice", html="<p>Your invoice</p>")
    run_action(operator, "emails.email", "resend", [original.pk])

    copy = Email.objects.exclude(pk=original.pk).get()
    assert (copy.subaccount_id, copy.to, copy.subject, copy.html, copy.status) == (
        original.subaccount_id, ["again@example.com"], "Invoice", "<p>Your invoice</p>", EmailStatus.QUEUED)
    assert audit_rows("emails.email.resend") == [("ops", str(original.pk), f"resent as {copy.public_id}")]


def test_remove_a_suppression(operator, tenants):
    row, _ = services.suppression_add(subaccount_id=tenants.a1.subaccount.pk, address="x@example.com",
                                      reason="bounce")
    run_action(operator, "emails.suppression", "remove", [row.pk])

    assert not Suppression.objects.exists()
    assert audit_rows("emails.suppression.remove") == [("ops", str(row.pk), "removed")]
    assert AuditLog.objects.get().object_repr == "x@example.com (bounce)"


def test_retry_a_webhook_delivery_and_skip_disabled_endpoints(operator, tenants):
    live = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url="https://a.example.com/h",
                                          secret="whsec_" + "A" * 43)
    off = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url="https://b.example.com/h",
                                         secret="whsec_" + "A" * 43, enabled=False, disabled_reason="operator")
    failed = WebhookEvent.objects.create(endpoint=live, event_type="email.sent", body="{}",
                                         status=DeliveryStatus.FAILED, attempt_count=9, next_attempt_at=None)
    parked = WebhookEvent.objects.create(endpoint=off, event_type="email.sent", body="{}",
                                         status=DeliveryStatus.FAILED, next_attempt_at=None)

    response = run_action(operator, "webhooks.webhookevent", "retry_deliveries", [failed.pk, parked.pk])

    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING and failed.next_attempt_at <= timezone.now()
    assert WebhookEvent.objects.get(pk=parked.pk).status == DeliveryStatus.FAILED
    assert "1 skipped: their endpoint is disabled." in page_text(response)
    assert dict((pk, outcome) for _, pk, outcome in audit_rows("webhooks.webhookevent.retry_deliveries")) == {
        str(failed.pk): "queued again", str(parked.pk): "skipped: endpoint disabled"}


def test_disable_and_enable_a_webhook_endpoint(operator, tenants, settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    endpoint = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url="https://127.0.0.1/h",
                                              secret="whsec_" + "A" * 43)
    run_action(operator, "webhooks.webhookendpoint", "disable_endpoints", [endpoint.pk])
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is False
    run_action(operator, "webhooks.webhookendpoint", "enable_endpoints", [endpoint.pk])
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled is True
    assert len(audit_rows("webhooks.webhookendpoint.disable_endpoints")) == 1
    assert len(audit_rows("webhooks.webhookendpoint.enable_endpoints")) == 1


def test_verify_now_and_rotate_dkim(operator, tenants, dns_server):
    domain = domain_services.domain_add(subaccount=tenants.a1.subaccount, domain="acme.test")
    run_action(operator, "domains.domain", "verify_now", [domain.pk])

    domain.refresh_from_db()
    assert domain.last_checked_at is not None
    assert audit_rows("domains.domain.verify_now") == [("ops", str(domain.pk), domain.status)]

    run_action(operator, "domains.domain", "rotate_dkim", [domain.pk])
    assert DkimKey.objects.filter(domain=domain).count() == 2
    assert audit_rows("domains.domain.rotate_dkim") == [("ops", str(domain.pk), "done")]


def test_soft_delete_a_template(operator, tenants):
    template = template_create(subaccount=tenants.a1.subaccount, name="welcome", subject="Hi", text="Hello")
    run_action(operator, "templates_app.template", "soft_delete", [template.pk])

    assert Template.objects.get(pk=template.pk).deleted_at is not None
    assert audit_rows("templates_app.template.soft_delete") == [("ops", str(template.pk), "done")]


def test_form_edits_and_deletions_are_audited_too(operator, superuser):
    plan = Plan.objects.get(code="free")
    response = operator.post(f"/admin/accounts/plan/{plan.pk}/change/", {
        "name": "Free", "code": "free", "requests_per_minute": 61, "monthly_email_quota": 1000})
    assert response.status_code == 302
    entry = AuditLog.objects.get(action="accounts.plan.change")
    assert (entry.actor_username, entry.object_id, entry.details) == (
        "ops", str(plan.pk), {"changes": [{"changed": {"fields": ["Requests per minute"]}}]})

    someone = get_user_model().objects.create_user("temp", "t@example.com", "a-long-password-2", is_staff=True)
    run_action(operator, "auth.user", "delete_selected", [someone.pk], post="yes")
    assert not get_user_model().objects.filter(pk=someone.pk).exists()
    assert audit_rows("auth.user.delete") == [("ops", str(someone.pk), None)]
    assert not AuditLog.objects.filter(action="auth.user.delete_selected").exists()


def test_an_action_over_too_many_rows_is_refused(operator, tenants, monkeypatch):
    from config import admin_site

    monkeypatch.setattr(admin_site, "ACTION_LIMIT", 1)
    first, second = send(tenants.a1), send(tenants.a1)
    response = run_action(operator, "emails.email", "cancel", [first.pk, second.pk])

    assert "Select at most 1 rows for an action; nothing was changed." in page_text(response)
    assert set(Email.objects.values_list("status", flat=True)) == {EmailStatus.QUEUED}
    assert not AuditLog.objects.exists()


def test_every_action_of_every_model_admin_goes_through_the_audit_wrapper(rf, superuser):
    request = rf.get("/admin/")
    request.user = superuser
    for model, model_admin in admin.site._registry.items():
        for name, (func, _, _) in model_admin.get_actions(request).items():
            # delete_selected is audited by log_deletions once confirmed; the rest by the wrapper.
            assert name == "delete_selected" or hasattr(func, "__wrapped__"), (model, name)
