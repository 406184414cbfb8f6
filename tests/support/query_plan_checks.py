"""How a statement is searched, on SQLite and PostgreSQL: the statements code runs are
captured as the driver gets them (SQL text and bound values), then explained.

Two questions per statement:

- ``full_scans``: the plan lines that read a whole big table. SQLite: ``SCAN <table>``
  without an index, foreign key actions included (``EXPLAIN QUERY PLAN`` shows those).
  PostgreSQL: ``Seq Scan on <table>``.
- ``rows_read``: how much of the growing tables (messages, reactions, attachments) the
  statement reads when it runs. PostgreSQL: rows the scans of those tables produced or
  filtered away (``EXPLAIN ANALYZE``). SQLite counts nothing per table: the number of
  virtual machine instructions stands in, divided by what one row visited costs. An index
  range over a whole conversation is no full scan, but it is no lookup either.

PostgreSQL plans with sequential scans off: a test table of a few pages is otherwise read
whole on cost, where a grown one would be searched. What it still scans has no index to
use; what it reads through an index is what the statement asks for.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from parley.store.db import Database

# Tables that grow with use: reading one whole is a bug on a hot path.
BIG_TABLES = frozenset(
    {"messages", "members", "reactions", "attachments", "sessions", "refresh_tokens",
     "message_search", "contacts"}
)  # fmt: skip
# Tables that grow with history: a statement reads of them about what it returns.
GROWING_TABLES = frozenset({"messages", "reactions", "attachments"})
# SQLite: virtual machine instructions per row visited, about (an index step, its row and
# the comparisons on it: 15-40, measured). A lookup stays far under its budget; a range
# over a whole conversation or table goes far over.
SQLITE_STEPS_PER_ROW = 40
_IGNORED = re.compile(r"^\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET|SELECT 1\b)", re.I)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement as the driver ran it: SQL in the driver's style, positional values."""

    sql: str
    params: tuple[Any, ...]

    @property
    def is_read(self) -> bool:
        return self.sql.lstrip().upper().startswith(("SELECT", "WITH"))

    def short(self) -> str:
        return " ".join(self.sql.split())[:300]


@contextmanager
def capture(db: Database) -> Iterator[list[Statement]]:
    """Every statement run on ``db`` inside the block (the first row of an executemany)."""
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if _IGNORED.match(sql):
            return
        first = params[0] if many and params else params
        seen.append(Statement(sql, tuple(first or ())))

    engines = db.sync_engines()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@contextmanager
def capture_on(conn: Any) -> Iterator[list[Statement]]:
    """Every statement one connection (a SQLAlchemy ``Connection``) runs inside the block:
    not the background work of other connections, such as the search indexer's."""
    seen: list[Statement] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if not _IGNORED.match(sql):
            seen.append(Statement(sql, tuple((params[0] if many and params else params) or ())))

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


def unique(statements: Sequence[Statement]) -> list[Statement]:
    """One of each SQL text (the first values it ran with)."""
    first: dict[str, Statement] = {}
    for statement in statements:
        first.setdefault(statement.sql, statement)
    return list(first.values())


def _aliases(sql: str, tables: frozenset[str]) -> set[str]:
    """The names a statement gives the big tables: SQLite plans print the alias."""
    names = set(tables)
    for table, alias in re.findall(r"\b(\w+) AS (\w+)\b", sql):
        if table in tables:
            names.add(alias)
    return names


class SqliteInspector:
    """Plans and work on a SQLite file, through a plain connection of its own (foreign keys
    on, as Parley's connections have them)."""

    def __init__(self, path: str) -> None:
        # Waits for a write of the app (a queued attachment sweep) rather than failing.
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self._conn.close()

    def gather_statistics(self) -> None:
        self._conn.execute("ANALYZE")

    async def plan(self, statement: Statement) -> str:
        rows = self._conn.execute("EXPLAIN QUERY PLAN " + statement.sql, statement.params)
        return "\n".join(str(row[3]) for row in rows)

    async def full_scans(self, statement: Statement) -> list[str]:
        names = _aliases(statement.sql, BIG_TABLES)
        lines = (await self.plan(statement)).splitlines()
        return [line for line in lines if _sqlite_scanned(line) in names]

    async def rows_read(self, statement: Statement) -> int:
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        self._conn.set_progress_handler(count, 1)
        try:
            self._conn.execute(statement.sql, statement.params).fetchall()
        finally:
            self._conn.set_progress_handler(None, 0)
        return steps // SQLITE_STEPS_PER_ROW

    @asynccontextmanager
    async def altered(self, ddl: Sequence[str]) -> AsyncIterator[None]:
        self._conn.execute("BEGIN")
        try:
            for command in ddl:
                self._conn.execute(command)
            yield
        finally:
            self._conn.execute("ROLLBACK")


def _sqlite_scanned(line: str) -> str | None:
    """The table a ``SCAN`` line reads whole (not through an index, not a subquery)."""
    match = re.match(r"^SCAN (\w+)(.*)$", line.strip())
    if match is None or "INDEX" in match.group(2) or "VIRTUAL TABLE" in match.group(2):
        return None
    return match.group(1)


class PostgresInspector:
    """Plans and work on PostgreSQL, through an asyncpg connection of its own; every
    statement is explained in a transaction that is rolled back (ANALYZE runs it)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, url: str) -> PostgresInspector:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(await asyncpg.connect(dsn))

    async def close(self) -> None:
        await self._conn.close()

    async def plan(self, statement: Statement) -> str:
        return "\n".join(await self._explain("EXPLAIN", statement, seqscan=False))

    async def full_scans(self, statement: Statement) -> list[str]:
        lines = await self._explain("EXPLAIN", statement, seqscan=False)
        return [line for line in lines if _postgres_scanned(line) in BIG_TABLES]

    async def rows_read(self, statement: Statement) -> int:
        lines = await self._explain("EXPLAIN (ANALYZE, FORMAT JSON)", statement, seqscan=False)
        return _rows_from(json.loads("".join(lines))[0]["Plan"])

    async def _explain(self, explain: str, statement: Statement, *, seqscan: bool) -> list[str]:
        transaction = self._conn.transaction()
        await transaction.start()
        try:
            if not seqscan:
                await self._conn.execute("SET LOCAL enable_seqscan = off")
            rows = await self._conn.fetch(f"{explain} {statement.sql}", *statement.params)
            return [str(row[0]) for row in rows]
        finally:
            await transaction.rollback()

    @asynccontextmanager
    async def altered(self, ddl: Sequence[str]) -> AsyncIterator[None]:
        transaction = self._conn.transaction()
        await transaction.start()
        try:
            for command in ddl:
                await self._conn.execute(command)
            yield
        finally:
            await transaction.rollback()


def _postgres_scanned(line: str) -> str | None:
    match = re.search(r"Seq Scan on (\w+)", line)
    return match.group(1) if match else None


def _rows_from(node: dict[str, Any]) -> int:
    """Rows the scans of growing tables under ``node`` produced or filtered away, every
    loop counted."""
    total = 0
    if node.get("Relation Name") in GROWING_TABLES:
        seen = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        seen += node.get("Rows Removed by Index Recheck", 0)
        total += int(seen * node["Actual Loops"])
    for child in node.get("Plans", []):
        total += _rows_from(child)
    return total


Inspector = SqliteInspector | PostgresInspector


@asynccontextmanager
async def inspector_for(db: Database) -> AsyncIterator[Inspector]:
    if db.is_sqlite:
        path = make_url(db.url).database
        assert path, "query plans need a SQLite file"
        sqlite_inspector = SqliteInspector(path)
        try:
            yield sqlite_inspector
        finally:
            sqlite_inspector.close()
    else:
        postgres_inspector = await PostgresInspector.connect(db.url)
        try:
            yield postgres_inspector
        finally:
            await postgres_inspector.close()

