"""Which counters an event moves, and under which rollup keys.

Pure functions shared by live recording (``rollups_apply``) and the rebuild from event rows
(``rollups_compute``), so the two cannot count differently.
"""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from typing import NamedTuple

from analytics.models import Dimension
from emails.models import EventType


class Key(NamedTuple):
    """A rollup row's identity, in the unique constraint's column order (the lock order too)."""

    subaccount_id: int
    dimension: str
    value: str
    environment: str
    day: date
    account_id: int  # determined by subaccount_id; carried along for the insert


Tally = dict[Key, Counter]

_SIMPLE = {
    EventType.QUEUED: ("accepted",),
    EventType.SENT: ("sent",),
    EventType.DELIVERED: ("delivered",),
    EventType.DELIVERY_DELAYED: ("delivery_delayed",),
    EventType.COMPLAINED: ("complained",),
    EventType.UNSUBSCRIBED: ("unsubscribed",),
    EventType.FAILED: ("failed",),
    EventType.CANCELLED: ("cancelled",),
    EventType.SUPPRESSED: ("suppressed",),
}


def event_counters(event_type: str, data) -> tuple[str, ...]:
    """The counter columns one event adds 1 to."""
    data = data if isinstance(data, dict) else {}
    if event_type == EventType.SCHEDULED:
        # A reschedule records another ``scheduled`` event for the same email: accepted once.
        return () if data.get("rescheduled") else ("accepted",)
    if event_type == EventType.BOUNCED:
        # Same rule as the suppression list: "hard" or no type is hard, anything else soft.
        return ("hard_bounced",) if data.get("bounce_type", "hard") == "hard" else ("soft_bounced",)
    if event_type == EventType.OPENED:
        if data.get("machine"):
            return ("machine_opened",)
        # Sources that cannot tell (the simulator, some providers) report first opens.
        return ("opened", "unique_opened") if data.get("unique", True) else ("opened",)
    if event_type == EventType.CLICKED:
        return ("clicked", "unique_clicked") if data.get("unique", True) else ("clicked",)
    return _SIMPLE.get(event_type, ())


def event_day(timestamp: datetime) -> date:
    """The UTC day an event counts on: its own timestamp's, not the email's."""
    if timestamp.tzinfo is None:
        return timestamp.date()
    return timestamp.astimezone(UTC).date()


def rollup_keys(*, subaccount_id: int, account_id: int, environment: str, tags, from_domain: str,
                day: date) -> list[Key]:
    keys = [Key(subaccount_id, Dimension.ALL.value, "", environment, day, account_id)]
    for tag in sorted({str(t)[:255] for t in (tags or []) if t}):
        keys.append(Key(subaccount_id, Dimension.TAG.value, tag, environment, day, account_id))
    if from_domain:
        keys.append(Key(subaccount_id, Dimension.DOMAIN.value, from_domain.lower()[:255], environment, day,
                        account_id))
    return keys


def new_tally() -> Tally:
    return defaultdict(Counter)


def tally_add(tally: Tally, *, event_type: str, data, timestamp: datetime, subaccount_id: int, account_id: int,
              environment: str, tags, from_domain: str) -> None:
    counters = event_counters(event_type, data)
    if not counters:
        return
    for key in rollup_keys(subaccount_id=subaccount_id, account_id=account_id, environment=environment,
                           tags=tags, from_domain=from_domain, day=event_day(timestamp)):
        row = tally[key]
        for name in counters:
            row[name] += 1
