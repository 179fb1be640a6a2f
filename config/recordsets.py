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

from django.db import connection, models


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

    def rows(self, objs) -> list[dict]:
        """Each instance as a JSON-ready dict of its database values (auto_now filled in)."""
        return [{f.column: _json_value(f.pre_save(obj, add=True)) for f in self.columns} for obj in objs]


def recordset(model: type[models.Model], *, leave_out: tuple[str, ...] = ()) -> Recordset:
    """``model``'s concrete columns except the primary key and ``leave_out`` (field names)."""
    columns = tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.name not in leave_out)
    return Recordset(table=connection.ops.quote_name(model._meta.db_table), columns=columns)


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


def _json_value(value):
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value
