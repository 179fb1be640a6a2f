"""Analytics fixtures: emails and events built with the real recording path (email_events_record)."""

from datetime import UTC, datetime

import pytest
from django.db.models import Sum

from analytics.models import COUNTERS, DailyCounter
from emails.models import Email
from emails.services.events import NewEvent, email_events_record


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch, settings):
    """Accepting mail must not publish to a broker here; sending is not what these tests are about."""
    from emails.services import accept

    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    # One counter row per key, so tests can read and edit "the" row; test_shards.py covers more.
    settings.MAILROOM_ANALYTICS_SHARDS = 1
    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: None)
    monkeypatch.setattr(accept, "dispatch_wake", lambda ids: None)


def at(text: str) -> datetime:
    """``at("2026-03-01 23:59")`` -> an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_email(tenant, *, environment: str = "live", tags=(), domain: str = "acme.test",
               to: str = "user@example.com") -> Email:
    return Email.objects.create(
        account=tenant.account, subaccount=tenant.subaccount, environment=environment,
        from_header=f"Acme <hello@{domain}>", from_address=f"hello@{domain}", from_domain=domain, to=[to],
        tags=list(tags), tags_index="," + ",".join(tags) + "," if tags else "",
    )


def record(email: Email, event_type: str, when: datetime, recipient: str = "user@example.com", **data) -> None:
    email_events_record([NewEvent(email=email, type=event_type, recipient=recipient, data=data, timestamp=when)])


def counters(tenant, *, day: str, dimension: str = "all", value: str = "", environment: str = "live") -> dict:
    """The stored counters of one rollup key (its shards summed), without zeros ({} when none)."""
    rows = DailyCounter.objects.filter(subaccount=tenant.subaccount, day=day, dimension=dimension, value=value,
                                       environment=environment)
    if not rows.exists():
        return {}
    totals = rows.aggregate(**{name: Sum(name) for name in COUNTERS})
    return {name: count for name, count in totals.items() if count}
