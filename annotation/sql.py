"""Hand-written SQL for the rater's hot path, turned into ordinary model instances.

Every `next` and `submit` runs a handful of statements. Building them through the ORM
(a QuerySet, then a compiler that walks fields, joins and expressions) cost more CPU than
running them, and the closed-loop benchmark is CPU-bound in the Django process. So the few
statements a rater runs on every request are written out once here, portable between SQLite
and PostgreSQL, and their rows are converted exactly as the ORM would convert them (the same
backend and field converters: JSON text to Python, SQLite's datetime strings to aware
datetimes...). Everything else in the app uses the ORM.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.db.models.expressions import Col


def _db():
    # The connection itself rather than django.db.connection: that proxy looks the connection
    # up again on every attribute, dozens of times per request on this path.
    return connections[DEFAULT_DB_ALIAS]


@cache
def _fields(model: type[Model]) -> tuple:
    return tuple(model._meta.concrete_fields)


def columns(model: type[Model], alias: str) -> str:
    """`alias.col1, alias.col2, ...` for every concrete field, in the order `instance` reads them."""
    db = _db()
    return _columns(model, alias, db.vendor)


@cache
def _columns(model: type[Model], alias: str, vendor: str) -> str:
    db = _db()
    return ", ".join(f"{alias}.{db.ops.quote_name(f.column)}" for f in _fields(model))


@cache
def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in _fields(model)]


@cache
def _converters(model: type[Model], vendor: str) -> tuple:
    db = _db()
    # The converters depend on the backend, not on the connection object: caching per model
    # and vendor is what the ORM would compute on every query.
    result = []
    for field in _fields(model):
        col = Col(model._meta.db_table, field)
        funcs = db.ops.get_db_converters(col) + field.get_db_converters(db)
        result.append((col, tuple(funcs)))
    return tuple(result)


def instance(model: type[Model], row: tuple | list, start: int = 0) -> tuple[Model, int]:
    """The model instance whose columns (see `columns`) start at row[start], and the index after them."""
    db = _db()
    converters = _converters(model, db.vendor)
    values = list(row[start : start + len(converters)])
    for i, (col, funcs) in enumerate(converters):
        for func in funcs:
            values[i] = func(values[i], col, db)
    return model.from_db(db.alias, _attnames(model), values), start + len(converters)


def cursor():
    """A cursor for the statements in this module. On PostgreSQL it binds parameters on the
    server, so psycopg prepares a statement once it has run a few times on a connection
    (settings: DB_PREPARE_THRESHOLD) and PostgreSQL skips parsing and planning it from then
    on: that was about a quarter of the database's CPU per judgment. Django's own cursors bind
    on the client, which never prepares. A statement sent this way must be a single statement."""
    db = _db()
    if db.vendor != "postgresql":
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    # What connection.cursor() does, with the server-binding class instead of the default.
    db.ensure_connection()
    with db.wrap_database_errors:
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def own_transaction():
    """For one statement (or one multi-statement query) that is atomic by itself: nothing
    outside a transaction, where autocommit (or PostgreSQL's implicit transaction of a
    multi-statement query) already makes it one; a savepoint inside a caller's transaction
    (a test, an atomic block), so that its failure does not poison the caller's."""
    return transaction.atomic() if _db().in_atomic_block else nullcontext()


def prepared(model: type[Model], name: str, value):
    """A value as the ORM would send it for this field (datetimes adapted, JSON encoded...)."""
    db = _db()
    return model._meta.get_field(name).get_db_prep_save(value, db)


def insert(model: type[Model], values: dict) -> Model:
    """INSERT one row and return it as an instance with its primary key set: what
    `Model.objects.create(**values)` does (field defaults, auto_now_add, JSON encoding), without
    signals and without compiling the statement through the ORM on every call."""
    db = _db()
    if not db.features.can_return_columns_from_insert:  # SQLite before 3.35
        return model.objects.create(**values)
    obj, statement, params = insert_select(model, values)
    with cursor() as cur:
        cur.execute(f"{statement} RETURNING {db.ops.quote_name(model._meta.pk.column)}", params)
        return saved(obj, cur.fetchone()[0])


def insert_select(model: type[Model], values: dict, expressions: dict[str, tuple[str, list]] | None = None) -> tuple[Model, str, list]:
    """`INSERT INTO table (columns) SELECT ...`, to run as it is or inside a larger statement
    (the caller adds FROM and RETURNING): the unsaved instance, the SQL and its parameters. A
    field named in `expressions` takes that SQL (and its parameters) instead of its value,
    e.g. an id from a CTE."""
    db = _db()
    obj = model(**values)
    expressions = expressions or {}
    select, params = [], []
    for f in _insert_fields(model):
        if f.attname in expressions:
            expression, extra = expressions[f.attname]
            select.append(expression)
            params.extend(extra)
        else:
            select.append("%s")
            params.append(f.get_db_prep_save(f.pre_save(obj, True), db))
    return obj, f"{_insert_into(model, db.vendor)} SELECT {', '.join(select)}", params


def saved(obj: Model, pk) -> Model:
    """Mark an instance as stored under `pk`, as Model.save() leaves it."""
    db = _db()
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = db.alias
    return obj


@cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(f for f in _fields(model) if f is not model._meta.pk)


@cache
def _insert_into(model: type[Model], vendor: str) -> str:
    db = _db()
    quote = db.ops.quote_name
    return f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in _insert_fields(model))})"
