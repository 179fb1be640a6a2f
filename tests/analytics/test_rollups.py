"""Rollup counters match a hand-computed set of events, recorded through email_events_record."""

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from analytics.models import DailyCounter
from analytics.selectors import utc_today
from emails.services import email_dispatch, email_event_record, email_events_fan_out_pending, email_send
from emails.services.events import NewEvent, email_events_record
from tests.analytics.conftest import at, counters, make_email, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def story(tenants):
    """Four emails of a1 (three live, one test) and their events over three UTC days."""
    e1 = make_email(tenants.a1, tags=["welcome", "onboarding"])
    e2 = make_email(tenants.a1, tags=["welcome"], domain="Mail.Other.test")
    e3 = make_email(tenants.a1)
    e4 = make_email(tenants.a1, environment="test", tags=["welcome"])

    record(e1, "queued", at("2026-03-01 23:50"))
    record(e1, "sent", at("2026-03-01 23:55"))
    record(e1, "delivered", at("2026-03-02 00:05"))  # late: after midnight, counts on the 2nd
    record(e1, "opened", at("2026-03-02 07:59"), unique=True, machine=True)
    record(e1, "opened", at("2026-03-02 08:00"), unique=True, machine=False)
    record(e1, "opened", at("2026-03-02 09:00"), unique=False, machine=False)
    record(e1, "clicked", at("2026-03-02 08:01"), unique=True, url="https://acme.test/a")
    record(e1, "clicked", at("2026-03-02 08:02"), unique=False, url="https://acme.test/a")
    record(e1, "unsubscribed", at("2026-03-03 10:00"))

    record(e2, "queued", at("2026-03-01 12:00"))
    record(e2, "sent", at("2026-03-01 12:01"))
    record(e2, "delivery_delayed", at("2026-03-01 12:01:30"))
    record(e2, "bounced", at("2026-03-01 12:02"), bounce_type="soft")
    record(e2, "bounced", at("2026-03-02 06:00"))  # no bounce_type: hard
    record(e2, "complained", at("2026-03-02 06:30"))

    record(e3, "scheduled", at("2026-03-01 10:00"), scheduled_at="2026-03-05T00:00:00Z")
    record(e3, "suppressed", at("2026-03-01 10:00"), reason="suppressed")
    record(e3, "scheduled", at("2026-03-01 11:00"), scheduled_at="2026-03-06T00:00:00Z", rescheduled=True)
    record(e3, "cancelled", at("2026-03-01 11:30"))
    # 01:30 at UTC+2 is 23:30 UTC the day before
    record(e3, "failed", datetime(2026, 3, 2, 1, 30, tzinfo=timezone(timedelta(hours=2))))

    record(e4, "queued", at("2026-03-01 09:00"))
    record(e4, "sent", at("2026-03-01 09:00:01"))
    record(e4, "delivered", at("2026-03-01 09:00:02"))
    return tenants


def test_it_counts_every_event_on_its_own_utc_day(story):
    a1 = story.a1
    assert counters(a1, day="2026-03-01") == {
        "accepted": 3, "sent": 2, "delivery_delayed": 1, "soft_bounced": 1, "cancelled": 1, "suppressed": 1,
        "failed": 1,
    }
    assert counters(a1, day="2026-03-02") == {
        "delivered": 1, "opened": 2, "unique_opened": 1, "machine_opened": 1, "clicked": 2, "unique_clicked": 1,
        "hard_bounced": 1, "complained": 1,
    }
    assert counters(a1, day="2026-03-03") == {"unsubscribed": 1}
    assert counters(a1, day="2026-02-28") == {}


def test_it_counts_per_tag_and_per_lowercased_sending_domain(story):
    a1 = story.a1
    assert counters(a1, day="2026-03-01", dimension="tag", value="welcome") == {
        "accepted": 2, "sent": 2, "delivery_delayed": 1, "soft_bounced": 1}
    assert counters(a1, day="2026-03-01", dimension="tag", value="onboarding") == {"accepted": 1, "sent": 1}
    assert counters(a1, day="2026-03-02", dimension="tag", value="onboarding") == {
        "delivered": 1, "opened": 2, "unique_opened": 1, "machine_opened": 1, "clicked": 2, "unique_clicked": 1}
    assert counters(a1, day="2026-03-01", dimension="domain", value="mail.other.test") == {
        "accepted": 1, "sent": 1, "delivery_delayed": 1, "soft_bounced": 1}
    assert counters(a1, day="2026-03-01", dimension="domain", value="acme.test") == {
        "accepted": 2, "sent": 1, "cancelled": 1, "suppressed": 1, "failed": 1}


def test_it_keeps_test_mail_apart_from_live_mail(story):
    assert counters(story.a1, day="2026-03-01", environment="test") == {"accepted": 1, "sent": 1, "delivered": 1}
    assert counters(story.a1, day="2026-03-01", environment="test", dimension="tag", value="welcome") == {
        "accepted": 1, "sent": 1, "delivered": 1}


def test_it_writes_nothing_for_another_subaccount(story):
    assert not DailyCounter.objects.exclude(subaccount=story.a1.subaccount).exists()
    assert set(DailyCounter.objects.values_list("account_id", flat=True)) == {story.a1.account.pk}


def test_a_batch_costs_one_extra_statement(tenants):
    emails = [make_email(tenants.a1, tags=[f"t{i % 7}", "all"], domain=f"d{i % 3}.test") for i in range(100)]
    events = [NewEvent(email=email, type=kind, timestamp=at("2026-03-01 12:00") + timedelta(minutes=i))
              for i, email in enumerate(emails) for kind in ("queued", "sent", "delivered", "opened", "clicked")]
    with CaptureQueriesContext(connection) as queries:
        email_events_record(events)
    touching = [q["sql"] for q in queries.captured_queries if "analytics_dailycounter" in q["sql"]]
    assert len(touching) == 1
    assert counters(tenants.a1, day="2026-03-01", dimension="tag", value="all") == {
        "accepted": 100, "sent": 100, "delivered": 100, "opened": 100, "unique_opened": 100, "clicked": 100,
        "unique_clicked": 100}


def test_counters_roll_back_with_the_events(tenants):
    email = make_email(tenants.a1)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(email, "sent", at("2026-03-01 12:00"))
        raise RuntimeError("the caller's transaction fails after recording")
    assert not DailyCounter.objects.exists()


def test_a_replayed_provider_event_counts_once(tenants):
    email = make_email(tenants.a1)
    for _ in range(2):
        email_event_record(email=email, type="delivered", recipient="user@example.com",
                           timestamp=at("2026-03-01 12:00"), provider_event_id="esp-evt-1")
    assert counters(tenants.a1, day="2026-03-01") == {"delivered": 1}


def test_the_send_path_counts_accepted_mail_today(tenants):
    body = {"from": "hello@acme.test", "to": "user@example.com", "subject": "Hi", "text": "Hello",
            "tags": ["receipt"]}
    email_send(subaccount=tenants.a1.subaccount, environment="live", data=body)
    email_send(subaccount=tenants.a1.subaccount, environment="live", data=body)
    email_send(subaccount=tenants.a1.subaccount, environment="test", data=body)
    today = utc_today().isoformat()
    assert counters(tenants.a1, day=today) == {}  # the fan-out (beat, every second) counts them
    assert email_events_fan_out_pending() == 3
    assert counters(tenants.a1, day=today) == {"accepted": 2}
    assert counters(tenants.a1, day=today, dimension="tag", value="receipt") == {"accepted": 2}
    assert counters(tenants.a1, day=today, environment="test") == {"accepted": 1}


def test_the_simulator_pipeline_is_counted_end_to_end(tenants):
    email = email_send(subaccount=tenants.a1.subaccount, environment="test", data={
        "from": "hello@acme.test", "to": ["open@simulator.mailroom.test", "bounce@simulator.mailroom.test"],
        "subject": "Hi", "text": "Hello", "tags": ["sim"]})
    assert email_dispatch(ids=[email.pk]) == 1
    today = utc_today().isoformat()
    assert counters(tenants.a1, day=today, environment="test", dimension="tag", value="sim") == {
        "accepted": 1, "sent": 1, "delivered": 1, "opened": 1, "unique_opened": 1, "clicked": 1,
        "unique_clicked": 1, "hard_bounced": 1}


def test_the_portable_fallback_adds_like_the_upsert(tenants):
    from analytics import services
    from analytics.rollups import new_tally, tally_add

    email = make_email(tenants.a1, tags=["x"])
    for _ in range(2):
        tally = new_tally()
        tally_add(tally, event_type="sent", data={}, timestamp=at("2026-03-01 12:00"),
                  subaccount_id=email.subaccount_id, account_id=email.account_id, environment="live",
                  tags=email.tags, from_domain=email.from_domain)
        services._increment_portably(sorted(tally.items()), 0)
    assert counters(tenants.a1, day="2026-03-01") == {"sent": 2}
    assert counters(tenants.a1, day="2026-03-01", dimension="tag", value="x") == {"sent": 2}
