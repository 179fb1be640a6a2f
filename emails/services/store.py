"""Storing accepted mail: emails, recipients, attachments, tracked links, first events, usage.

On PostgreSQL a send (one email or a 500-email batch) is one INSERT statement: each table's
rows travel as one JSON document (``config.recordsets``) and data-modifying CTEs insert the
emails, then their children joined by public id, the first events with their pending
fan-out rows, and the month's usage. One statement is atomic on its own, so outside a
transaction there is no BEGIN/COMMIT either; the API's single send costs one round trip
here instead of nine. Elsewhere (the embedded SQLite default) the ORM does the same work
with a statement per table; both write the same rows.

The first events' webhooks and counters are left to ``email_events_fan_out`` (the dispatcher
and a beat task), so the request does not pay for them.

The suppression list is checked by the same statement: the rows are written only if the list
still suppresses exactly the recipients the prepared rows mark as suppressed, and otherwise
nothing is written and ``SuppressionsChanged`` says what the list says now. A single send is
prepared assuming no suppressions and stored in one round trip; the rare send to a suppressed
address is prepared again (``emails.services.accept``). This also closes the window in which a
suppression added between a separate lookup and the insert went unnoticed.
"""

import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

import psycopg
from django.db import connection, transaction

from accounts.models import SubAccount
from config.instances import instance
from config.recordsets import Recordset, dumps, recordset
from emails.models import (
    Email,
    EmailAttachment,
    EmailEvent,
    EmailRecipient,
    EmailStatus,
    EventType,
    MonthlyUsage,
    PendingFanout,
    Suppression,
    TrackedLink,
)
from emails.services.events import NewEvent, email_events_record
from emails.services.quota import SLOTS, month_start, quota_consume
from emails.services.suppressions import suppressed_addresses


class SuppressionsChanged(Exception):  # noqa: N818 - a signal to prepare again, not a failure
    """Nothing was stored: the suppression list does not say what the prepared rows assumed."""

    def __init__(self, suppressed: set[str]):
        super().__init__(f"suppressed now: {sorted(suppressed)}")
        self.suppressed = suppressed


@dataclass
class PreparedEmail:
    """An email ready to store, as column values by attname (``subaccount_id``, not
    ``subaccount``). Plain dicts: a batch of 500 would spend more CPU building model instances
    than storing them; ``email`` builds the instance when one is needed (the API's response)."""

    values: dict
    recipients: list[dict]
    attachments: list[dict]
    subaccount: SubAccount
    suppressed: list[str] = field(default_factory=list)
    tracked_links: list[str] = field(default_factory=list)  # original URLs by link index
    _email: Email | None = None

    @property
    def email(self) -> Email:
        if self._email is None:
            self._email = instance(Email, **self.values)
            self._email.subaccount = self.subaccount
            self._email._state.adding = "id" not in self.values
        return self._email


def _first_events(item: PreparedEmail, now: datetime) -> list[dict]:
    """``queued`` or ``scheduled``, and ``suppressed`` for each dropped recipient."""
    values = item.values
    scheduled_at = values["scheduled_at"]
    first = EventType.SCHEDULED if values["status"] == EmailStatus.SCHEDULED else EventType.QUEUED
    events = [{"type": first, "recipient": "", "timestamp": now,
               "data": {"scheduled_at": scheduled_at.isoformat()} if scheduled_at else {}}]
    events.extend({"type": EventType.SUPPRESSED, "recipient": address, "data": {"reason": "suppressed"},
                   "timestamp": now} for address in item.suppressed)
    return events


def _suppression_assumption(prepared: list[PreparedEmail]) -> tuple[list[str], set[str]]:
    """Every recipient address of these emails, and those the rows mark as suppressed."""
    addresses, suppressed = set(), set()
    for item in prepared:
        for row in item.recipients:
            addresses.add(row["address"])
            if row["suppressed"]:
                suppressed.add(row["address"])
    return sorted(addresses), suppressed


def emails_store(prepared: list[PreparedEmail], *, live: bool, now: datetime) -> None:
    """Write the prepared emails and everything that belongs to them; sets each ``values["id"]``.

    Counts ``live`` emails against the account's month (the caller checked the quota). Raises
    ``SuppressionsChanged``, having written nothing, when the sub-account's suppression list
    does not suppress exactly the recipients marked ``suppressed``.
    """
    if connection.vendor == "postgresql":
        _store_in_one_statement(prepared, live=live, now=now)
    else:
        _store_with_orm(prepared, live=live, now=now)


def _store_with_orm(prepared: list[PreparedEmail], *, live: bool, now: datetime) -> None:
    addresses, assumed = _suppression_assumption(prepared)
    with transaction.atomic():
        actual = suppressed_addresses(subaccount_id=prepared[0].values["subaccount_id"], addresses=addresses)
        if actual != assumed:
            raise SuppressionsChanged(actual)
        emails = Email.objects.bulk_create([p.email for p in prepared])
        recipients, attachments, links, events = [], [], [], []
        for item, email in zip(prepared, emails, strict=True):
            item.values["id"] = email.pk
            links.extend(TrackedLink(email=email, index=index, url=url)
                         for index, url in enumerate(item.tracked_links))
            recipients.extend(instance(EmailRecipient, email_id=email.pk, **row) for row in item.recipients)
            attachments.extend(instance(EmailAttachment, email_id=email.pk, **row) for row in item.attachments)
            events.extend(NewEvent(email=email, **event) for event in _first_events(item, now))
        EmailRecipient.objects.bulk_create(recipients)
        EmailAttachment.objects.bulk_create(attachments)
        TrackedLink.objects.bulk_create(links, batch_size=2000)
        email_events_record(events, defer_fan_out=True)
        if live:
            quota_consume(account=emails[0].account, count=len(emails))


# --- PostgreSQL: one statement -------------------------------------------------------------


@cache
def _recordsets() -> dict[str, Recordset]:
    return {
        "emails": recordset(Email),
        "recipients": recordset(EmailRecipient, leave_out=("email",)),
        "attachments": recordset(EmailAttachment, leave_out=("email",)),
        "links": recordset(TrackedLink, leave_out=("email",)),
        "events": recordset(EmailEvent, leave_out=("email",)),
    }


@cache
def _statement() -> tuple[bytes, tuple[str, ...]]:
    """The statement with ``$n`` placeholders, and the parameter name of each ``n``."""
    sets = _recordsets()
    emails = sets["emails"]

    def children(name: str, returning: str = "") -> str:
        rows = sets[name]
        return (f"INSERT INTO {rows.table} (email_id, {rows.insert_columns()}) "
                f"SELECT e.id, {rows.select_values('x')} "
                f"FROM jsonb_to_recordset(%({name})s::jsonb) AS x({rows.definition('ord integer', 'email_ref text')}) "
                f"JOIN e ON e.public_id = x.email_ref ORDER BY x.ord {returning}")

    usage = MonthlyUsage._meta.db_table
    suppressions = Suppression._meta.db_table
    named = (
        # The suppression list as it is now, for these recipients; the rows are written only
        # when it is what they were prepared with (as sets: arrays compare in order).
        f"WITH s AS (SELECT coalesce(array_agg(address::text), '{{}}') AS now FROM {suppressions} "
        f"WHERE subaccount_id = %(subaccount_id)s AND address = ANY(%(addresses)s::text[])), "
        f"ok AS (SELECT now, now @> %(assumed)s::text[] AND now <@ %(assumed)s::text[] AS same FROM s), "
        f"e AS (INSERT INTO {emails.table} ({emails.insert_columns()}) "
        f"SELECT {emails.select_values('x')} "
        f"FROM jsonb_to_recordset(%(emails)s::jsonb) AS x({emails.definition('ord integer')}) "
        f"WHERE (SELECT same FROM ok) ORDER BY x.ord "
        f"RETURNING id, public_id), "
        f"r AS ({children('recipients')}), "
        f"a AS ({children('attachments')}), "
        f"l AS ({children('links')}), "
        f"v AS ({children('events', 'RETURNING id')}), "
        f"p AS (INSERT INTO {PendingFanout._meta.db_table} (event_id) SELECT id FROM v), "
        # Usage: the month's slot row, created by the month's first send (see emails/services/quota.py).
        f"u AS (INSERT INTO {usage} (account_id, month, slot, emails) "
        f"SELECT %(account_id)s, %(month)s, %(slot)s, %(usage)s WHERE %(usage)s > 0 AND (SELECT same FROM ok) "
        f"ON CONFLICT (account_id, month, slot) DO UPDATE SET emails = {usage}.emails + EXCLUDED.emails) "
        f"SELECT id, public_id, NULL FROM e UNION ALL SELECT NULL, NULL, now FROM ok WHERE NOT same"
    )
    # Numbered placeholders for a raw cursor: psycopg converts %(name)s on every execute and
    # caches the conversion only for statements under 4 KB; this one is longer.
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\((\w+)\)s", number, named).encode(), tuple(names)


def _store_in_one_statement(prepared: list[PreparedEmail], *, live: bool, now: datetime) -> None:
    sets = _recordsets()
    children: dict[str, tuple[list[str], list[dict]]] = {  # table -> (email refs, rows)
        "recipients": ([], []), "attachments": ([], []), "events": ([], [])}
    links = []
    for item in prepared:
        ref = item.values["public_id"]
        for name, values in (("recipients", item.recipients), ("attachments", item.attachments),
                             ("events", _first_events(item, now))):
            refs, table_values = children[name]
            refs.extend([ref] * len(values))
            table_values.extend(values)
        links.extend({"email_ref": ref, "index": index, "url": url} for index, url in enumerate(item.tracked_links))
    rows: dict[str, list[dict]] = {"emails": sets["emails"].value_rows([p.values for p in prepared], now=now),
                                   "links": links}
    for name, (refs, values) in children.items():
        rows[name] = [{"email_ref": ref, **row}
                      for ref, row in zip(refs, sets[name].value_rows(values, now=now), strict=True)]
    # Rows are inserted in list order (ids follow it: recipients keep the order given).
    params = {name: dumps([{"ord": index, **row} for index, row in enumerate(table)]) for name, table in rows.items()}
    addresses, assumed = _suppression_assumption(prepared)
    params.update(account_id=prepared[0].values["account_id"], month=month_start(now.date()),
                  slot=random.randrange(SLOTS), usage=len(prepared) if live else 0,
                  subaccount_id=prepared[0].values["subaccount_id"], addresses=addresses, assumed=sorted(assumed))
    statement, names = _statement()
    with connection.cursor() as django_cursor, connection.wrap_database_errors:
        # A server-side prepared statement: PostgreSQL parses and plans this long statement once
        # per connection instead of on every send (Django's cursors bind parameters client-side).
        with psycopg.RawCursor(django_cursor.connection) as cursor:
            cursor.execute(statement, [params[name] for name in names], prepare=True)
            rows = cursor.fetchall()
    if rows and rows[0][0] is None:
        raise SuppressionsChanged(set(rows[0][2]))
    ids = {public_id: pk for pk, public_id, _ in rows}
    for item in prepared:
        item.values["id"] = ids[item.values["public_id"]]
