"""Operators run the platform from Django admin; key digests never reach a page."""

import hashlib

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account, ApiKey, Plan, SubAccount, TenantStatus
from tests.conftest import assert_exact_error, assert_ok


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "a-long-password-1")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["plan", "account", "subaccount", "apikey"])
def test_every_accounts_changelist_renders_for_a_superuser(operator, tenants, model):
    response = operator.get(f"/admin/accounts/{model}/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["X-Request-Id"]


def test_the_change_pages_render(operator, tenants):
    for path in (f"/admin/accounts/account/{tenants.a1.account.pk}/change/",
                 f"/admin/accounts/subaccount/{tenants.a1.subaccount.pk}/change/",
                 f"/admin/accounts/plan/{Plan.objects.get(code='free').pk}/change/"):
        assert operator.get(path).status_code == 200, path


def test_the_key_digest_is_never_shown(operator, tenants):
    key = ApiKey.objects.get(prefix=tenants.a1.live_key[:12])
    digest = hashlib.sha256(tenants.a1.live_key.encode()).hexdigest()
    assert key.digest == digest

    pages = [operator.get(f"/admin/accounts/apikey/{key.pk}/change/"),
             operator.get("/admin/accounts/apikey/"),
             operator.get(f"/admin/accounts/apikey/?q={key.prefix}")]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert digest not in html and digest[:16] not in html
        assert tenants.a1.live_key not in html
    assert key.prefix in pages[0].content.decode()
    # Keys are made through the API or create_account, never typed into a form.
    assert operator.get("/admin/accounts/apikey/add/").status_code == 403


def test_the_revoke_action_revokes_at_once(operator, api, tenants):
    assert_ok(api(tenants.a1.live_key).get("/api/v1/api-keys"))  # cached in this process
    key = ApiKey.objects.get(prefix=tenants.a1.live_key[:12])

    response = operator.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]},
                             follow=True)

    assert response.status_code == 200
    assert "1 key(s) revoked." in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert_exact_error(api(tenants.a1.live_key).get("/api/v1/api-keys"), 401, "authentication_error",
                       "Invalid, revoked or wrong kind of API key; this route needs a sub-account key "
                       "(mr_live_ or mr_test_) in X-SubAccount-ApiKey.")
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 1


def test_the_suspend_actions_block_the_tenants_keys(operator, api, tenants):
    assert_ok(api(tenants.b1.live_key).get("/api/v1/api-keys"))
    operator.post("/admin/accounts/account/", {"action": "suspend",
                                               "_selected_action": [tenants.b1.account.pk]})
    assert Account.objects.get(pk=tenants.b1.account.pk).status == TenantStatus.SUSPENDED
    assert_exact_error(api(tenants.b1.live_key).get("/api/v1/api-keys"), 403, "authorization_error",
                       "This account is suspended: Suspended by ops")
    operator.post("/admin/accounts/account/", {"action": "resume", "_selected_action": [tenants.b1.account.pk]})
    assert_ok(api(tenants.b1.live_key).get("/api/v1/api-keys"))

    operator.post("/admin/accounts/subaccount/", {"action": "suspend",
                                                  "_selected_action": [tenants.a2.subaccount.pk]})
    assert SubAccount.objects.get(pk=tenants.a2.subaccount.pk).status == TenantStatus.SUSPENDED
    assert api(tenants.a2.live_key).get("/api/v1/api-keys").status_code == 403
    assert_ok(api(tenants.a1.live_key).get("/api/v1/api-keys"))


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    response = client.get("/admin/accounts/apikey/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    login = client.get("/admin/login/")
    assert login.status_code == 200 and b"csrfmiddlewaretoken" in login.content
