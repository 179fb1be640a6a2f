"""``/api/v1/smtp-credentials``: create (password once), list, get, revoke; scopes and tenancy."""

import hashlib
import re

import pytest

from accounts.models import SmtpCredential
from emails.relay import credentials
from tests.conftest import assert_error, assert_exact_error, assert_ok
from tests.factories import make_key

ROUTE = "/api/v1/smtp-credentials"


def _create(api, key, **body):
    return api(key).post(ROUTE, body, format="json")


def test_creating_a_credential_shows_the_password_once_and_stores_only_its_digest(api, tenants):
    data = assert_ok(_create(api, tenants.a1.live_key, name="WordPress"), 201)
    assert set(data) == {"id", "name", "username", "environment", "rate_limit", "created_at", "last_used_at",
                         "revoked_at", "password"}
    assert re.fullmatch(r"smtp_[A-Za-z0-9]{24}", data["id"])
    assert re.fullmatch(r"smtp_live_[a-z0-9]{12}", data["username"])
    assert re.fullmatch(r"mr_smtp_[A-Za-z0-9]{40}", data["password"])
    assert (data["name"], data["environment"], data["rate_limit"], data["last_used_at"], data["revoked_at"]) == (
        "WordPress", "live", None, None, None)
    row = SmtpCredential.objects.get(public_id=data["id"])
    assert row.digest == hashlib.sha256(data["password"].encode()).hexdigest()
    assert data["password"] not in str(list(SmtpCredential.objects.values_list()))
    assert row.subaccount_id == tenants.a1.subaccount.pk

    listed = assert_ok(api(tenants.a1.live_key).get(ROUTE))
    assert listed["pagination"] == {"total": 1, "limit": 20, "offset": 0, "has_more": False}
    assert listed["smtp_credentials"] == [{k: v for k, v in data.items() if k != "password"}]
    assert "password" not in assert_ok(api(tenants.a1.live_key).get(f"{ROUTE}/{data['id']}"))


def test_the_environment_defaults_to_the_calling_keys_and_a_test_key_cannot_mint_live_logins(api, tenants):
    assert assert_ok(_create(api, tenants.a1.live_key), 201)["environment"] == "live"
    live_made_test = assert_ok(_create(api, tenants.a1.live_key, environment="test"), 201)
    assert re.fullmatch(r"smtp_test_[a-z0-9]{12}", live_made_test["username"])
    assert assert_ok(_create(api, tenants.a1.test_key), 201)["environment"] == "test"
    assert_exact_error(_create(api, tenants.a1.test_key, environment="live"), 403, "authorization_error",
                       "A test key can only create test SMTP credentials.")
    assert_error(_create(api, tenants.a1.live_key, environment="staging"), 422, "validation_error")


def test_a_rate_limit_may_not_exceed_the_plan(api, tenants):
    limit = tenants.a1.account.plan.requests_per_minute
    assert assert_ok(_create(api, tenants.a1.live_key, rate_limit=limit), 201)["rate_limit"] == limit
    assert_exact_error(_create(api, tenants.a1.live_key, rate_limit=limit + 1), 422, "validation_error",
                       "The request is invalid.",
                       {"rate_limit": [f"Must be at most the plan's {limit} messages per minute."]})
    assert SmtpCredential.objects.count() == 1


def test_revoking_keeps_the_row_and_is_idempotent(api, tenants):
    created = assert_ok(_create(api, tenants.a1.live_key), 201)
    revoked = assert_ok(api(tenants.a1.live_key).delete(f"{ROUTE}/{created['id']}"))
    assert revoked["revoked_at"] is not None and "password" not in revoked
    again = assert_ok(api(tenants.a1.live_key).delete(f"{ROUTE}/{created['id']}"))
    assert again["revoked_at"] == revoked["revoked_at"]
    assert credentials.principal_for_login(created["username"], created["password"]) is None


def test_a_successful_login_records_last_used_at(api, tenants):
    created = assert_ok(_create(api, tenants.a1.live_key), 201)
    principal = credentials.principal_for_login(created["username"], created["password"])
    assert (principal.environment, principal.subaccount.pk) == ("live", tenants.a1.subaccount.pk)
    assert assert_ok(api(tenants.a1.live_key).get(f"{ROUTE}/{created['id']}"))["last_used_at"] is not None
    assert credentials.principal_for_login(created["username"], created["password"] + "x") is None
    assert credentials.principal_for_login("smtp_live_unknown", created["password"]) is None


@pytest.mark.parametrize("other", ["a2", "b1"])
def test_another_sub_accounts_credential_is_not_found(api, tenants, other):
    created = assert_ok(_create(api, tenants.a1.live_key), 201)
    other_key = getattr(tenants, other).live_key
    assert_exact_error(api(other_key).get(f"{ROUTE}/{created['id']}"), 404, "not_found", "SMTP credential not found.")
    assert_exact_error(api(other_key).delete(f"{ROUTE}/{created['id']}"), 404, "not_found",
                       "SMTP credential not found.")
    assert assert_ok(api(other_key).get(ROUTE))["smtp_credentials"] == []
    assert SmtpCredential.objects.get(public_id=created["id"]).revoked_at is None


def test_the_routes_need_the_emails_send_scope(api, tenants):
    reader = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:read"])
    sender = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:send"])
    assert_error(api(reader).get(ROUTE), 403, "authorization_error")
    assert_error(_create(api, reader), 403, "authorization_error")
    assert_ok(_create(api, sender), 201)
    assert_error(api().get(ROUTE), 401, "authentication_error")
    assert_error(api(tenants.a1.account_key).get(ROUTE), 401, "authentication_error")
