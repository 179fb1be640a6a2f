"""Every model has a list and a detail page, for superusers and for the read-only support group."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog
from domains.models import Domain, DomainStatus
from emails import services
from emails.models import (
    DeliveryAttempt,
    Email,
    EmailAttachment,
    EmailEvent,
    EmailRecipient,
    IdempotencyRecord,
    MonthlyUsage,
    Suppression,
    TrackedLink,
    TrackingHit,
)
from tests.admin.conftest import send
from webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

# Staff users and groups belong to the superusers (accounts/staff.py).
NOT_FOR_SUPPORT = {"auth"}


@pytest.fixture
def world(tenants, superuser):
    """At least one row of every model, made the way the platform makes them where it is cheap."""
    now = timezone.now()
    sent = send(tenants.a1, environment="test", to="delivered@simulator.mailroom.test",
                html='<p>Hi <a href="https://example.com/x">there</a></p>', track_clicks=True,
                attachments=[{"filename": "a.txt", "content": "aGVsbG8=", "content_type": "text/plain"}])
    services.email_dispatch(ids=[sent.pk])
    send(tenants.b1, to="queued@example.com")
    services.suppression_add(subaccount_id=tenants.a1.subaccount.pk, address="gone@example.com", reason="bounce")
    IdempotencyRecord.objects.create(subaccount=tenants.a1.subaccount, key="order-1", request_hash="x" * 64,
                                     expires_at=now + timedelta(days=1))
    TrackingHit.objects.create(kind="o", email_public_id=sent.public_id, created_at=now)
    endpoint = WebhookEndpoint.objects.create(subaccount=tenants.a1.subaccount, url="https://hooks.example.com/in",
                                              secret="whsec_" + "A" * 43, failing_since=now - timedelta(hours=3))
    event = WebhookEvent.objects.create(endpoint=endpoint, event_type="email.sent", body="{}",
                                        next_attempt_at=now)
    WebhookAttempt.objects.create(event=event, attempted_at=now, webhook_timestamp=int(now.timestamp()),
                                  status_code=500, error="HTTP 500")
    Domain.objects.create(subaccount=tenants.a1.subaccount, name="acme.test", verification_token="t",
                          status=DomainStatus.FAILED, failed_at=now, last_error="No SPF record.")
    AuditLog.objects.create(actor=superuser, actor_username="ops", action="accounts.account.suspend",
                            object_type="accounts.account", object_id=str(tenants.b1.account.pk),
                            object_repr=str(tenants.b1.account), details={"outcome": "done"})
    assert all(model.objects.exists() for model in (
        Email, EmailEvent, DeliveryAttempt, EmailRecipient, EmailAttachment, TrackedLink, Suppression,
        MonthlyUsage))
    return tenants


def _registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_model_of_every_app_is_registered():
    from django.apps import apps

    ours = {"accounts", "emails", "templates_app", "domains", "webhooks", "analytics"}
    missing = [m._meta.label for m in apps.get_models() if m._meta.app_label in ours
               and m not in admin.site._registry]
    assert missing == []


def test_every_list_and_detail_page_renders_for_a_superuser(operator, world):
    for model, model_admin in _registered():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = operator.get(url)
        assert response.status_code == 200, url
        obj = model_admin.get_queryset(response.wsgi_request).first()
        if obj is not None and opts.model_name != "dashboard":
            detail = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert operator.get(detail).status_code == 200, detail


def test_every_mailroom_page_renders_for_support_and_staff_pages_do_not(support, world):
    for model, model_admin in _registered():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = support.get(url)
        if opts.app_label in NOT_FOR_SUPPORT:
            assert response.status_code == 403, url
            continue
        assert response.status_code == 200, url
        obj = model_admin.get_queryset(response.wsgi_request).first()
        if obj is not None and opts.model_name != "dashboard":
            detail = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            page = support.get(detail)
            assert page.status_code == 200, detail
            # A view page: no save buttons, no editable inputs of the model's fields.
            assert b'name="_save"' not in page.content, detail


def test_the_index_is_the_operations_dashboard_for_both(operator, support, world):
    for client in (operator, support):
        page = client.get("/admin/").content.decode()
        assert 'id="operations-dashboard"' in page
        assert 'href="/admin/emails/email/"' in page
