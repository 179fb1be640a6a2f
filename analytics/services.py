"""Rollup writes: increments as events are recorded, and the rebuild from event rows."""

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from accounts.models import SubAccount
from analytics.models import COUNTERS, DailyCounter
from analytics.rollups import Key, Tally, new_tally, tally_add
from emails.models import EmailEvent, PendingFanout

_KEY_COLUMNS = ("subaccount_id", "dimension", "value", "environment", "day", "account_id")
_CONFLICT_COLUMNS = (*_KEY_COLUMNS[:5], "shard")
# PostgreSQL caps a statement at 65,535 parameters; 2,000 rows x 22 columns stays below it.
_MAX_ROWS_PER_STATEMENT = 2000


def rollups_apply(events: Iterable[EmailEvent]) -> None:
    """Add recorded events to the daily counters, in the caller's transaction.

    Called by ``emails.services.events.email_events_record`` right after the event rows are
    inserted, so counters and events commit (or roll back) together. A batch is tallied in
    Python first and written with one upsert statement (up to 2,000 distinct keys per statement).
    """
    tally = new_tally()
    for event in events:
        email = event.email
        tally_add(tally, event_type=event.type, data=event.data, timestamp=event.timestamp,
                  subaccount_id=email.subaccount_id, account_id=email.account_id,
                  environment=email.environment, tags=email.tags, from_domain=email.from_domain)
    if tally:
        _increment(tally)


def _increment(tally: Tally) -> None:
    # Sorted by key, every transaction locks rows in the same order: two batches touching the
    # same rows queue behind each other instead of deadlocking.
    rows = sorted(tally.items())
    shard = random.randrange(max(1, settings.MAILROOM_ANALYTICS_SHARDS))
    if connection.vendor in ("postgresql", "sqlite"):
        for start in range(0, len(rows), _chunk_size()):
            _upsert(rows[start:start + _chunk_size()], shard)
    else:
        _increment_portably(rows, shard)


def _chunk_size() -> int:
    columns = len(_KEY_COLUMNS) + 1 + len(COUNTERS)
    max_params = connection.features.max_query_params or 65535
    return max(1, min(_MAX_ROWS_PER_STATEMENT, max_params // columns))


def _upsert(rows: list[tuple[Key, dict]], shard: int) -> None:
    """INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c (PostgreSQL; SQLite >= 3.24).

    The database adds under the row lock, so concurrent writers never lose an increment (a
    read-modify-write in Python would). Django's bulk_create(update_conflicts=True) can only
    overwrite a column, not add to it, hence the SQL.
    """
    qn = connection.ops.quote_name
    table = qn(DailyCounter._meta.db_table)
    columns = (*_KEY_COLUMNS, "shard", *COUNTERS)
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params: list = []
    for key, counts in rows:
        params.extend((key.subaccount_id, key.dimension, key.value, key.environment,
                       connection.ops.adapt_datefield_value(key.day), key.account_id, shard))
        params.extend(counts.get(name, 0) for name in COUNTERS)
    sql = (
        f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) VALUES {', '.join([row_sql] * len(rows))} "
        f"ON CONFLICT ({', '.join(qn(c) for c in _CONFLICT_COLUMNS)}) DO UPDATE SET "
        + ", ".join(f"{qn(c)} = {table}.{qn(c)} + EXCLUDED.{qn(c)}" for c in COUNTERS)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _increment_portably(rows: list[tuple[Key, dict]], shard: int) -> None:
    """For databases without ON CONFLICT: UPDATE with F(), INSERT when missing, retry on a race."""
    for key, counts in rows:
        lookup = {"subaccount_id": key.subaccount_id, "dimension": key.dimension, "value": key.value,
                  "environment": key.environment, "day": key.day, "shard": shard}
        increments = {name: F(name) + value for name, value in counts.items() if value}
        if DailyCounter.objects.filter(**lookup).update(**increments):
            continue
        try:
            with transaction.atomic():
                DailyCounter.objects.create(account_id=key.account_id, **lookup, **counts)
        except IntegrityError:  # another transaction inserted it first: add to its row
            DailyCounter.objects.filter(**lookup).update(**increments)


# --- rebuild -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    key: Key
    counter: str
    stored: int
    expected: int

    def __str__(self) -> str:
        slice_ = f"{self.key.dimension}={self.key.value}" if self.key.value else self.key.dimension
        return (f"subaccount={self.key.subaccount_id} day={self.key.day} env={self.key.environment} {slice_} "
                f"{self.counter}: stored {self.stored}, events say {self.expected}")


@dataclass
class RebuildReport:
    events: int = 0
    rows: int = 0
    differences: list[Difference] = field(default_factory=list)
    rewritten: bool = False


def rollups_compute(*, subaccount: SubAccount | None = None) -> tuple[Tally, int]:
    """Count the event rows into a tally, the same way ``rollups_apply`` does; returns (tally, events)."""
    # Events whose fan-out is pending are not in the counters yet (emails.services.events).
    events = EmailEvent.objects.exclude(pk__in=PendingFanout.objects.values("event_id"))
    if subaccount is not None:
        events = events.filter(email__subaccount=subaccount)
    tally = new_tally()
    seen = 0
    fields = ("type", "data", "timestamp", "email__subaccount_id", "email__account_id", "email__environment",
              "email__tags", "email__from_domain")
    for event_type, data, timestamp, subaccount_id, account_id, environment, tags, domain in (
            events.order_by().values_list(*fields).iterator(chunk_size=5000)):
        seen += 1
        tally_add(tally, event_type=event_type, data=data, timestamp=timestamp, subaccount_id=subaccount_id,
                  account_id=account_id, environment=environment, tags=tags, from_domain=domain)
    return tally, seen


def _stored(subaccount: SubAccount | None) -> dict[Key, dict]:
    rows = DailyCounter.objects.all()
    if subaccount is not None:
        rows = rows.filter(subaccount=subaccount)
    stored: dict[Key, dict] = {}
    for row in rows.order_by().values(*_KEY_COLUMNS, *COUNTERS).iterator(chunk_size=5000):
        key = Key(*(row[c] for c in _KEY_COLUMNS))
        totals = stored.setdefault(key, dict.fromkeys(COUNTERS, 0))
        for name in COUNTERS:  # the shards of one key add up
            totals[name] += row[name]
    return stored


def _differences(expected: Tally, stored: dict[Key, dict]) -> list[Difference]:
    found = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key, {}), stored.get(key, {})
        for name in COUNTERS:
            if want.get(name, 0) != have.get(name, 0):
                found.append(Difference(key, name, have.get(name, 0), want.get(name, 0)))
    return found


def _lock_counters(*, exclusive: bool) -> None:
    """Hold off event recording while we count, so the comparison sees one consistent state.

    Writers take ROW EXCLUSIVE; SHARE (check) and SHARE ROW EXCLUSIVE (rebuild) both make them
    wait, and the rebuild mode also excludes a second rebuild. Taken before the first read, so
    under READ COMMITTED every transaction that already incremented has committed and is counted,
    and every later one adds its increment on top of what we write.
    """
    if connection.vendor != "postgresql":
        return  # SQLite serialises writers on its database lock
    mode = "SHARE ROW EXCLUSIVE" if exclusive else "SHARE"
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {connection.ops.quote_name(DailyCounter._meta.db_table)} IN {mode} MODE")


def rollups_rebuild(*, subaccount: SubAccount | None = None, check_only: bool = False) -> RebuildReport:
    """Recount the counters from the event rows; rewrite them unless ``check_only``. Idempotent.

    Reports every counter whose stored value differs from the events' count (none, when the
    live path works). Event recording waits while it runs (see ``_lock_counters``).
    """
    with transaction.atomic():
        _lock_counters(exclusive=not check_only)
        expected, seen = rollups_compute(subaccount=subaccount)
        stored = _stored(subaccount)
        report = RebuildReport(events=seen, rows=len(expected), differences=_differences(expected, stored))
        if report.differences and not check_only:
            existing = DailyCounter.objects.all()
            if subaccount is not None:
                existing = existing.filter(subaccount=subaccount)
            existing.delete()
            DailyCounter.objects.bulk_create(
                [DailyCounter(subaccount_id=key.subaccount_id, account_id=key.account_id, day=key.day,
                              environment=key.environment, dimension=key.dimension, value=key.value,
                              **{name: counts.get(name, 0) for name in COUNTERS})
                 for key, counts in sorted(expected.items())],
                batch_size=1000,
            )
            report.rewritten = True
    return report
