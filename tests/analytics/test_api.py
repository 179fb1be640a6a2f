"""GET /analytics/emails, /analytics/tags, /analytics/domains: exact bodies, buckets, filters, 422s, tenancy."""

import pytest

from analytics.selectors import OUTPUT_COUNTERS
from tests.analytics.conftest import at, make_email, record
from tests.conftest import assert_error, assert_ok
from tests.factories import make_key

pytestmark = pytest.mark.django_db
RANGE = {"from_date": "2026-02-26", "to_date": "2026-03-10"}


def counts(**values) -> dict:
    return {name: values.get(name, 0) for name in OUTPUT_COUNTERS}


def bucket(date: str, period: str | None = None, **values) -> dict:
    return {"date": date, "period": period or date, **counts(**values)}


@pytest.fixture
def data(tenants):
    """a1's live mail from Thu 2026-02-26 to Tue 2026-03-10, plus test mail and other tenants' mail."""
    e1 = make_email(tenants.a1, tags=["welcome"])
    record(e1, "sent", at("2026-02-26 10:00"))
    record(e1, "delivered", at("2026-02-26 10:01"))
    record(e1, "opened", at("2026-03-01 23:59"), unique=True, machine=False)  # Sunday: ISO week 9
    record(e1, "clicked", at("2026-03-02 00:00"), unique=True)  # Monday: ISO week 10
    e2 = make_email(tenants.a1, tags=["receipt"], domain="other.test")
    record(e2, "sent", at("2026-02-28 23:59:59"))
    record(e2, "delivered", at("2026-03-01 00:00:01"))  # a day and a month later than its send
    record(e2, "complained", at("2026-03-09 08:00"))
    e3 = make_email(tenants.a1, tags=["welcome", "alerts"])
    record(e3, "sent", at("2026-03-10 12:00"))
    record(e3, "bounced", at("2026-03-10 12:01"), bounce_type="hard")
    record(e3, "sent", at("2026-03-11 00:00"))  # after the range

    sandbox = make_email(tenants.a1, environment="test", tags=["welcome"])
    record(sandbox, "sent", at("2026-03-01 09:00"))
    record(sandbox, "delivered", at("2026-03-01 09:01"))
    for other in (tenants.a2, tenants.b1):
        email = make_email(other, tags=["welcome"])
        record(email, "sent", at("2026-03-01 10:00"))
        record(email, "bounced", at("2026-03-01 10:01"))
    return tenants


def test_it_answers_daily_totals_rates_and_every_day(api, data):
    body = assert_ok(api(data.a1.live_key).get("/api/v1/analytics/emails", RANGE))
    days = {d: bucket(d) for d in ["2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02",
                                   "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07",
                                   "2026-03-08", "2026-03-09", "2026-03-10"]}
    days["2026-02-26"] = bucket("2026-02-26", sent=1, delivered=1)
    days["2026-02-28"] = bucket("2026-02-28", sent=1)
    days["2026-03-01"] = bucket("2026-03-01", delivered=1, opened=1, unique_opened=1)
    days["2026-03-02"] = bucket("2026-03-02", clicked=1, unique_clicked=1)
    days["2026-03-09"] = bucket("2026-03-09", complained=1)
    days["2026-03-10"] = bucket("2026-03-10", sent=1, bounced=1, hard_bounced=1)
    assert body == {
        "from_date": "2026-02-26", "to_date": "2026-03-10", "group_by": "day", "environment": "live",
        "tag": None, "domain": None,
        "total": counts(sent=3, delivered=2, bounced=1, hard_bounced=1, complained=1, opened=1, unique_opened=1,
                        clicked=1, unique_clicked=1),
        "rates": {"delivery": 0.6667, "bounce": 0.3333, "complaint": 0.5, "open": 0.5, "click": 0.5},
        "by_date": list(days.values()),
    }


def test_it_groups_by_iso_week(api, data):
    body = assert_ok(api(data.a1.live_key).get("/api/v1/analytics/emails", {**RANGE, "group_by": "week"}))
    assert body["by_date"] == [
        bucket("2026-02-23", "2026-W09", sent=2, delivered=2, opened=1, unique_opened=1),
        bucket("2026-03-02", "2026-W10", clicked=1, unique_clicked=1),
        bucket("2026-03-09", "2026-W11", sent=1, bounced=1, hard_bounced=1, complained=1),
    ]
    assert body["total"]["sent"] == 3


def test_week_buckets_cross_the_year_with_iso_numbering(api, tenants):
    body = assert_ok(api(tenants.a1.live_key).get(
        "/api/v1/analytics/emails", {"from_date": "2026-12-30", "to_date": "2027-01-11", "group_by": "week"}))
    assert [(b["date"], b["period"]) for b in body["by_date"]] == [
        ("2026-12-28", "2026-W53"), ("2027-01-04", "2027-W01"), ("2027-01-11", "2027-W02")]


def test_it_groups_by_month(api, data):
    body = assert_ok(api(data.a1.live_key).get("/api/v1/analytics/emails", {**RANGE, "group_by": "month"}))
    assert body["by_date"] == [
        bucket("2026-02-01", "2026-02", sent=2, delivered=1),
        bucket("2026-03-01", "2026-03", sent=1, delivered=1, opened=1, unique_opened=1, clicked=1,
               unique_clicked=1, complained=1, bounced=1, hard_bounced=1),
    ]


def test_empty_ranges_have_every_bucket_with_zeros(api, tenants):
    body = assert_ok(api(tenants.a1.live_key).get(
        "/api/v1/analytics/emails", {"from_date": "2025-01-30", "to_date": "2025-04-02", "group_by": "month"}))
    assert body["by_date"] == [bucket("2025-01-01", "2025-01"), bucket("2025-02-01", "2025-02"),
                               bucket("2025-03-01", "2025-03"), bucket("2025-04-01", "2025-04")]
    assert body["total"] == counts()
    assert body["rates"] == {"delivery": 0.0, "bounce": 0.0, "complaint": 0.0, "open": 0.0, "click": 0.0}


def test_it_defaults_to_the_last_30_days(api, tenants):
    body = assert_ok(api(tenants.a1.live_key).get("/api/v1/analytics/emails"))
    assert len(body["by_date"]) == 30
    assert body["by_date"][-1]["date"] == body["to_date"]
    assert body["by_date"][0]["date"] == body["from_date"]


def test_it_filters_by_tag_and_by_domain(api, data):
    client = api(data.a1.live_key)
    welcome = assert_ok(client.get("/api/v1/analytics/emails", {**RANGE, "tag": "welcome"}))
    assert welcome["tag"] == "welcome"
    assert welcome["total"] == counts(sent=2, delivered=1, opened=1, unique_opened=1, clicked=1,
                                      unique_clicked=1, bounced=1, hard_bounced=1)
    other = assert_ok(client.get("/api/v1/analytics/emails", {**RANGE, "domain": "OTHER.test"}))
    assert other["total"] == counts(sent=1, delivered=1, complained=1)
    unknown = assert_ok(client.get("/api/v1/analytics/emails", {**RANGE, "tag": "nope"}))
    assert unknown["total"] == counts()


def test_the_environment_defaults_to_the_keys_own(api, data):
    test_view = assert_ok(api(data.a1.test_key).get("/api/v1/analytics/emails", RANGE))
    assert test_view["environment"] == "test"
    assert test_view["total"] == counts(sent=1, delivered=1)
    both = assert_ok(api(data.a1.live_key).get("/api/v1/analytics/emails", {**RANGE, "environment": "all"}))
    assert both["total"]["sent"] == 4 and both["total"]["delivered"] == 3


def test_another_subaccounts_numbers_never_appear(api, data):
    a2 = assert_ok(api(data.a2.live_key).get("/api/v1/analytics/emails", {**RANGE, "environment": "all"}))
    assert a2["total"] == counts(sent=1, bounced=1, hard_bounced=1)
    b2 = assert_ok(api(data.b2.live_key).get("/api/v1/analytics/emails", {**RANGE, "environment": "all"}))
    assert b2["total"] == counts()
    tags = assert_ok(api(data.b2.live_key).get("/api/v1/analytics/tags", RANGE))
    assert tags["tags"] == []


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"from_date": "2026-03-10", "to_date": "2026-03-09"}, "to_date", "Must be on or after from_date."),
    ({"from_date": "2025-01-01", "to_date": "2026-01-02"}, "to_date",
     "The range spans 367 days; at most 366 are allowed."),
    ({"group_by": "hour"}, "group_by", '"hour" is not a valid choice.'),
    ({"environment": "prod"}, "environment", '"prod" is not a valid choice.'),
    ({"tag": "a", "domain": "b.test"}, "domain", "Filter by tag or by domain, not both."),
    ({"from_date": "yesterday"}, "from_date", None),
])
def test_bad_queries_are_422_naming_the_field(api, tenants, params, field, message):
    error = assert_error(api(tenants.a1.live_key).get("/api/v1/analytics/emails", params), 422, "validation_error")
    assert list(error["details"]) == [field]
    if message:
        assert error["details"][field] == [message]


def test_a_366_day_range_is_allowed(api, tenants):
    body = assert_ok(api(tenants.a1.live_key).get(
        "/api/v1/analytics/emails", {"from_date": "2024-01-01", "to_date": "2024-12-31"}))
    assert len(body["by_date"]) == 366


def test_the_analytics_scope_is_required(api, tenants):
    key = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["emails:read"])
    for path in ("/api/v1/analytics/emails", "/api/v1/analytics/tags", "/api/v1/analytics/domains"):
        assert_error(api(key).get(path), 403, "authorization_error")
    allowed = make_key(account=tenants.a1.account, subaccount=tenants.a1.subaccount, scopes=["analytics:read"])
    assert_ok(api(allowed).get("/api/v1/analytics/emails"))


def test_account_keys_cannot_use_subaccount_routes(api, tenants):
    assert_error(api(tenants.a1.account_key).get("/api/v1/analytics/emails"), 401, "authentication_error")


def test_tags_are_ranked_by_sent_with_counts_and_pages(api, data):
    client = api(data.a1.live_key)
    first = assert_ok(client.get("/api/v1/analytics/tags", {**RANGE, "limit": 2}))
    welcome = counts(sent=2, delivered=1, opened=1, unique_opened=1, clicked=1, unique_clicked=1, bounced=1,
                     hard_bounced=1)
    assert first == {
        "tags": [
            {"tag": "welcome", "total": welcome,
             "rates": {"delivery": 0.5, "bounce": 0.5, "complaint": 0.0, "open": 1.0, "click": 1.0}},
            {"tag": "alerts", "total": counts(sent=1, bounced=1, hard_bounced=1),
             "rates": {"delivery": 0.0, "bounce": 1.0, "complaint": 0.0, "open": 0.0, "click": 0.0}},
        ],
        "pagination": {"total": 3, "limit": 2, "offset": 0, "has_more": True},
    }
    rest = assert_ok(client.get("/api/v1/analytics/tags", {**RANGE, "limit": 2, "offset": 2}))
    assert [t["tag"] for t in rest["tags"]] == ["receipt"]
    assert rest["pagination"] == {"total": 3, "limit": 2, "offset": 2, "has_more": False}
    assert_error(client.get("/api/v1/analytics/tags", {"limit": 101}), 422, "validation_error")


def test_domains_are_ranked_by_sent(api, data):
    body = assert_ok(api(data.a1.live_key).get("/api/v1/analytics/domains", RANGE))
    assert [(d["domain"], d["total"]["sent"], d["total"]["complained"]) for d in body["domains"]] == [
        ("acme.test", 2, 0), ("other.test", 1, 1)]
    assert body["pagination"]["total"] == 2


def test_the_bodies_match_their_documented_schema(api, data):
    """The views skip the output serializers for speed: these keep the schema honest."""
    from analytics import serializers as shapes

    client = api(data.a1.live_key)
    for path, params, shape in (
        ("/api/v1/analytics/emails", {**RANGE, "group_by": "week", "tag": "welcome"}, shapes.AnalyticsEmailsOutput),
        ("/api/v1/account/analytics/emails", RANGE, shapes.AccountAnalyticsEmailsOutput),
        ("/api/v1/analytics/tags", RANGE, None),
        ("/api/v1/analytics/domains", RANGE, None),
    ):
        caller = api(data.a1.account_key) if path.startswith("/api/v1/account") else client
        body = assert_ok(caller.get(path, params))
        if shape is None:
            key = path.rsplit("/", 1)[1]
            item = shapes.AnalyticsTagOutput if key == "tags" else shapes.AnalyticsDomainOutput
            assert set(body) == {key, "pagination"}
            for entry in body[key]:
                assert item({**entry, "value": entry[key[:-1]]}).data == entry
        else:
            assert shape(body).data == body
