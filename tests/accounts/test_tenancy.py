"""Tenants never see each other (404, never 403), and what a key may grant."""

import pytest

from accounts.models import ApiKey, SubAccount, TenantStatus
from tests.conftest import assert_exact_error, assert_ok
from tests.factories import make_key

SUB_NOT_FOUND = "Sub-account not found."
KEY_NOT_FOUND = "API key not found."


def _key_id(raw: str) -> str:
    return ApiKey.objects.get(prefix=raw[:12]).public_id


def _state(subaccount: SubAccount) -> tuple:
    subaccount.refresh_from_db()
    keys = sorted(subaccount.api_keys.values_list("public_id", "revoked_at", "name"))
    return subaccount.name, subaccount.status, subaccount.track_opens, keys


def test_an_account_gets_404_for_every_route_of_another_accounts_subaccount(api, tenants):
    other = tenants.b1.subaccount
    other_key = _key_id(tenants.b1.live_key)
    before = _state(other)
    client = api(tenants.a1.account_key)
    base = f"/api/v1/account/subaccounts/{other.public_id}"

    for method, path, body in [
        ("get", base, None),
        ("patch", base, {"name": "stolen", "track_opens": True}),
        ("delete", base, None),
        ("post", f"{base}/suspend", {"reason": "x"}),
        ("post", f"{base}/resume", None),
        ("get", f"{base}/api-keys", None),
        ("post", f"{base}/api-keys", {"name": "backdoor"}),
        ("delete", f"{base}/api-keys/{other_key}", None),
    ]:
        response = getattr(client, method)(path, body, format="json")
        assert_exact_error(response, 404, "not_found", SUB_NOT_FOUND)

    assert _state(other) == before
    assert SubAccount.objects.filter(pk=other.pk).exists()


def test_a_suspended_other_subaccount_cannot_be_resumed_by_a_stranger(api, tenants):
    from accounts import services

    services.subaccount_suspend(subaccount=tenants.b1.subaccount, reason="operator")
    response = api(tenants.a1.account_key).post(
        f"/api/v1/account/subaccounts/{tenants.b1.subaccount.public_id}/resume")
    assert_exact_error(response, 404, "not_found", SUB_NOT_FOUND)
    tenants.b1.subaccount.refresh_from_db()
    assert tenants.b1.subaccount.status == TenantStatus.SUSPENDED


def test_an_account_cannot_revoke_another_accounts_account_key(api, tenants):
    other_key = _key_id(tenants.b1.account_key)
    response = api(tenants.a1.account_key).delete(f"/api/v1/account/api-keys/{other_key}")
    assert_exact_error(response, 404, "not_found", KEY_NOT_FOUND)
    assert_ok(api(tenants.b1.account_key).get("/api/v1/account"))


def test_a_subaccount_key_id_is_not_an_account_key_id(api, tenants):
    response = api(tenants.a1.account_key).delete(f"/api/v1/account/api-keys/{_key_id(tenants.a1.live_key)}")
    assert_exact_error(response, 404, "not_found", KEY_NOT_FOUND)


def test_a_key_of_a_sibling_subaccount_is_404_under_the_wrong_subaccount(api, tenants):
    sibling_key = _key_id(tenants.a2.live_key)
    response = api(tenants.a1.account_key).delete(
        f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}/api-keys/{sibling_key}")
    assert_exact_error(response, 404, "not_found", KEY_NOT_FOUND)
    assert_ok(api(tenants.a2.live_key).get("/api/v1/api-keys"))


def test_the_account_lists_only_its_own_subaccounts(api, tenants):
    data = assert_ok(api(tenants.a1.account_key).get("/api/v1/account/subaccounts"))
    assert sorted(s["id"] for s in data["subaccounts"]) == sorted(
        [tenants.a1.subaccount.public_id, tenants.a2.subaccount.public_id])
    assert data["pagination"] == {"total": 2, "limit": 20, "offset": 0, "has_more": False}


def test_a_subaccount_lists_only_its_own_keys(api, tenants):
    data = assert_ok(api(tenants.a1.live_key).get("/api/v1/api-keys"))
    assert sorted(k["id"] for k in data["api_keys"]) == sorted(
        [_key_id(tenants.a1.live_key), _key_id(tenants.a1.test_key)])
    assert {k["subaccount_id"] for k in data["api_keys"]} == {tenants.a1.subaccount.public_id}
    assert all("key" not in k and "digest" not in k for k in data["api_keys"])


def test_the_account_lists_its_account_keys_only(api, tenants):
    second = make_key(account=tenants.a1.account, kind="account")
    data = assert_ok(api(tenants.a1.account_key).get("/api/v1/account/api-keys"))
    assert sorted(k["id"] for k in data["api_keys"]) == sorted(
        [_key_id(tenants.a1.account_key), _key_id(second)])
    assert {(k["kind"], k["subaccount_id"], tuple(k["scopes"])) for k in data["api_keys"]} == {
        ("account", None, ())}


def test_a_subaccount_key_cannot_revoke_another_subaccounts_key(api, tenants):
    for victim in (tenants.a2.live_key, tenants.b1.live_key):
        response = api(tenants.a1.live_key).delete(f"/api/v1/api-keys/{_key_id(victim)}")
        assert_exact_error(response, 404, "not_found", KEY_NOT_FOUND)
        assert_ok(api(victim).get("/api/v1/api-keys"))


def test_a_subaccount_key_cannot_revoke_its_accounts_key(api, tenants):
    response = api(tenants.a1.live_key).delete(f"/api/v1/api-keys/{_key_id(tenants.a1.account_key)}")
    assert_exact_error(response, 404, "not_found", KEY_NOT_FOUND)


def test_a_subaccount_creates_a_key_shown_once(api, tenants):
    client = api(tenants.a1.live_key)
    created = assert_ok(client.post("/api/v1/api-keys", {"name": "ci", "scopes": ["emails:send"]},
                                    format="json"), 201)

    assert set(created) == {"id", "name", "kind", "prefix", "subaccount_id", "scopes", "rate_limit",
                            "created_at", "last_used_at", "revoked_at", "key"}
    assert created["id"].startswith("key_") and created["key"].startswith("mr_live_")
    assert (created["name"], created["kind"], created["scopes"], created["rate_limit"]) == (
        "ci", "live", ["emails:send"], None)
    assert created["prefix"] == created["key"][:12]
    assert created["subaccount_id"] == tenants.a1.subaccount.public_id
    listed = assert_ok(client.get("/api/v1/api-keys"))["api_keys"]
    assert [k for k in listed if k["id"] == created["id"]][0] == {
        k: v for k, v in created.items() if k != "key"}
    # The new key works with exactly the scope it got.
    assert_exact_error(api(created["key"]).get("/api/v1/api-keys"), 403, "authorization_error",
                       "This API key lacks the scope 'api_keys:write'.")


def test_a_key_can_only_grant_scopes_it_has(api, tenants):
    limited = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount,
                       scopes=["api_keys:write", "emails:read"])
    client = api(limited)
    before = tenants.a1.subaccount.api_keys.count()

    for scopes in (["emails:send"], ["full_access"], ["emails:read", "domains:write"]):
        response = client.post("/api/v1/api-keys", {"scopes": scopes}, format="json")
        assert_exact_error(response, 403, "authorization_error", "A key can only grant scopes it has itself.")
    assert tenants.a1.subaccount.api_keys.count() == before

    narrower = assert_ok(client.post("/api/v1/api-keys", {"scopes": ["emails:read"]}, format="json"), 201)
    assert narrower["scopes"] == ["emails:read"]
    inherited = assert_ok(client.post("/api/v1/api-keys", {"name": "same as mine"}, format="json"), 201)
    assert inherited["scopes"] == ["api_keys:write", "emails:read"]


def test_a_full_access_key_grants_any_scope(api, tenants):
    created = assert_ok(api(tenants.a1.live_key).post(
        "/api/v1/api-keys", {"scopes": ["domains:write", "webhooks:write"]}, format="json"), 201)
    assert created["scopes"] == ["domains:write", "webhooks:write"]


def test_a_test_key_can_only_create_test_keys(api, tenants):
    client = api(tenants.a1.test_key)
    response = client.post("/api/v1/api-keys", {"environment": "live"}, format="json")
    assert_exact_error(response, 403, "authorization_error", "A test key can only create test keys.")
    created = assert_ok(client.post("/api/v1/api-keys", {"environment": "test"}, format="json"), 201)
    assert created["kind"] == "test" and created["key"].startswith("mr_test_")


@pytest.mark.parametrize("path", ["/api/v1/api-keys", "sub", "/api/v1/account/api-keys"])
def test_a_tenant_cannot_set_a_rate_limit_above_the_plan(api, tenants, path):
    if path == "sub":
        path = f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}/api-keys"
    key = tenants.a1.account_key if "/account/" in path else tenants.a1.live_key
    client = api(key)
    count = ApiKey.objects.count()

    response = client.post(path, {"rate_limit": 61}, format="json")

    assert_exact_error(response, 422, "validation_error", "The request is invalid.",
                       {"rate_limit": ["Must be at most the plan's 60 requests per minute."]})
    assert ApiKey.objects.count() == count
    created = assert_ok(client.post(path, {"rate_limit": 60}, format="json"), 201)
    assert created["rate_limit"] == 60


@pytest.mark.parametrize(("body", "details"), [
    ({"scopes": ["emails:fly"]}, {"scopes.0": ['"emails:fly" is not a valid choice.']}),
    ({"scopes": []}, {"scopes": ["This list may not be empty."]}),
    ({"environment": "prod"}, {"environment": ['"prod" is not a valid choice.']}),
    ({"rate_limit": 0}, {"rate_limit": ["Ensure this value is greater than or equal to 1."]}),
    ({"name": "x" * 201}, {"name": ["Ensure this field has no more than 200 characters."]}),
])
def test_bad_key_input_is_422_with_field_details_and_nothing_written(api, tenants, body, details):
    count = ApiKey.objects.count()
    response = api(tenants.a1.live_key).post("/api/v1/api-keys", body, format="json")
    assert_exact_error(response, 422, "validation_error", "The request is invalid.", details)
    assert ApiKey.objects.count() == count


def test_the_account_manages_its_subaccounts(api, tenants):
    client = api(tenants.a1.account_key)

    created = assert_ok(client.post("/api/v1/account/subaccounts", {"name": "Newsletters",
                                                                     "track_opens": True}, format="json"), 201)
    assert set(created) == {"id", "name", "status", "suspended_reason", "track_opens", "track_clicks",
                            "created_at", "updated_at"}
    assert created["id"].startswith("sub_")
    assert (created["name"], created["status"], created["track_opens"], created["track_clicks"]) == (
        "Newsletters", "active", True, False)
    path = f"/api/v1/account/subaccounts/{created['id']}"
    assert assert_ok(client.get(path)) == created

    updated = assert_ok(client.patch(path, {"track_clicks": True}, format="json"))
    assert (updated["name"], updated["track_opens"], updated["track_clicks"]) == ("Newsletters", True, True)

    duplicate = client.post("/api/v1/account/subaccounts", {"name": "a2"}, format="json")
    assert_exact_error(duplicate, 409, "conflict", "A sub-account named 'a2' already exists.",
                       {"name": ["Already exists."]})
    rename_clash = client.patch(path, {"name": "a1"}, format="json")
    assert_exact_error(rename_clash, 409, "conflict", "A sub-account named 'a1' already exists.",
                       {"name": ["Already exists."]})
    # Names are unique per account only: account B may use the same name.
    assert_ok(api(tenants.b1.account_key).post("/api/v1/account/subaccounts", {"name": "Newsletters"},
                                               format="json"), 201)

    key = assert_ok(client.post(f"{path}/api-keys", {"environment": "test", "scopes": ["emails:send"]},
                                format="json"), 201)
    assert key["kind"] == "test" and key["subaccount_id"] == created["id"]
    listed = assert_ok(client.get(f"{path}/api-keys"))
    assert [k["id"] for k in listed["api_keys"]] == [key["id"]]


def test_updating_a_subaccount_refreshes_the_cached_principal(api, tenants):
    assert_ok(api(tenants.a1.live_key).get("/api/v1/api-keys"))
    assert_ok(api(tenants.a1.account_key).patch(
        f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}", {"track_opens": True}, format="json"))
    from accounts.principals import principal_for_key

    assert principal_for_key(tenants.a1.live_key).subaccount.track_opens is True


def test_deleting_a_subaccount_removes_it_and_its_keys(api, tenants):
    client = api(tenants.a1.account_key)
    path = f"/api/v1/account/subaccounts/{tenants.a2.subaccount.public_id}"
    assert_ok(api(tenants.a2.live_key).get("/api/v1/api-keys"))  # warm

    response = client.delete(path)

    assert response.status_code == 204
    assert response.content == b""
    assert response["X-Request-Id"]
    assert_exact_error(client.get(path), 404, "not_found", SUB_NOT_FOUND)
    assert not ApiKey.objects.filter(subaccount_id=tenants.a2.subaccount.pk).exists()
    response = api(tenants.a2.live_key).get("/api/v1/api-keys")
    assert response.status_code == 401


@pytest.mark.parametrize(("query", "details"), [
    ("limit=0", {"limit": ["Ensure this value is greater than or equal to 1."]}),
    ("limit=101", {"limit": ["Ensure this value is less than or equal to 100."]}),
    ("offset=-1", {"offset": ["Ensure this value is greater than or equal to 0."]}),
    ("limit=ten", {"limit": ["A valid integer is required."]}),
])
def test_bad_pagination_is_422(api, tenants, query, details):
    response = api(tenants.a1.account_key).get(f"/api/v1/account/subaccounts?{query}")
    assert_exact_error(response, 422, "validation_error", "Invalid pagination parameters.", details)


def test_pagination_pages_through_the_list(api, tenants):
    client = api(tenants.a1.account_key)
    for n in range(3):
        assert_ok(client.post("/api/v1/account/subaccounts", {"name": f"extra {n}"}, format="json"), 201)
    first = assert_ok(client.get("/api/v1/account/subaccounts?limit=2"))
    second = assert_ok(client.get("/api/v1/account/subaccounts?limit=2&offset=2"))
    last = assert_ok(client.get("/api/v1/account/subaccounts?limit=2&offset=4"))
    assert first["pagination"] == {"total": 5, "limit": 2, "offset": 0, "has_more": True}
    assert second["pagination"] == {"total": 5, "limit": 2, "offset": 2, "has_more": True}
    assert last["pagination"] == {"total": 5, "limit": 2, "offset": 4, "has_more": False}
    ids = [s["id"] for page in (first, second, last) for s in page["subaccounts"]]
    assert len(ids) == len(set(ids)) == 5
    assert [s["name"] for s in first["subaccounts"]] == ["extra 2", "extra 1"]  # newest first
