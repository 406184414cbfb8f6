"""Many rows through one statement built once: ``execute_many``.

SQLAlchemy's ``executemany`` prepares each row on its own — a parameter dict per row, every
value through its type's processor, ``None`` included — before the driver sees it. For the
group commit's ``INSERT`` of a batch of messages that was about one eighth of the SQLite
writer thread's time (cProfile of ``write_batch``, 100 direct messages per batch). On
SQLite this hands the rows straight to the driver's cursor instead: the statement is
compiled once per dialect and column list, and each value goes through the processor its
column's type would apply (so what is stored is exactly what SQLAlchemy would store) unless
it is ``None``. On PostgreSQL the driver does its own batching: plain ``conn.execute``.

Only for statements whose parameters are all plain values (no SQL expressions per row),
run inside the caller's transaction like any other statement.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


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
    driver = conn.connection.dbapi_connection
    assert driver is not None, "a connection inside a transaction has its driver connection"
    cursor = driver.cursor()
    try:
        # Announced to SQLAlchemy's cursor listeners (tracing, the query-plan checks) as a
        # statement SQLAlchemy ran itself would be.
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, values, None, True)
        cursor.executemany(sql, values)
    finally:
        cursor.close()


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
    processors = tuple(compiled.binds[name].type.bind_processor(dialect) for name in names)
    return str(compiled), names, processors
