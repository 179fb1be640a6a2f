"""Per-key requests per minute (django-ratelimit in the shared cache) and failed-auth limits per IP."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import RequestFactory
from django_ratelimit.core import get_usage
from rest_framework.test import APIClient

from accounts.authentication import AUTH_FAILURE_GROUP
from accounts.models import ApiKey, Plan
from accounts.throttling import KEY_GROUP
from tests.conftest import assert_exact_error, assert_ok
from tests.factories import make_key

ROOT = Path(__file__).resolve().parents[2]
ROUTE = "/api/v1/api-keys"


def _seconds_left(group: str, value: str, rate: str) -> int:
    """Whole seconds left in the current django-ratelimit window of ``value``.

    Windows do not start on the minute: django-ratelimit offsets each by crc32(value) % 60.
    """
    usage = get_usage(RequestFactory().get("/"), group=group, key=lambda g, r: value, rate=rate,
                      increment=False)
    return usage["time_left"]


def _fresh_window(group: str, value: str, rate: str, *, need: float) -> None:
    """Wait for the next window if this one might end before the test does."""
    left = _seconds_left(group, value, rate)
    if left < need:
        # The window labelled w lasts while int(now) <= w: up to left + 1 seconds.
        time.sleep(left + 1.1)
        assert _seconds_left(group, value, rate) >= 58


def _key_with_time_left(tenant, *, need: float, rate_limit: int | None = None, **kwargs) -> str:
    """A new key of the tenant's sub-account whose window has at least ``need`` seconds left.

    Each key's window ends at its own offset, so trying a few keys beats sleeping up to a minute.
    """
    rate = f"{rate_limit or tenant.account.plan.requests_per_minute}/m"
    for _ in range(20):
        raw = make_key(account=tenant.account, subaccount=tenant.subaccount, rate_limit=rate_limit, **kwargs)
        if _seconds_left(KEY_GROUP, _key_id(raw), rate) >= need:
            return raw
    _fresh_window(KEY_GROUP, _key_id(raw), rate, need=need)
    return raw


def _key_id(raw: str) -> str:
    return ApiKey.objects.get(prefix=raw[:12]).public_id


def _headers(response) -> tuple[int, int, int]:
    return (int(response["X-RateLimit-Limit"]), int(response["X-RateLimit-Remaining"]),
            int(response["X-RateLimit-Reset"]))


def _subprocess_env() -> dict[str, str]:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    env = dict(os.environ)
    env.update({
        # The test database this pytest process created, holding the committed test data.
        "DATABASE_URL": f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": os.environ["REDIS_URL"],
        "MAILROOM_CACHE_PREFIX": django_settings.CACHES["default"]["KEY_PREFIX"],
        "MAILROOM_TESTING": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    })
    return env


@pytest.mark.django_db(transaction=True)
def test_the_61st_request_in_a_minute_on_a_free_key_is_429_across_two_processes(
        requires_postgres, requires_redis, api, tenants):
    assert tenants.a1.account.plan.requests_per_minute == 60
    key = _key_with_time_left(tenants.a1, need=20)  # a Free plan key without an override
    client = api(key)
    seen = []

    for n in range(30):  # this process: requests 1..30
        response = client.get(ROUTE)
        assert response.status_code == 200
        seen.append(_headers(response))
        assert seen[-1][:2] == (60, 59 - n)

    child = subprocess.run(  # another process: requests 31..60, same key, same Redis
        [sys.executable, "-m", "tests.accounts.ratelimit_client", key, ROUTE, "30"],
        cwd=ROOT, env=_subprocess_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert child.returncode == 0, child.stderr
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 30, child.stdout + child.stderr
    assert {line["pid"] for line in lines} != {os.getpid()}
    for n, line in enumerate(lines):
        assert (line["status"], line["limit"], line["remaining"]) == (200, "60", str(29 - n)), line
        seen.append((60, int(line["remaining"]), int(line["reset"])))

    response = client.get(ROUTE)  # the 61st, back in this process
    now = time.time()

    retry_after = int(response["Retry-After"])
    assert_exact_error(response, 429, "rate_limit_exceeded", f"Rate limit exceeded; retry in {retry_after} s.")
    limit, remaining, reset = _headers(response)
    assert (limit, remaining) == (60, 0)
    assert 1 <= retry_after <= 60
    assert abs(reset - (now + retry_after)) <= 1
    # Every response named the same window end (to the second: the clock may tick in between).
    assert max(r for _, _, r in [*seen, (0, 0, reset)]) - min(r for _, _, r in [*seen, (0, 0, reset)]) <= 1
    # The counter is per key: the sibling key of the same sub-account has its whole minute.
    assert _headers(api(tenants.a1.test_key).get(ROUTE))[:2] == (60, 59)


def test_headers_count_down_and_a_key_override_sets_the_limit(api, tenants):
    key = _key_with_time_left(tenants.a1, need=5, rate_limit=3)
    client = api(key)

    remaining = [_headers(assert_ok_response(client.get(ROUTE)))[1] for _ in range(3)]
    assert remaining == [2, 1, 0]
    response = client.get(ROUTE)
    assert_exact_error(response, 429, "rate_limit_exceeded",
                       f"Rate limit exceeded; retry in {response['Retry-After']} s.")
    assert _headers(response)[:2] == (3, 0)


def assert_ok_response(response):
    assert_ok(response)
    return response


def test_the_plan_sets_the_limit_when_the_key_has_none(api, tenants):
    tenants.b1.account.plan = Plan.objects.get(code="growth")
    tenants.b1.account.save()
    response = api(tenants.b1.live_key).get(ROUTE)
    assert _headers(response)[:2] == (600, 599)
    response = api(tenants.b1.account_key).get("/api/v1/account")
    assert _headers(response)[:2] == (600, 599)


def test_every_authenticated_response_carries_the_headers_and_counts(api, tenants):
    limited = _key_with_time_left(tenants.a1, need=5, scopes=["emails:read"])
    client = api(limited)

    refused = client.get(ROUTE)  # 403: refused by the scope check before DRF's throttle runs
    assert refused.status_code == 403
    assert _headers(refused)[:2] == (60, 59)
    invalid = api(tenants.a1.live_key).post(ROUTE, {"scopes": "x"}, format="json")  # 422
    assert invalid.status_code == 422 and "X-RateLimit-Remaining" in invalid
    missing = api(tenants.a1.account_key).get("/api/v1/account/subaccounts/sub_nope")  # 404
    assert missing.status_code == 404 and "X-RateLimit-Remaining" in missing
    assert _headers(client.get(ROUTE))[:2] == (60, 58)


def test_unauthenticated_responses_carry_no_rate_headers(tenants):
    response = APIClient().get(ROUTE)
    assert response.status_code == 401
    assert "X-RateLimit-Limit" not in response


def test_failed_authentication_is_limited_per_client_ip(settings, tenants):
    settings.MAILROOM_AUTH_FAILURES_PER_MINUTE = 5
    # An attacker address whose failure window will not roll over during the test.
    attacker = next(ip for ip in (f"203.0.113.{n}" for n in range(1, 255))
                    if _seconds_left(AUTH_FAILURE_GROUP, ip, "5/m") >= 5)
    neighbour = "198.51.100.9"

    statuses = []
    for n in range(5):  # wrong keys, a missing key and a wrong-kind key all count
        if n == 0:
            response = APIClient(REMOTE_ADDR=attacker).get(ROUTE)
        elif n == 1:
            response = APIClient(REMOTE_ADDR=attacker).get(ROUTE, HTTP_X_SUBACCOUNT_APIKEY=tenants.a1.account_key)
        else:
            response = APIClient(REMOTE_ADDR=attacker).get(ROUTE, HTTP_X_SUBACCOUNT_APIKEY=f"mr_live_guess{n}")
        statuses.append(response.status_code)
    assert statuses == [401] * 5

    # The sixth attempt is refused before the key is even looked at, a valid key included:
    # otherwise a guesser could still tell a hit from a miss.
    for key in ("mr_live_guess6", tenants.a1.live_key):
        response = APIClient(REMOTE_ADDR=attacker).get(ROUTE, HTTP_X_SUBACCOUNT_APIKEY=key)
        wait = int(response["Retry-After"])
        assert_exact_error(response, 429, "rate_limit_exceeded",
                           f"Too many failed authentications from this address; retry in {wait} s.")
        assert 1 <= wait <= 60

    assert_ok(APIClient(REMOTE_ADDR=neighbour).get(ROUTE, HTTP_X_SUBACCOUNT_APIKEY=tenants.a1.live_key))


def test_successful_requests_never_count_as_failures(api, settings, tenants):
    settings.MAILROOM_AUTH_FAILURES_PER_MINUTE = 2
    for _ in range(5):
        assert_ok(api(tenants.a1.live_key).get(ROUTE))


def test_public_views_without_a_key_are_never_limited_as_failures(settings, client, db):
    settings.MAILROOM_AUTH_FAILURES_PER_MINUTE = 1
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/schema/").status_code == 200


def test_the_one_trip_counter_shares_django_ratelimits_window_and_count(requires_redis, tenants):
    """key_usage counts with one Redis script (config.cache); django-ratelimit's get_usage, on the
    same key, window and cache entry, must see every count and add to the same one."""
    from django.core.cache import cache

    from accounts.principals import principal_for_key
    from accounts.throttling import key_usage

    raw = _key_with_time_left(tenants.a1, need=5, rate_limit=3)
    principal = principal_for_key(raw)
    request = RequestFactory().get("/")
    rate = "3/m"

    def theirs(increment: bool) -> dict:
        return get_usage(request, group=KEY_GROUP, key=lambda g, r: principal.key_id, rate=rate, increment=increment)

    ours = [key_usage(request, principal, increment=True)]
    assert theirs(False)["count"] == 1
    assert theirs(True)["count"] == 2
    ours.append(key_usage(request, principal, increment=False))
    ours.append(key_usage(request, principal, increment=True))
    ours.append(key_usage(request, principal, increment=True))
    assert [(u.remaining, u.limited) for u in ours] == [(2, False), (1, False), (0, False), (0, True)]
    assert theirs(False) == {"count": 4, "limit": 3, "should_limit": True,
                             "time_left": _seconds_left(KEY_GROUP, principal.key_id, rate)}
    # The entry expires with its window, as get_usage's would (period + its 5 s of slack).
    client = cache._cache.get_client(write=True)
    ttls = [client.ttl(name) for name in client.keys(f"{cache.key_prefix}*rl:*")]
    assert ttls and all(0 < ttl <= 65 for ttl in ttls)


def test_a_cache_outage_fails_open_for_the_one_trip_counter(requires_redis, settings, api, tenants):
    import redis

    from accounts.principals import principal_for_key
    from accounts.throttling import key_usage

    principal = principal_for_key(tenants.a1.live_key)
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    assert key_usage(RequestFactory().get("/"), principal, increment=True) is None
    response = api(tenants.a1.live_key).get(ROUTE)  # served, uncounted: no rate headers
    assert response.status_code == 200 and "X-RateLimit-Remaining" not in response
    settings.RATELIMIT_FAIL_OPEN = False
    with pytest.raises(redis.ConnectionError):
        key_usage(RequestFactory().get("/"), principal, increment=True)
