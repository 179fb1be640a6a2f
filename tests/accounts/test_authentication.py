"""Which key reaches which route: 401 for every bad key, 403 for scopes and suspension, the key cache."""

import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts import principals, services
from accounts.models import ApiKey, KeyKind
from tests.conftest import assert_exact_error, assert_ok
from tests.factories import make_key

SUB_ROUTE = "/api/v1/api-keys"
ACCOUNT_ROUTE = "/api/v1/account/subaccounts"

SUB_HEADER = "HTTP_X_SUBACCOUNT_APIKEY"
ACCOUNT_HEADER = "HTTP_X_ACCOUNT_APIKEY"

MISSING = {
    "sub": "Missing API key: send it in X-SubAccount-ApiKey (or Authorization: Bearer <key>).",
    "account": "Missing API key: send it in X-Account-ApiKey (or Authorization: Bearer <key>).",
}
INVALID = {
    "sub": "Invalid, revoked or wrong kind of API key; this route needs a sub-account key "
           "(mr_live_ or mr_test_) in X-SubAccount-ApiKey.",
    "account": "Invalid, revoked or wrong kind of API key; this route needs an account key "
               "(mr_acct_) in X-Account-ApiKey.",
}
WWW_AUTHENTICATE = {
    "sub": 'ApiKey header="X-SubAccount-ApiKey"',
    "account": 'ApiKey header="X-Account-ApiKey"',
}
ROUTES = {"sub": (SUB_ROUTE, SUB_HEADER), "account": (ACCOUNT_ROUTE, ACCOUNT_HEADER)}


def _revoked(tenant, kind: str) -> str:
    raw = make_key(account=tenant.account, subaccount=None if kind == "account" else tenant.subaccount,
                   kind=kind)
    ApiKey.objects.filter(prefix=raw[:12]).update(revoked_at=timezone.now())
    return raw


# Each maker returns a key that is wrong for the route named by the first argument.
BAD_KEYS = {
    "garbage": lambda route, t: "not-a-key",
    "prefix_only": lambda route, t: "mr_live_" if route == "sub" else "mr_acct_",
    "unknown_key_right_prefix": lambda route, t: ("mr_live_" if route == "sub" else "mr_acct_") + "x" * 40,
    "truncated_real_key": lambda route, t: (t.live_key if route == "sub" else t.account_key)[:-1],
    "real_key_plus_a_char": lambda route, t: (t.live_key if route == "sub" else t.account_key) + "A",
    "overlong": lambda route, t: ("mr_live_" if route == "sub" else "mr_acct_") + "a" * 500,
    "revoked_live": lambda route, t: _revoked(t, "live") if route == "sub" else _revoked(t, "account"),
    "revoked_test": lambda route, t: _revoked(t, "test") if route == "sub" else _revoked(t, "account"),
    "wrong_kind": lambda route, t: t.account_key if route == "sub" else t.live_key,
    "wrong_kind_test_key": lambda route, t: t.account_key if route == "sub" else t.test_key,
    "lowercased_prefix": lambda route, t: (t.live_key if route == "sub" else t.account_key).upper(),
}


@pytest.mark.parametrize("route", ["sub", "account"])
@pytest.mark.parametrize("delivery", ["header", "bearer"])
@pytest.mark.parametrize("bad_key", sorted(BAD_KEYS))
def test_it_answers_401_with_the_envelope_for_every_bad_key(tenants, route, delivery, bad_key):
    path, header = ROUTES[route]
    raw = BAD_KEYS[bad_key](route, tenants.a1)
    client = APIClient()
    if delivery == "header":
        client.credentials(**{header: raw})
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.get(path)

    assert_exact_error(response, 401, "authentication_error", INVALID[route])
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE[route]
    assert "X-RateLimit-Limit" not in response


MISSING_CREDENTIALS = {
    "no_header": {},
    "empty_header": {"key_header": ""},
    "blank_header": {"key_header": "   "},
    "empty_bearer": {"HTTP_AUTHORIZATION": "Bearer "},
    "basic_auth": {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
    "token_scheme": {"HTTP_AUTHORIZATION": "Token mr_live_abc"},
}


@pytest.mark.parametrize("route", ["sub", "account"])
@pytest.mark.parametrize("case", sorted(MISSING_CREDENTIALS))
def test_it_answers_401_when_the_key_is_missing(tenants, route, case):
    path, header = ROUTES[route]
    credentials = {header if k == "key_header" else k: v for k, v in MISSING_CREDENTIALS[case].items()}
    client = APIClient()
    client.credentials(**credentials)

    response = client.get(path)

    assert_exact_error(response, 401, "authentication_error", MISSING[route])
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE[route]


def test_a_valid_key_in_the_other_kinds_header_counts_as_missing(tenants):
    # A sub-account key sent as X-Account-ApiKey to a sub-account route: that header is not read.
    response = APIClient().get(SUB_ROUTE, **{ACCOUNT_HEADER: tenants.a1.live_key})
    assert_exact_error(response, 401, "authentication_error", MISSING["sub"])

    response = APIClient().get(ACCOUNT_ROUTE, **{SUB_HEADER: tenants.a1.account_key})
    assert_exact_error(response, 401, "authentication_error", MISSING["account"])


@pytest.mark.parametrize("route", ["sub", "account"])
def test_the_bearer_alias_is_accepted_for_both_kinds(tenants, route):
    path, _ = ROUTES[route]
    key = tenants.a1.live_key if route == "sub" else tenants.a1.account_key
    for scheme in ("Bearer", "bearer"):
        assert_ok(APIClient().get(path, HTTP_AUTHORIZATION=f"{scheme} {key}"))


def test_the_key_header_wins_over_the_bearer_alias(tenants):
    response = APIClient().get(SUB_ROUTE, **{SUB_HEADER: tenants.a1.live_key},
                               HTTP_AUTHORIZATION="Bearer not-a-key")
    assert_ok(response)


def _account_routes(tenant) -> list[tuple[str, str]]:
    sub = tenant.subaccount.public_id
    key = ApiKey.objects.filter(subaccount=tenant.subaccount).first().public_id
    account_key = ApiKey.objects.get(account=tenant.account, kind=KeyKind.ACCOUNT).public_id
    return [
        ("get", "/api/v1/account"),
        ("get", "/api/v1/account/subaccounts"),
        ("post", "/api/v1/account/subaccounts"),
        ("get", f"/api/v1/account/subaccounts/{sub}"),
        ("patch", f"/api/v1/account/subaccounts/{sub}"),
        ("delete", f"/api/v1/account/subaccounts/{sub}"),
        ("post", f"/api/v1/account/subaccounts/{sub}/suspend"),
        ("post", f"/api/v1/account/subaccounts/{sub}/resume"),
        ("get", f"/api/v1/account/subaccounts/{sub}/api-keys"),
        ("post", f"/api/v1/account/subaccounts/{sub}/api-keys"),
        ("delete", f"/api/v1/account/subaccounts/{sub}/api-keys/{key}"),
        ("get", "/api/v1/account/api-keys"),
        ("post", "/api/v1/account/api-keys"),
        ("delete", f"/api/v1/account/api-keys/{account_key}"),
    ]


@pytest.mark.parametrize("kind", ["live", "test"])
def test_a_subaccount_key_reaches_no_account_route(tenants, kind):
    key = getattr(tenants.a1, f"{kind}_key")
    for method, path in _account_routes(tenants.a1):
        as_header = getattr(APIClient(), method)(path, {"name": "x"}, format="json", **{SUB_HEADER: key})
        assert_exact_error(as_header, 401, "authentication_error", MISSING["account"])
        as_bearer = getattr(APIClient(), method)(path, {"name": "x"}, format="json",
                                                 HTTP_AUTHORIZATION=f"Bearer {key}")
        assert_exact_error(as_bearer, 401, "authentication_error", INVALID["account"])
    # Nothing was changed by any of those calls.
    assert tenants.a1.subaccount.api_keys.filter(revoked_at__isnull=False).count() == 0
    assert tenants.a1.account.subaccounts.count() == 2


def test_an_account_key_reaches_no_subaccount_route(tenants):
    key_id = ApiKey.objects.filter(subaccount=tenants.a1.subaccount).first().public_id
    for method, path in [("get", SUB_ROUTE), ("post", SUB_ROUTE), ("delete", f"{SUB_ROUTE}/{key_id}")]:
        as_header = getattr(APIClient(), method)(path, {}, format="json",
                                                 **{ACCOUNT_HEADER: tenants.a1.account_key})
        assert_exact_error(as_header, 401, "authentication_error", MISSING["sub"])
        as_bearer = getattr(APIClient(), method)(path, {}, format="json",
                                                 HTTP_AUTHORIZATION=f"Bearer {tenants.a1.account_key}")
        assert_exact_error(as_bearer, 401, "authentication_error", INVALID["sub"])
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0


def test_a_key_without_the_scope_gets_403(api, tenants):
    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:read"])

    for method in ("get", "post", "head"):
        response = getattr(api(key), method)(SUB_ROUTE, {}, format="json")
        assert response.status_code == 403
        if method != "head":
            assert_exact_error(response, 403, "authorization_error",
                               "This API key lacks the scope 'api_keys:write'.")
    assert tenants.a1.subaccount.api_keys.count() == 3  # nothing created


class _ReadOnlyView(APIView):
    required_scopes = {"GET": ("emails:read", "analytics:read")}

    def get(self, request):
        from rest_framework.response import Response

        return Response({"ok": True})


@pytest.mark.parametrize(("scopes", "expected"), [
    (["emails:read"], 200), (["analytics:read"], 200), (["full_access"], 200),
    (["emails:send"], 403), (["templates:write", "domains:write"], 403),
])
def test_any_listed_scope_suffices_and_head_needs_the_get_scopes(tenants, scopes, expected):
    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=scopes)
    view = _ReadOnlyView.as_view()
    for method in ("get", "head"):
        request = getattr(APIRequestFactory(), method)("/x", HTTP_X_SUBACCOUNT_APIKEY=key)
        response = view(request)
        response.render()
        assert response.status_code == expected, (method, response.content)


def test_a_view_that_declares_no_scopes_is_a_programming_error(tenants):
    class Undeclared(APIView):
        def get(self, request):
            raise AssertionError("never reached")

    request = APIRequestFactory().get("/x", HTTP_X_SUBACCOUNT_APIKEY=tenants.a1.live_key)
    response = Undeclared.as_view()(request)
    response.render()
    assert response.status_code == 500
    assert response.data["error"]["code"] == "internal_error"


def test_a_suspended_account_gets_403_with_the_reason_on_every_key(api, tenants):
    services.account_suspend(account=tenants.a1.account, reason="unpaid invoice")

    for key, path in [(tenants.a1.account_key, "/api/v1/account"), (tenants.a1.live_key, SUB_ROUTE),
                      (tenants.a2.test_key, SUB_ROUTE)]:
        assert_exact_error(api(key).get(path), 403, "authorization_error",
                           "This account is suspended: unpaid invoice")
    assert_ok(api(tenants.b1.live_key).get(SUB_ROUTE))

    services.account_resume(account=tenants.a1.account)
    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))


def test_suspending_a_subaccount_blocks_its_keys_at_once_but_not_its_account(api, tenants):
    account = api(tenants.a1.account_key)
    sub_id = tenants.a1.subaccount.public_id
    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))  # warm the key cache

    assert_ok(account.post(f"/api/v1/account/subaccounts/{sub_id}/suspend", {"reason": "abuse report"},
                           format="json"))

    assert_exact_error(api(tenants.a1.live_key).get(SUB_ROUTE), 403, "authorization_error",
                       "This sub-account is suspended: abuse report")
    assert_exact_error(api(tenants.a1.test_key).get(SUB_ROUTE), 403, "authorization_error",
                       "This sub-account is suspended: abuse report")
    assert_ok(api(tenants.a2.live_key).get(SUB_ROUTE))
    data = assert_ok(account.get(f"/api/v1/account/subaccounts/{sub_id}"))
    assert (data["status"], data["suspended_reason"]) == ("suspended", "abuse report")

    assert_ok(account.post(f"/api/v1/account/subaccounts/{sub_id}/resume"))
    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))


def test_suspension_without_a_reason_still_says_so(api, tenants):
    services.subaccount_suspend(subaccount=tenants.a1.subaccount)
    assert_exact_error(api(tenants.a1.live_key).get(SUB_ROUTE), 403, "authorization_error",
                       "This sub-account is suspended.")


def test_revocation_through_the_api_takes_effect_at_once_in_this_process(api, tenants):
    victim = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount)
    assert_ok(api(victim).get(SUB_ROUTE))  # cached now
    victim_id = ApiKey.objects.get(prefix=victim[:12]).public_id

    revoked = assert_ok(api(tenants.a1.live_key).delete(f"{SUB_ROUTE}/{victim_id}"))

    assert revoked["id"] == victim_id and revoked["revoked_at"] is not None
    assert_exact_error(api(victim).get(SUB_ROUTE), 401, "authentication_error", INVALID["sub"])


def test_an_account_key_revoking_a_subaccount_key_takes_effect_at_once(api, tenants):
    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))
    key_id = ApiKey.objects.get(prefix=tenants.a1.live_key[:12]).public_id
    assert_ok(api(tenants.a1.account_key).delete(
        f"/api/v1/account/subaccounts/{tenants.a1.subaccount.public_id}/api-keys/{key_id}"))
    assert_exact_error(api(tenants.a1.live_key).get(SUB_ROUTE), 401, "authentication_error", INVALID["sub"])


def test_an_account_key_can_revoke_itself(api, tenants):
    key_id = ApiKey.objects.get(prefix=tenants.a1.account_key[:12]).public_id
    assert_ok(api(tenants.a1.account_key).delete(f"/api/v1/account/api-keys/{key_id}"))
    assert_exact_error(api(tenants.a1.account_key).get("/api/v1/account"), 401, "authentication_error",
                       INVALID["account"])


def test_revocation_elsewhere_reaches_this_process_when_the_cache_entry_expires(api, tenants, settings):
    settings.MAILROOM_KEY_CACHE_SECONDS = 1
    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))
    # Another process revoking the key cannot evict this process's memory; only the row changes.
    ApiKey.objects.filter(prefix=tenants.a1.live_key[:12]).update(revoked_at=timezone.now())

    assert_ok(api(tenants.a1.live_key).get(SUB_ROUTE))  # still cached
    time.sleep(1.1)
    assert_exact_error(api(tenants.a1.live_key).get(SUB_ROUTE), 401, "authentication_error", INVALID["sub"])


def test_the_default_cache_lifetime_keeps_revocation_under_a_minute(settings):
    assert 0 < settings.MAILROOM_KEY_CACHE_SECONDS <= 60


def test_a_warm_account_key_costs_no_database_query(api, tenants, django_assert_num_queries):
    client = api(tenants.a1.account_key)
    assert_ok(client.get("/api/v1/account"))
    with django_assert_num_queries(0):
        data = assert_ok(client.get("/api/v1/account"))
    assert data["plan"] == {"code": "free", "name": "Free", "requests_per_minute": 60,
                            "monthly_email_quota": 1000}


def test_a_warm_subaccount_key_costs_no_query_beyond_the_views_own(api, tenants, django_assert_num_queries):
    client = api(tenants.a1.live_key)
    assert_ok(client.get(SUB_ROUTE))
    with django_assert_num_queries(2):  # the list's COUNT and SELECT; nothing for the key
        assert_ok(client.get(SUB_ROUTE))
    with django_assert_num_queries(0):
        principal = principals.principal_for_key(tenants.a1.live_key)
    assert (principal.subaccount.pk, principal.environment) == (tenants.a1.subaccount.pk, "live")
    assert principals.principal_for_key(tenants.a1.test_key).environment == "test"


def test_last_used_at_is_recorded_without_a_write_on_every_request(api, tenants, django_assert_num_queries):
    key = ApiKey.objects.get(prefix=tenants.a1.account_key[:12])
    assert key.last_used_at is None
    client = api(tenants.a1.account_key)
    with django_assert_num_queries(2):  # the cold lookup and one UPDATE of last_used_at
        assert_ok(client.get("/api/v1/account"))
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    for _ in range(3):
        assert_ok(client.get("/api/v1/account"))
    key.refresh_from_db()
    assert key.last_used_at == first_use


def test_keys_are_looked_up_by_digest_only(tenants):
    key = ApiKey.objects.get(prefix=tenants.a1.live_key[:12])
    assert principals.principal_for_key(tenants.a1.live_key).key_id == key.public_id
    # Same prefix, different secret: no match, even though the display prefix is equal.
    assert principals.principal_for_key(tenants.a1.live_key[:12] + "z" * 40) is None


def test_with_the_cache_off_a_key_costs_one_query_and_last_used_at_is_still_not_rewritten(
        api, tenants, settings, django_assert_num_queries):
    settings.MAILROOM_KEY_CACHE_SECONDS = 0
    client = api(tenants.a1.account_key)
    assert_ok(client.get("/api/v1/account"))
    for _ in range(2):
        with django_assert_num_queries(1):  # the key lookup; no second UPDATE of last_used_at
            assert_ok(client.get("/api/v1/account"))
