"""The group commit's statements straight to SQLite's driver, compiled once:
``execute_many`` (one statement, many rows) and ``fetch_all`` (a select's rows).

SQLAlchemy's execution of a cached Core statement costs tens of microseconds before the
driver sees it (measured on the group commit's conversation lock: 90 µs through
``Connection.execute``, 12 µs on the cursor); its ``executemany`` also prepares each row on
its own — a parameter dict per row, every value through its type's processor, ``None``
included. On SQLite's one writer thread that was most of a small batch's cost: a batch of
one direct message took 0.8 ms, of which SQLite itself did well under half. Here each
statement is compiled once per dialect (and column list), and each value goes through the
processor its type would apply — on the way in, and for ``fetch_all`` on the way out — so
what is stored and read is exactly what SQLAlchemy would store and read. On PostgreSQL the
driver does its own batching and preparing: plain ``conn.execute``.

Only for statements whose parameters are all plain values (no SQL expressions per row,
no expanding ``IN``: see ``store.one_of``), run inside the caller's transaction like any
other statement; anything else falls back to ``conn.execute``. SQLAlchemy's cursor
listeners (tracing, the query-plan checks) are told of each statement as usual.
"""

from __future__ import annotations

import functools
import keyword
import operator
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Select
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.type_api import TypeEngine

Processor = Callable[[Any], Any] | None
# Selects planned at once: the statements of the group commit are module constants (or
# built once per size), so this bounds nothing real and stops a misuse from growing.
SELECT_PLANS = 64


def execute_many(conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``statement`` once per row of ``rows`` (each with the same keys)."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name != "sqlite":
        conn.execute(statement, list(rows))
        return
    sql, names, processors = _plan(statement, dialect, tuple(rows[0]))
    pick = operator.itemgetter(*names)
    # Only the columns whose type converts (datetimes, booleans) are touched one by one.
    converted = [(index, process) for index, process in enumerate(processors) if process is not None]
    values: list[Sequence[Any]] = []
    for row in rows:
        picked = pick(row)
        if len(names) == 1:
            picked = (picked,)
        if converted:
            picked = list(picked)
            for index, process in converted:
                if picked[index] is not None:
                    picked[index] = process(picked[index])
        values.append(picked)
    with _cursor(conn, sql, values, many=True) as cursor:
        cursor.executemany(sql, values)


def fetch_all(conn: Connection, statement: Select[Any], params: Mapping[str, Any]) -> Sequence[Any]:
    """The rows of ``statement`` — a select built once (a module constant) — as named
    tuples: ``row.column`` as on SQLAlchemy's ``Row``."""
    plan = _select_plan(statement, conn.dialect) if conn.dialect.name == "sqlite" else None
    if plan is None:
        return conn.execute(statement, params).all()
    values = []
    for name, default, process in plan.binds:
        value = params.get(name, default)
        if value is _REQUIRED:
            raise InvalidRequestError(f"A value is required for bind parameter {name!r}")
        values.append(process(value) if process is not None else value)
    with _cursor(conn, plan.sql, values, many=False) as cursor:
        cursor.execute(plan.sql, values)
        raw = cursor.fetchall()
    if not plan.results:
        return [plan.row._make(r) for r in raw]
    rows = []
    for r in raw:
        converted = list(r)
        for index, process in plan.results:
            converted[index] = process(converted[index])
        rows.append(plan.row._make(converted))
    return rows


@contextmanager
def _cursor(conn: Connection, sql: str, values: Any, *, many: bool) -> Iterator[DBAPICursor]:
    """A cursor of the transaction's driver connection, announced to SQLAlchemy's cursor
    listeners (tracing, the query-plan checks) as a statement SQLAlchemy ran would be."""
    driver = conn.connection.dbapi_connection
    assert driver is not None, "a connection inside a transaction has its driver connection"
    cursor = driver.cursor()
    try:
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, values, None, many)
        yield cursor
    except conn.dialect.loaded_dbapi.Error as error:
        # Wrapped as SQLAlchemy wraps a driver's error (IntegrityError, OperationalError, …):
        # callers catch those, and store.failures reads them.
        raise DBAPIError.instance(
            sql, values, error, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from error
    finally:
        cursor.close()


def _bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    # The dialect's own form of the type: a plain DateTime converts on SQLite only there.
    return type_.dialect_impl(dialect).bind_processor(dialect)


@functools.cache
def _plan(
    statement: UpdateBase, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
    """The SQL text, its parameters in order, and each one's bind processor."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    if dialect.paramstyle != "qmark" or set(names) - set(keys):
        raise ValueError(f"execute_many needs qmark parameters from the rows' keys: {names}")
    processors = tuple(_bind_processor(compiled.binds[name].type, dialect) for name in names)
    return str(compiled), names, processors


_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class _SelectPlan:
    sql: str
    binds: tuple[tuple[str, Any, Processor], ...]  # name, value if not given, processor
    row: Any  # the namedtuple class of a row
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # columns that convert


@functools.lru_cache(maxsize=SELECT_PLANS)
def _select_plan(statement: Select[Any], dialect: Dialect) -> _SelectPlan | None:
    """The select compiled for the driver, or None where only SQLAlchemy can run it: an
    expanding ``IN`` (rendered per execution), or columns that are not plain names."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if dialect.paramstyle != "qmark" or compiled.literal_execute_params or compiled.post_compile_params:
        return None
    keys = [column.key or "" for column in statement.selected_columns]
    # Row attributes: names a named tuple can carry (not a keyword, not "_private").
    if len(set(keys)) != len(keys) or not all(
        key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_") for key in keys
    ):
        return None
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.expanding or bind.callable is not None:  # rendered / evaluated per execution
            return None
        default = _REQUIRED if bind.required else bind.effective_value
        binds.append((name, default, _bind_processor(bind.type, dialect)))
    results = []
    for index, column in enumerate(statement.selected_columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            results.append((index, process))
    return _SelectPlan(
        str(compiled), tuple(binds), namedtuple("Row", keys), tuple(results)  # noqa: PYI024
    )
