"""Analytics fixtures: emails and events built with the real recording path (email_events_record)."""

from datetime import UTC, datetime

import pytest

from analytics.models import DailyCounter
from emails.models import Email
from emails.services.events import NewEvent, email_events_record


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch, settings):
    """Accepting mail must not publish to a broker here; sending is not what these tests are about."""
    from emails.services import accept

    settings.MAILROOM_REQUIRE_VERIFIED_DOMAIN = False
    monkeypatch.setattr(accept, "enqueue_dispatch", lambda ids: None)
    # The quota module remembers which usage rows exist; after a rolled-back test (SQLite reuses
    # ids) it would believe in rows that are gone and count nothing.
    from emails.services import quota

    getattr(quota, "_known_rows", set()).clear()


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
    """The stored counters of one rollup row, without zeros ({} when the row does not exist)."""
    row = DailyCounter.objects.filter(subaccount=tenant.subaccount, day=day, dimension=dimension, value=value,
                                      environment=environment).values().first()
    if row is None:
        return {}
    skip = {"id", "subaccount_id", "account_id", "day", "environment", "dimension", "value"}
    return {name: count for name, count in row.items() if name not in skip and count}
