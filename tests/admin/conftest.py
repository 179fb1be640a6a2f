"""Admin fixtures: a superuser, a support-group user, and mail made through the real services."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.staff import support_group_setup
from emails import services

PASSWORD = "a-long-password-1"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, settings):
    """Accepted mail is not published to a broker here (tests call email_dispatch themselves)."""
    from emails.services import accept

    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: None)
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: None)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)


@pytest.fixture
def support_user(db):
    user = get_user_model().objects.create_user("helpdesk", "helpdesk@example.com", PASSWORD, is_staff=True)
    user.groups.add(support_group_setup())
    return user


@pytest.fixture
def operator(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def support(support_user):
    client = Client()
    client.force_login(support_user)
    return client


def send(tenant, *, environment: str = "live", **fields):
    """One email through ``email_send`` (validation, recipients, queued event, quota)."""
    data = {"from": "Acme <hello@acme.test>", "to": "user@example.com", "subject": "Hello", "text": "Hi there"}
    data.update(fields)
    return services.email_send(subaccount=tenant.subaccount, environment=environment, data=data)
