"""The operator's one-liner: ``manage.py create_account NAME --plan free --json``."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Account, ApiKey, SubAccount
from tests.conftest import assert_ok


def _create(*args) -> dict:
    out = StringIO()
    call_command("create_account", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_prints_the_five_documented_fields_and_the_keys_work(api, db):
    result = _create("Acme", "--plan", "startup", "--email", "ops@acme.test")

    assert set(result) == {"account_id", "account_api_key", "subaccount_id", "subaccount_api_key",
                           "test_api_key"}
    assert result["account_id"].startswith("acc_") and result["subaccount_id"].startswith("sub_")
    assert result["account_api_key"].startswith("mr_acct_")
    assert result["subaccount_api_key"].startswith("mr_live_")
    assert result["test_api_key"].startswith("mr_test_")
    account = Account.objects.get(public_id=result["account_id"])
    assert (account.name, account.plan.code, account.contact_email) == ("Acme", "startup", "ops@acme.test")
    assert SubAccount.objects.get(public_id=result["subaccount_id"]).account == account

    me = assert_ok(api(result["account_api_key"]).get("/api/v1/account"))
    assert (me["id"], me["plan"]["requests_per_minute"]) == (result["account_id"], 300)
    subaccounts = assert_ok(api(result["account_api_key"]).get("/api/v1/account/subaccounts"))["subaccounts"]
    assert [s["id"] for s in subaccounts] == [result["subaccount_id"]]
    for key, kind in ((result["subaccount_api_key"], "live"), (result["test_api_key"], "test")):
        response = api(key).get("/api/v1/api-keys")
        keys = assert_ok(response)["api_keys"]
        assert [k["kind"] for k in keys if k["prefix"] == key[:12]] == [kind]
        assert {k["kind"] for k in keys} == {"live", "test"}
        assert all(k["scopes"] == ["full_access"] for k in keys)
        assert response["X-RateLimit-Limit"] == "300"


def test_an_operator_may_set_a_rate_limit_above_the_plan(api, db):
    result = _create("Bench", "--plan", "free", "--rate-limit", "100000")

    assert set(ApiKey.objects.filter(account__public_id=result["account_id"])
               .values_list("rate_limit", flat=True)) == {100000}
    for key, path in ((result["subaccount_api_key"], "/api/v1/api-keys"),
                      (result["account_api_key"], "/api/v1/account")):
        response = api(key).get(path)
        assert response["X-RateLimit-Limit"] == "100000"
        assert response["X-RateLimit-Remaining"] == "99999"


def test_an_unknown_plan_is_an_error_and_writes_nothing(db):
    with pytest.raises(CommandError) as error:
        _create("Acme", "--plan", "platinum")
    assert str(error.value) == "Unknown plan 'platinum'; choose one of: free, indie, startup, growth, enterprise"
    assert not Account.objects.exists() and not ApiKey.objects.exists()


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_non_positive_rate_limit_is_an_error(db, value):
    with pytest.raises(CommandError, match="--rate-limit must be a positive integer"):
        _create("Acme", "--rate-limit", value)
    assert not Account.objects.exists()


def test_without_json_it_prints_labelled_lines_and_a_warning(db):
    out = StringIO()
    call_command("create_account", "Plain", stdout=out)
    text = out.getvalue()
    for label in ("account_id", "account_api_key", "subaccount_id", "subaccount_api_key", "test_api_key"):
        assert label in text
    assert "Store the keys now: they are not shown again." in text
    assert Account.objects.get().plan.code == "free"
