"""Account scope: /account/analytics/emails (all sub-accounts + breakdown) and /account/usage."""

from datetime import timedelta

import pytest

from accounts.models import Plan
from analytics.selectors import OUTPUT_COUNTERS, utc_today
from emails.services import email_events_fan_out_pending, email_send
from tests.analytics.conftest import at, make_email, record
from tests.conftest import assert_error, assert_ok
from tests.factories import SubAccountFactory

pytestmark = pytest.mark.django_db
RANGE = {"from_date": "2026-03-01", "to_date": "2026-03-02"}
NO_RATES = {"delivery": 0.0, "bounce": 0.0, "complaint": 0.0, "open": 0.0, "click": 0.0}


def counts(**values) -> dict:
    return {name: values.get(name, 0) for name in OUTPUT_COUNTERS}


@pytest.fixture
def data(tenants):
    a1 = make_email(tenants.a1)
    record(a1, "sent", at("2026-03-01 10:00"))
    record(a1, "delivered", at("2026-03-02 10:00"))
    a2 = make_email(tenants.a2, tags=["x"])
    record(a2, "sent", at("2026-03-01 11:00"))
    record(a2, "bounced", at("2026-03-01 11:01"), bounce_type="soft")
    record(make_email(tenants.a2, environment="test"), "sent", at("2026-03-01 12:00"))
    record(make_email(tenants.b1), "sent", at("2026-03-01 12:00"))
    return tenants


def test_it_sums_the_accounts_subaccounts_with_a_breakdown(api, data):
    body = assert_ok(api(data.a1.account_key).get("/api/v1/account/analytics/emails", RANGE))
    assert body == {
        "from_date": "2026-03-01", "to_date": "2026-03-02", "group_by": "day", "environment": "live",
        "tag": None, "domain": None,
        "total": counts(sent=2, delivered=1, bounced=1, soft_bounced=1),
        "rates": {"delivery": 0.5, "bounce": 0.5, "complaint": 0.0, "open": 0.0, "click": 0.0},
        "by_date": [{"date": "2026-03-01", "period": "2026-03-01", **counts(sent=2, bounced=1, soft_bounced=1)},
                    {"date": "2026-03-02", "period": "2026-03-02", **counts(delivered=1)}],
        "subaccounts": [
            {"id": data.a1.subaccount.public_id, "name": "a1", "total": counts(sent=1, delivered=1),
             "rates": {"delivery": 1.0, "bounce": 0.0, "complaint": 0.0, "open": 0.0, "click": 0.0}},
            {"id": data.a2.subaccount.public_id, "name": "a2", "total": counts(sent=1, bounced=1, soft_bounced=1),
             "rates": {"delivery": 0.0, "bounce": 1.0, "complaint": 0.0, "open": 0.0, "click": 0.0}},
        ],
    }


def test_another_accounts_numbers_never_appear(api, data):
    body = assert_ok(api(data.b1.account_key).get("/api/v1/account/analytics/emails", RANGE))
    assert body["total"] == counts(sent=1)
    assert [(s["name"], s["total"]["sent"]) for s in body["subaccounts"]] == [("b1", 1), ("b2", 0)]


def test_filters_and_environment_apply_in_account_scope(api, data):
    client = api(data.a1.account_key)
    tagged = assert_ok(client.get("/api/v1/account/analytics/emails", {**RANGE, "tag": "x"}))
    assert tagged["total"] == counts(sent=1, bounced=1, soft_bounced=1)
    assert [s["total"]["sent"] for s in tagged["subaccounts"]] == [0, 1]
    everything = assert_ok(client.get("/api/v1/account/analytics/emails", {**RANGE, "environment": "all"}))
    assert everything["total"]["sent"] == 3
    assert everything["subaccounts"][1]["rates"] == {**NO_RATES, "bounce": 0.5}


def test_account_scope_validates_like_the_subaccount_scope(api, tenants):
    error = assert_error(api(tenants.a1.account_key).get(
        "/api/v1/account/analytics/emails", {"from_date": "2026-03-02", "to_date": "2026-03-01"}),
        422, "validation_error")
    assert error["details"] == {"to_date": ["Must be on or after from_date."]}


def test_subaccount_keys_cannot_use_account_routes(api, tenants):
    for path in ("/api/v1/account/analytics/emails", "/api/v1/account/usage"):
        assert_error(api(tenants.a1.live_key).get(path), 401, "authentication_error")


def _send(tenant, environment="live", count=1):
    body = {"from": "hello@acme.test", "to": "user@example.com", "subject": "Hi", "text": "Hello"}
    for _ in range(count):
        email_send(subaccount=tenant.subaccount, environment=environment, data=body)
    email_events_fan_out_pending()  # what the beat does within a second: the counters see them


def test_usage_counts_live_mail_this_month_per_subaccount_against_the_plan(api, tenants):
    _send(tenants.a1, count=2)
    _send(tenants.a2)
    _send(tenants.a1, environment="test")  # test mail never counts
    _send(tenants.b1)
    SubAccountFactory(account=tenants.a1.account, name="a3")
    body = assert_ok(api(tenants.a1.account_key).get("/api/v1/account/usage"))
    month = utc_today().replace(day=1)
    next_month = (month + timedelta(days=31)).replace(day=1)
    assert body["period"] == {"month": f"{month:%Y-%m}", "start": month.isoformat(),
                              "end": (next_month - timedelta(days=1)).isoformat(),
                              "resets_at": f"{next_month.isoformat()}T00:00:00Z"}
    assert {k: v for k, v in body.items() if k != "period"} == {
        "plan": {"code": "free", "name": "Free"},
        "emails": {"used": 3, "quota": 1000, "remaining": 997},
        "rate_limit": {"requests_per_minute": 60},
        "subaccounts": [
            {"id": tenants.a1.subaccount.public_id, "name": "a1", "emails": 2},
            {"id": tenants.a2.subaccount.public_id, "name": "a2", "emails": 1},
            {"id": tenants.a1.account.subaccounts.get(name="a3").public_id, "name": "a3", "emails": 0},
        ],
    }


def test_usage_of_an_unlimited_plan_has_no_quota(api, tenants):
    account = tenants.b1.account
    account.plan = Plan.objects.get(code="enterprise")
    account.save()
    _send(tenants.b1)
    body = assert_ok(api(tenants.b1.account_key).get("/api/v1/account/usage"))
    assert body["emails"] == {"used": 1, "quota": None, "remaining": None}
    assert body["rate_limit"] == {"requests_per_minute": 1200}
    assert [s["emails"] for s in body["subaccounts"]] == [1, 0]


def test_usage_counts_only_the_current_utc_month(tenants):
    from datetime import date

    from analytics.selectors import usage_get

    for when in ("2026-02-28 23:59:59", "2026-03-01 00:00:00", "2026-03-31 23:59:59", "2026-04-01 00:00:00"):
        record(make_email(tenants.a1), "queued", at(when))
    record(make_email(tenants.a1), "scheduled", at("2026-03-02 00:00"))
    record(make_email(tenants.a1), "scheduled", at("2026-03-03 00:00"), rescheduled=True)  # same email again
    usage = usage_get(account=tenants.a1.account, today=date(2026, 3, 15))
    assert usage["period"]["start"] == date(2026, 3, 1) and usage["period"]["end"] == date(2026, 3, 31)
    assert [(s["name"], s["emails"]) for s in usage["subaccounts"]] == [("a1", 3), ("a2", 0)]
