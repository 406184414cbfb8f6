"""``store.bulk.execute_many`` stores exactly what SQLAlchemy's own ``executemany`` stores:
the same rows, written both ways, read back equal — aware datetimes, booleans, ``None``,
text with control and non-BMP characters — on SQLite (straight to the driver) and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Integer, MetaData, String, Table, Text, bindparam, select

from parley.store.bulk import execute_many
from parley.store.db import Database
from parley.store.types import UTCDateTime


def _rows(tag: str) -> list[dict[str, Any]]:
    moment = datetime(2026, 12, 6, 7, 15, 30, 123456, tzinfo=UTC)
    return [
        {"id": f"{tag}{i}", "n": i, "flag": i % 2 == 0, "at": moment + timedelta(days=i),
         "maybe_at": None if i % 2 else moment, "text": ["plain", "tab\tand\nnewline", "emoji 🦜 ü", None][i]}
        for i in range(4)
    ]


async def test_execute_many_stores_what_executemany_stores(database_url: str) -> None:
    metadata = MetaData()
    table = Table(
        f"bulk_probe_{secrets.token_hex(4)}",
        metadata,
        Column("id", String(8), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("flag", Boolean, nullable=False),
        Column("at", UTCDateTime, nullable=False),
        Column("maybe_at", UTCDateTime, nullable=True),
        Column("text", Text, nullable=True),
    )
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
