"""Rows of a Django model as one JSON document, for PostgreSQL's ``jsonb_to_recordset``.

A batch of rows for several tables can then travel in one statement with a fixed number of
parameters (one per table), however many rows there are: PostgreSQL turns each document back
into typed rows, and data-modifying CTEs insert them. The columns and their types come from
the model, so a new field needs no change here. Django's ``bulk_create`` has no way to insert
parent and child rows in one statement, which is what this is for.
"""

import base64
import datetime
import json
from dataclasses import dataclass
from functools import cache, cached_property

from django.db import connection, models
from django.utils import timezone

from config.ids import PublicIdField, new_public_id
from config.instances import instance


@dataclass(frozen=True)
class Recordset:
    """How the rows of one model are written into, and read back out of, a JSON document."""

    table: str
    columns: tuple[models.Field, ...]

    def definition(self, *extra: str) -> str:
        """The ``AS x(column type, ...)`` list of ``jsonb_to_recordset``."""
        defs = [*extra, *(f"{_name(f)} {_record_type(f)}" for f in self.columns)]
        return ", ".join(defs)

    def insert_columns(self) -> str:
        return ", ".join(_name(f) for f in self.columns)

    def select_values(self, alias: str) -> str:
        """The SELECT list turning record columns into table values (bytea arrives as base64)."""
        return ", ".join(_decoded(f, f"{alias}.{_name(f)}") for f in self.columns)

    def value_rows(self, values_list: list[dict], *, now: datetime.datetime | None = None) -> list[dict]:
        """Rows given as {attname: value} dicts, as JSON-ready {column: value} dicts: missing
        columns get the field's default, ``auto_now``/``auto_now_add`` ones ``now`` and public
        ids a new id, as saving an instance would give them."""
        plan = self._plan
        now = now or timezone.now()
        converted: dict = {}  # a batch repeats one timestamp thousands of times: convert it once
        rows = []
        for values in values_list:
            row = {}
            for column, attname, missing, convert in plan:
                value = values[attname] if attname in values else missing(now)
                if convert is _isoformat and value is not None:
                    text = converted.get(value)
                    if text is None:
                        text = converted[value] = value.isoformat()
                    value = text
                elif convert is not None and value is not None:
                    value = convert(value)
                row[column] = value
            rows.append(row)
        return rows

    @cached_property
    def _plan(self) -> tuple:
        # (column, attname, value when missing, converter or None), worked out once: a
        # 500-email batch turns ~30,000 values into JSON here.
        return tuple((field.column, field.attname, _missing(field), _converter(field)) for field in self.columns)


@cache
def recordset(model: type[models.Model], *, leave_out: tuple[str, ...] = ()) -> Recordset:
    """``model``'s concrete columns except the primary key and ``leave_out`` (field names)."""
    columns = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.name not in leave_out)
    return Recordset(table=connection.ops.quote_name(model._meta.db_table), columns=columns)


def insert_rows(model: type[models.Model], values_list: list[dict], *, now: datetime.datetime | None = None,
                returning: tuple[str, ...] = ()) -> list[tuple]:
    """``bulk_create`` of rows given by attname; returns each row's ``returning`` attnames.

    On PostgreSQL: one statement with one parameter, the rows as one JSON document (missing
    columns filled as ``value_rows`` does). Django's bulk_create compiles a placeholder and
    adapts a parameter per column per row, most of the CPU of writing a dispatch batch's
    attempts and events. Elsewhere (the embedded SQLite default) it is bulk_create itself.
    """
    if not values_list:
        return []
    if connection.vendor != "postgresql":
        created = model.objects.bulk_create([instance(model, **values) for values in values_list])
        return [tuple(getattr(obj, name) for name in returning) for obj in created] if returning else []
    rows = recordset(model)
    document = dumps([{"ord": index, **row} for index, row in enumerate(rows.value_rows(values_list, now=now))])
    returned = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in returning)
    sql = (f"INSERT INTO {rows.table} ({rows.insert_columns()}) SELECT {rows.select_values('x')} "
           f"FROM jsonb_to_recordset(%s::jsonb) AS x({rows.definition('ord integer')}) ORDER BY x.ord"
           + (f" RETURNING {returned}" if returning else ""))
    with connection.cursor() as cursor:
        cursor.execute(sql, [document])
        return cursor.fetchall() if returning else []


def dumps(rows: list[dict]) -> str:
    # ensure_ascii keeps every character as an escape PostgreSQL's JSON parser reads back exactly
    return json.dumps(rows, ensure_ascii=True, separators=(",", ":"))


def _name(field: models.Field) -> str:
    return connection.ops.quote_name(field.column)


def _record_type(field: models.Field) -> str:
    db_type = field.db_type(connection)
    return "text" if db_type == "bytea" else db_type


def _decoded(field: models.Field, expression: str) -> str:
    return f"decode({expression}, 'base64')" if field.db_type(connection) == "bytea" else expression


def _missing(field: models.Field):
    if isinstance(field, PublicIdField):
        return lambda now: new_public_id(field.prefix)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda now: now
    return lambda now: field.get_default()


def _converter(field: models.Field):
    internal = field.get_internal_type()
    if internal in ("DateTimeField", "DateField"):
        return _isoformat
    if internal == "BinaryField":
        return _base64
    return None


def _isoformat(value: datetime.date) -> str:
    return value.isoformat()


def _base64(value) -> str:
    return base64.b64encode(bytes(value)).decode()
