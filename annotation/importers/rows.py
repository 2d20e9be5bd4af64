"""Fast multi-row INSERTs for the import: the ORM's bulk_create spends ~25 µs per object
building model instances and preparing each field, which was most of a million-item import.

A RowInserter takes rows as tuples in the order of the columns it was given; every other
column gets the model's default (auto_now_add: now), so an additive model change keeps
working. JSON values go through `json()`.

SQLite: multi-row INSERT ... RETURNING id (ids come back in VALUES order; bulk_create relies on
the same). PostgreSQL: COPY, several times faster than INSERT there; the new ids are drawn from
the table's sequence first, so candidates can point at their items.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from itertools import chain

from django.db import connection, models
from django.utils import timezone


def _max_params() -> int:
    if connection.vendor == "sqlite":
        return 30_000 if sqlite3.sqlite_version_info >= (3, 32) else 999
    return 60_000


class RowInserter:
    def __init__(self, model: type[models.Model], columns: Sequence[str]):
        by_name = {f.attname: f for f in model._meta.concrete_fields if not f.primary_key}
        unknown = set(columns) - set(by_name)
        if unknown:
            raise ValueError(f"{model.__name__} has no column(s) {sorted(unknown)}")
        rest = [f for name, f in by_name.items() if name not in columns]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        self.copy = connection.vendor == "postgresql"
        # COPY takes JSON as text; INSERT takes the backend's own adapter.
        self._adapt_json = (lambda value, encoder: json.dumps(value)) if self.copy else connection.ops.adapt_json_value
        self._empty_object = self._adapt_json({}, None)
        tail = []
        for f in rest:
            if getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
                tail.append(now)
            else:
                # get_default() is what the ORM would store: the default, "" for a text field
                # without one, or None.
                default = f.get_default()
                tail.append(self.json(default) if isinstance(f, models.JSONField) else default)
        self.tail = tuple(tail)
        quote = connection.ops.quote_name
        names = [by_name[c].column for c in columns] + [f.column for f in rest]
        self.width = len(names)
        self.head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(n) for n in names)}) VALUES "
        self.one = "(" + ", ".join(["%s"] * self.width) + ")"
        self.pk = quote(model._meta.pk.column)
        self.table_name, self.pk_name = model._meta.db_table, model._meta.pk.column
        self.copy_sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        self.copy_sql_with_id = f"COPY {quote(model._meta.db_table)} ({self.pk}, {', '.join(quote(n) for n in names)}) FROM STDIN"
        self.per_statement = max(1, _max_params() // self.width)
        self._sql_cache: dict[tuple[int, bool], str] = {}

    def json(self, value):
        """A value for a JSON column; None stays SQL NULL (as the ORM stores it in a nullable field)."""
        if value is None:
            return None
        if not value and isinstance(value, dict):
            return self._empty_object  # the common empty metadata, adapted once
        return self._adapt_json(value, None)

    def _sql(self, rows: int, returning: bool) -> str:
        key = (rows, returning)
        if key not in self._sql_cache:
            sql = self.head + ", ".join([self.one] * rows)
            self._sql_cache[key] = sql + f" RETURNING {self.pk}" if returning else sql
        return self._sql_cache[key]

    def insert(self, rows: Sequence[tuple], *, returning: bool = False) -> list[int]:
        if self.copy:
            return self._copy(rows, returning)
        ids: list[int] = []
        tail = self.tail
        with connection.cursor() as cursor:
            for start in range(0, len(rows), self.per_statement):
                part = rows[start : start + self.per_statement]
                params = list(chain.from_iterable(row + tail for row in part))
                cursor.execute(self._sql(len(part), returning), params)
                if returning:
                    ids.extend(row[0] for row in cursor.fetchall())
        return ids

    def _copy(self, rows: Sequence[tuple], returning: bool) -> list[int]:
        tail = self.tail
        with connection.cursor() as cursor:
            raw = cursor.cursor
            if not returning:
                with raw.copy(self.copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row + tail)
                return []
            raw.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [self.table_name, self.pk_name, len(rows)],
            )
            ids = [r[0] for r in raw.fetchall()]
            with raw.copy(self.copy_sql_with_id) as copy:
                for pk, row in zip(ids, rows):
                    copy.write_row((pk, *row, *tail))
            return ids
