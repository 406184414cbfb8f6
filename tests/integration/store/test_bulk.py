"""``store.bulk`` stores and reads exactly what SQLAlchemy does: ``execute_many`` the rows
SQLAlchemy's own ``executemany`` stores, ``fetch_all`` the rows ``Connection.execute``
returns — aware datetimes, booleans, ``None``, text with control and non-BMP characters — on
SQLite (straight to the driver) and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Connection, Integer, MetaData, String, Table, Text, bindparam, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from parley.store.bulk import _select_plan, execute_many, fetch_all
from parley.store.db import Database
from parley.store.one_of import one_of
from parley.store.types import UTCDateTime


def _rows(tag: str) -> list[dict[str, Any]]:
    moment = datetime(2026, 12, 6, 7, 15, 30, 123456, tzinfo=UTC)
    return [
        {"id": f"{tag}{i}", "n": i, "flag": i % 2 == 0, "at": moment + timedelta(days=i),
         "maybe_at": None if i % 2 else moment, "text": ["plain", "tab\tand\nnewline", "emoji 🦜 ü", None][i]}
        for i in range(4)
    ]


def _probe_table(metadata: MetaData, prefix: str) -> Table:
    """A table of its own for one test (unique name: tests may share a database)."""
    return Table(
        f"{prefix}_{secrets.token_hex(4)}",
        metadata,
        Column("id", String(8), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("flag", Boolean, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("maybe_at", UTCDateTime, nullable=True),
        Column("text", Text, nullable=True),
    )


async def test_execute_many_stores_what_executemany_stores(database_url: str) -> None:
    metadata = MetaData()
    table = _probe_table(metadata, "bulk_probe")
    # An UPDATE with bind parameters named apart from its columns, as the group commit's.
    bump = table.update().where(table.c.id == bindparam("target")).values(n=bindparam("to"), at=bindparam("when"))

    def write(conn: Connection) -> tuple[list[Any], list[Any]]:
        metadata.create_all(conn)
        execute_many(conn, table.insert(), _rows("a"))
        conn.execute(table.insert(), _rows("b"))
        later = datetime(2027, 1, 1, tzinfo=UTC)
        execute_many(conn, bump, [{"target": "a1", "to": 10, "when": later}])
        conn.execute(bump, [{"target": "b1", "to": 10, "when": later}])
        rows = conn.execute(select(table).order_by(table.c.id)).all()
        metadata.drop_all(conn)
        return [r[1:] for r in rows if r.id.startswith("a")], [r[1:] for r in rows if r.id.startswith("b")]

    db = Database(database_url, pool_size=1)
    try:
        bulk, plain = await db.write(write)
    finally:
        await db.dispose()
    assert len(bulk) == 4 and bulk == plain
    assert bulk[1][2] == datetime(2027, 1, 1, tzinfo=UTC)
    n, flag, at, maybe_at, text = zip(*bulk, strict=True)  # the columns after the id
    assert n == (0, 10, 2, 3) and flag == (True, False, True, False)
    assert at[0].tzinfo is not None and maybe_at[0] == at[0] and maybe_at[1] is None
    assert text == ("plain", "tab\tand\nnewline", "emoji 🦜 ü", None)


async def test_fetch_all_reads_what_execute_reads(database_url: str) -> None:
    """The same selects through ``fetch_all`` and ``Connection.execute``: equal rows, the
    same types (aware datetimes, booleans, ``None``), a list bound whole (``one_of``), a
    literal in the statement, and an expanding ``IN`` (left to SQLAlchemy)."""
    metadata = MetaData()
    table = _probe_table(metadata, "fetch_probe")
    listed = select(table).where(one_of(table.c.id, "ids"), table.c.n >= 1).order_by(table.c.id)
    named = select(table.c.id, table.c.flag).where(table.c.id == bindparam("wanted"))
    expanding = select(table.c.id).where(table.c.id.in_(["a1", "a3"])).order_by(table.c.id)
    keyword_named = select(table.c.id.label("from")).where(table.c.id == "a0")

    def read(conn: Connection) -> dict[str, Any]:
        metadata.create_all(conn)
        conn.execute(table.insert(), _rows("a"))
        ids = {"ids": ["a0", "a1", "a2", "a3", "nope", "\U0001f99c"]}  # (a NUL is refused before it gets here)
        found = {
            "listed": (fetch_all(conn, listed, ids), conn.execute(listed, ids).all()),
            "named": (fetch_all(conn, named, {"wanted": "a2"}), conn.execute(named, {"wanted": "a2"}).all()),
            "none": (fetch_all(conn, named, {"wanted": "zz"}), conn.execute(named, {"wanted": "zz"}).all()),
            "expanding": (fetch_all(conn, expanding, {}), conn.execute(expanding).all()),
            "keyword": (fetch_all(conn, keyword_named, {}), conn.execute(keyword_named).all()),
        }
        # On SQLite the plain selects went to the driver; the others fell back.
        planned = {name: _select_plan(statement, conn.dialect) is not None
                   for name, statement in (("listed", listed), ("named", named),
                                           ("expanding", expanding), ("keyword", keyword_named))}
        sqlite = conn.dialect.name == "sqlite"
        assert planned == {"listed": sqlite, "named": sqlite, "expanding": False, "keyword": False}
        # A driver's error comes out as SQLAlchemy's, as from Connection.execute.
        with pytest.raises(IntegrityError), conn.begin_nested():  # (PostgreSQL: the savepoint)
            execute_many(conn, table.insert(), _rows("a")[:1])
        with pytest.raises(SQLAlchemyError, match="A value is required for bind parameter 'wanted'"):
            fetch_all(conn, named, {})
        metadata.drop_all(conn)
        return found

    db = Database(database_url, pool_size=1)
    try:
        found = await db.write(read)
    finally:
        await db.dispose()
    for name, (lean, plain) in found.items():
        assert [tuple(r) for r in lean] == [tuple(r) for r in plain], name
    rows = found["listed"][0]
    assert [r.id for r in rows] == ["a1", "a2", "a3"]
    assert rows[0].flag is False and rows[1].flag is True
    assert rows[0].at.tzinfo is not None and rows[0].maybe_at is None
    assert rows[1].maybe_at == rows[0].at - timedelta(days=1)
    assert found["named"][0][0].flag is True and found["none"][0] == []
    assert [r.id for r in found["expanding"][0]] == ["a1", "a3"]
