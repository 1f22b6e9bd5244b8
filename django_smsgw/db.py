"""Set-based writes for the send path: a chunk of 1,000 messages in one statement each way.

Why not ``bulk_create`` / ``bulk_update``: Django 5.2 assumes SQLite's old limit of 999
parameters per statement (SQLite ≥ 3.32 allows 32,766 and reports its limit at run time), so
1,000 messages took 23 INSERTs; its per-value preparation dominated a chunk's time, and
``bulk_update`` builds a ``CASE WHEN`` per field that grows quadratically. Here every value
that needs no conversion goes to the driver as it is, and updates are one ``executemany`` by
primary key. Databases without ``INSERT … RETURNING`` fall back to the ORM.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field, Model
from django.utils import timezone

# Field types whose Python value the database drivers take unchanged.
PLAIN_TYPES = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


@functools.cache
def blank_row(model: type[Model]) -> tuple[tuple[Any, ...], dict[str, int]]:
    fields = model._meta.concrete_fields
    if any(field.has_default() and callable(field.default) for field in fields):
        raise ValueError(f"{model.__name__} has a computed default; use {model.__name__}()")
    return tuple(field.get_default() for field in fields), {
        field.attname: index for index, field in enumerate(fields)
    }


def instance(model: type[Model], **values: Any) -> Model:
    """``model(**values)`` (attnames, e.g. ``batch_id``) at half the cost: Django's __init__
    takes a full row of positional values without its keyword handling, and the send path
    makes a thousand messages per chunk. Defaults are taken once per model, so only for
    models whose defaults are constants."""
    defaults, index = blank_row(model)
    row = list(defaults)
    for name, value in values.items():
        row[index[name]] = value
    return model(*row)


def converter(field: Field, connection) -> Callable[[Any], Any]:
    if field.get_internal_type() in PLAIN_TYPES:
        return lambda value: value
    last: list[Any] = [None, None]  # a chunk's rows mostly share one timestamp: convert it once

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if value is not last[0]:
            last[:] = [value, field.get_db_prep_save(value, connection)]
        return last[1]

    return convert


def stamp(objs: Sequence[Model], fields: Sequence[Field], *, add: bool) -> None:
    """What ``auto_now`` / ``auto_now_add`` would set, one timestamp for the whole chunk."""
    auto = [
        field
        for field in fields
        if getattr(field, "auto_now", False) or (add and getattr(field, "auto_now_add", False))
    ]
    if auto:
        now = timezone.now()
        for obj in objs:
            for field in auto:
                setattr(obj, field.attname, now)


def max_params(connection) -> int:
    if connection.vendor == "sqlite":
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65535  # PostgreSQL's protocol limit


def insert_returning_ids(objs: Sequence[Model]) -> None:
    """INSERT ``objs`` (all of one model, not yet saved) and set their primary keys."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in ("sqlite", "postgresql"):
        model._default_manager.bulk_create(objs)
        return
    connection.ensure_connection()
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    stamp(objs, fields, add=True)
    convert = [(field.attname, converter(field, connection)) for field in fields]
    rows = [[conv(getattr(obj, attname)) for attname, conv in convert] for obj in objs]
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "
    )
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = max(1, max_params(connection) // len(fields))
    # Several statements when the rows exceed the parameter limit: all of them, or none.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            cursor.execute(
                head + ", ".join([row_sql] * len(part)) + f" RETURNING {quote(meta.pk.column)}",
                [value for row in part for value in row],
            )
            ids = [row[0] for row in cursor.fetchall()]
            for obj, pk in zip(objs[start : start + per_statement], ids, strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = connection.alias


def update_fields(objs: Sequence[Model], field_names: Sequence[str]) -> None:
    """UPDATE ``field_names`` of each saved obj, by primary key: one statement per chunk on
    PostgreSQL (``UPDATE … FROM (VALUES …)``; an ``executemany`` of 1,000 rows took 125 ms
    there), one ``executemany`` elsewhere (SQLite runs it as fast, in C)."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    stamp(objs, fields, add=False)
    convert = [(field.attname, converter(field, connection)) for field in fields]
    rows = [[obj.pk] + [conv(getattr(obj, attname)) for attname, conv in convert] for obj in objs]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    # One transaction: in autocommit each row of an executemany would commit (and sync) alone.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(
                f"UPDATE {table} SET "
                + ", ".join(f"{quote(field.column)} = %s" for field in fields)
                + f" WHERE {quote(meta.pk.column)} = %s",
                [row[1:] + row[:1] for row in rows],
            )
            return
        columns = [meta.pk, *fields]
        # One array per column, unnested into rows: a handful of parameters, not one per value
        # (psycopg parses every placeholder of a statement in Python).
        arrays = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
        names = ", ".join(quote(column.column) for column in columns)
        assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
        pk = quote(meta.pk.column)
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v ({names}) "
            f"WHERE {table}.{pk} = v.{pk}",
            [list(column) for column in zip(*rows, strict=True)],
        )


def update_returning_ids(
    model: type[Model], pks: Sequence[int], values: dict[str, Any], *, where: dict[str, Any]
) -> set[int]:
    """UPDATE the rows ``pks`` that still match ``where``; the primary keys actually updated.

    A conditional update instead of read-modify-write: when two requests race for one row,
    the database lets exactly one of them match, so exactly one reports the change.
    """
    if not pks:
        return set()
    connection = connections[router.db_for_write(model)]
    queryset = model._default_manager.filter(pk__in=pks, **where)
    if connection.vendor not in ("sqlite", "postgresql"):  # no UPDATE … RETURNING
        with transaction.atomic(using=connection.alias, savepoint=False):
            matched = set(queryset.select_for_update().values_list("pk", flat=True))
            model._default_manager.filter(pk__in=matched).update(**values)
        return matched
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in values]
    conditions = [meta.get_field(name) for name in where]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "
        + ", ".join(f"{quote(field.column)} = %s" for field in fields)
        + f" WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * len(pks))})"
        + "".join(f" AND {quote(field.column)} = %s" for field in conditions)
        + f" RETURNING {quote(meta.pk.column)}"
    )
    params = [
        *(converter(field, connection)(values[field.name]) for field in fields),
        *pks,
        *(converter(field, connection)(where[field.name]) for field in conditions),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
