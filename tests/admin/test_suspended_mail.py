"""A suspended tenant's queued mail waits: the claim and the sweeper skip it until resume."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from emails import services
from emails.models import Email, EmailStatus
from tests.admin.conftest import send

pytestmark = pytest.mark.django_db


def test_a_suspended_accounts_queued_mail_is_claimed_only_after_resume(tenants):
    waiting = send(tenants.b1, to="w@example.com")
    other = send(tenants.a1, to="o@example.com")
    account_services.account_suspend(account=tenants.b1.account, reason="unpaid")

    assert services.email_claim(ids=[waiting.pk]) == [other.pk]  # the top-up takes the other tenant's
    assert Email.objects.get(pk=waiting.pk).status == EmailStatus.QUEUED
    assert Email.objects.get(pk=waiting.pk).attempts == 0

    account_services.account_resume(account=tenants.b1.account)
    assert services.email_claim() == [waiting.pk]
    assert Email.objects.get(pk=waiting.pk).status == EmailStatus.SENDING


def test_a_suspended_subaccounts_mail_waits_and_its_siblings_mail_does_not(tenants):
    waiting = send(tenants.a2, to="w@example.com")
    sibling = send(tenants.a1, to="s@example.com")
    account_services.subaccount_suspend(subaccount=tenants.a2.subaccount)

    assert services.email_claim() == [sibling.pk]
    account_services.subaccount_resume(subaccount=tenants.a2.subaccount)
    assert services.email_claim() == [waiting.pk]


def test_the_sweeper_does_not_republish_a_suspended_tenants_mail(tenants):
    stale = timezone.now() - timedelta(hours=1)
    waiting = send(tenants.b1, to="w@example.com")
    Email.objects.filter(pk=waiting.pk).update(enqueued_at=stale)
    account_services.account_suspend(account=tenants.b1.account)

    assert services.email_sweep()["republished"] == 0
    assert Email.objects.get(pk=waiting.pk).enqueued_at == stale

    account_services.account_resume(account=tenants.b1.account)
    assert services.email_sweep()["republished"] == 1


def test_suspending_from_the_admin_holds_mail_already_queued(operator, tenants):
    waiting = send(tenants.b1, to="w@example.com")
    operator.post("/admin/accounts/account/", {"action": "suspend", "_selected_action": [tenants.b1.account.pk]})

    assert services.email_dispatch(ids=[waiting.pk]) == 0
    assert Email.objects.get(pk=waiting.pk).status == EmailStatus.QUEUED
