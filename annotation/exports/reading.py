"""Reading judgments fast: raw rows in chunks, memoised JSON, pseudonymous raters.

At a million rows the per-value work is what costs, so these helpers skip Django's per-value
converters and decode or encode each distinct short JSON text only once."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterator

from django.db.models.sql.constants import MULTI

from annotation.exports.formats import encode
from annotation.models import Judgment

# Rows fetched per round trip (a server-side cursor on PostgreSQL).
CHUNK = 5000


def raw_rows(qs, n_fields: int) -> Iterator[tuple]:
    """The rows of a values_list queryset as the driver returns them, fetched in chunks through
    a server-side cursor where the database has one. Skipping Django's per-value converters
    halves the build time at a million rows; JSON is decoded by _Memo and dates formatted in _write_item instead."""
    compiler = qs.query.get_compiler(using=qs.db)
    chunks = compiler.execute_sql(MULTI, chunked_fetch=compiler.connection.features.can_use_chunked_reads, chunk_size=CHUNK)
    for chunk in chunks:
        for row in chunk:
            yield row[:n_fields]


class _MemoDict(dict):
    """A dict that computes a missing entry with `make` and keeps it (up to LIMIT entries).
    A hit is one C-level dict lookup, which is what a million rows need."""

    LIMIT = 100_000

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        value = self.make(key)
        if len(self) < self.LIMIT:
            self[key] = value
        return value


def loads(raw: Any) -> Any:
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw


class Memo:
    """JSON decoding and encoding, memoised by the raw database text: a million binary judgments
    hold a handful of distinct values ({"winner": 0}, ...), display orders, raters and kinds, each
    decoded or encoded once. Decoded values are shared between rows: nothing may mutate them."""

    def __init__(self):
        self.decode = _MemoDict(loads)  # raw JSON text -> value
        self.text = _MemoDict(encode)  # str -> its JSON string
        self.json = _MemoDict(lambda raw: encode(loads(raw)))  # raw JSON text -> our JSON text
        # raw JSON text -> a JSON string holding the value's JSON text, keys sorted (the same on
        # every database: PostgreSQL's jsonb reorders keys)
        self.canonical = _MemoDict(lambda raw: encode(json.dumps(loads(raw), sort_keys=True)))


def raw_text(raw: Any) -> str:
    """JSON column values as text (Django reads jsonb as text; a driver that decodes is handled)."""
    return raw if raw.__class__ is str else json.dumps(raw)


class Pseudonyms:
    """Pseudonymous rater ids: a salted hash, with a salt that lives only for this build, so ids
    are stable inside one snapshot and cannot be linked across snapshots or back to users."""

    def __init__(self):
        self.salt = os.urandom(16)
        self.cache: dict[Any, str] = {}
        self.names: set[str] = set()

    def __call__(self, rater_id: int | None, source: str, ai_model: str) -> str:
        """The rater's pseudonym as a JSON string."""
        key = (rater_id, source, ai_model)
        found = self.cache.get(key)
        if found is None:
            if source == Judgment.Source.AI:
                name = f"ai:{ai_model or 'model'}"
            elif rater_id is None:
                name = source  # imported without a rater
            else:
                name = "r-" + hashlib.blake2b(f"{rater_id}".encode(), key=self.salt, digest_size=6).hexdigest()
            self.names.add(name)
            found = self.cache[key] = encode(name)
        return found
