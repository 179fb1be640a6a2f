"""The support group looks but never acts; staff without permissions see nothing."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from accounts.models import Account, AuditLog, TenantStatus
from accounts.staff import SUPPORT_APPS, support_group_setup
from emails.models import Email, EmailStatus
from tests.admin.conftest import PASSWORD, send

pytestmark = pytest.mark.django_db


def test_the_support_group_holds_exactly_the_view_permissions_of_mailroom_apps(support_user):
    group = support_user.groups.get()
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert codenames and all(code.startswith("view_") and app in SUPPORT_APPS for app, code in codenames)
    assert ("emails", "view_email") in codenames and ("accounts", "view_auditlog") in codenames
    expected = Permission.objects.filter(content_type__app_label__in=SUPPORT_APPS, codename__startswith="view_")
    assert len(codenames) == expected.count()
    # Running it again changes nothing (and removes anything added by hand).
    group.permissions.add(Permission.objects.get(codename="change_email"))
    assert set(support_group_setup().permissions.values_list("content_type__app_label", "codename")) == codenames


def test_the_setup_command_creates_the_group(db, capsys):
    from django.core.management import call_command

    call_command("setup_support_group")
    assert 'Group "support":' in capsys.readouterr().out
    assert get_user_model().objects.count() == 0  # it makes the group, not users


def test_support_sees_lists_without_actions(support, tenants):
    send(tenants.a1)
    for url in ("/admin/emails/email/", "/admin/accounts/account/", "/admin/accounts/subaccount/",
                "/admin/accounts/apikey/", "/admin/webhooks/webhookevent/", "/admin/domains/domain/",
                "/admin/emails/suppression/"):
        page = support.get(url)
        assert page.status_code == 200, url
        assert b'name="action"' not in page.content, url  # no action menu at all


@pytest.mark.parametrize("model, action, target", [
    ("accounts/account", "suspend", "account"),
    ("emails/email", "cancel", "email"),
])
def test_support_cannot_run_an_action_by_posting_it(support, tenants, model, action, target):
    email = send(tenants.a1)
    pk = {"account": tenants.a1.account.pk, "email": email.pk}[target]
    response = support.post(f"/admin/{model}/", {"action": action, "_selected_action": [pk]})

    assert response.status_code == 403
    assert Account.objects.get(pk=tenants.a1.account.pk).status == TenantStatus.ACTIVE
    assert Email.objects.get(pk=email.pk).status == EmailStatus.QUEUED
    assert not AuditLog.objects.exists()


def test_support_cannot_change_add_or_delete(support, tenants):
    account = tenants.a1.account
    change = support.post(f"/admin/accounts/account/{account.pk}/change/", {"name": "Renamed", "plan": account.plan_id})
    assert change.status_code == 403
    assert Account.objects.get(pk=account.pk).name == "Account A"
    assert support.get("/admin/accounts/account/add/").status_code == 403
    assert support.post(f"/admin/accounts/account/{account.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Account.objects.filter(pk=account.pk).exists()
    # The detail page is a view page.
    page = support.get(f"/admin/accounts/account/{account.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_support_can_read_the_audit_log_but_nobody_can_edit_it(support, operator, superuser, tenants):
    operator.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [tenants.a1.account.pk]})
    entry = AuditLog.objects.get()
    listing = support.get("/admin/accounts/auditlog/").content.decode()
    assert "accounts.account.suspend" in listing and "ops" in listing
    for client in (support, operator):
        assert client.get(f"/admin/accounts/auditlog/{entry.pk}/change/").status_code == 200
        assert client.post(f"/admin/accounts/auditlog/{entry.pk}/change/", {"action": "x"}).status_code == 403
        assert client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
        assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert AuditLog.objects.count() == 1


def test_staff_without_any_permission_sees_no_dashboard_and_no_models(client, tenants):
    user = get_user_model().objects.create_user("intern", "i@example.com", PASSWORD, is_staff=True)
    client.force_login(user)
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b'id="operations-dashboard"' not in index.content
    assert client.get("/admin/emails/email/").status_code == 403
