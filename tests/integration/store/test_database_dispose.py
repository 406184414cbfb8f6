"""``Database.dispose`` waits for work still holding a connection, so that every PostgreSQL
connection the pool opened is closed: one checked in after the pool was disposed was never
closed, and asyncpg reported it unclosed when the collector freed it, in whichever later
test was running then."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, event, text

from parley.config import normalise_database_url
from parley.store.db import Database

pytestmark = pytest.mark.postgres

LOCK_KEY = 724_031  # an advisory lock only this test takes
# Long enough for dispose() to finish had it not waited for the write (it takes milliseconds).
DISPOSE_WINDOW_SECONDS = 0.5


async def test_dispose_waits_for_a_write_whose_caller_went_away(empty_postgres_url: str) -> None:
    db = Database(empty_postgres_url, pool_size=1)
    opened: list[Any] = []
    event.listen(db.engine.sync_engine, "connect", lambda dbapi_conn, _record: opened.append(dbapi_conn))
    holder = await asyncpg.connect(normalise_database_url(empty_postgres_url).replace("+asyncpg", ""))
    started = asyncio.Event()

    def work(conn: Connection) -> int:
        started.set()
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})  # waits for holder
        conn.execute(text("CREATE TABLE dispose_probe (n integer)"))
        conn.execute(text("INSERT INTO dispose_probe VALUES (1)"))
        return 1

    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        caller = asyncio.create_task(db.write(work))
        await asyncio.wait_for(started.wait(), 10)
        caller.cancel()  # the caller goes away mid-statement; the write carries on
        with pytest.raises(asyncio.CancelledError):
            await caller
        disposing = asyncio.create_task(db.dispose())
        await asyncio.wait({disposing}, timeout=DISPOSE_WINDOW_SECONDS)
        assert not disposing.done(), "dispose() returned while a write held a connection"
        await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        await asyncio.wait_for(disposing, 10)
        assert opened and all(conn._connection.is_closed() for conn in opened)
        assert await holder.fetchval("SELECT count(*) FROM dispose_probe") == 1  # committed
    finally:
        await holder.execute("DROP TABLE IF EXISTS dispose_probe")
        await holder.close()
        await db.dispose()


async def test_a_connection_taken_while_dispose_closes_the_pool_stays_the_engines(empty_postgres_url: str) -> None:
    """Closing the pooled connections awaits each one. A task that takes a connection
    meanwhile must get it from the engine's new pool, which the next dispose() closes — not
    from the old one, which nothing closes again once it is given back."""
    db = Database(empty_postgres_url, pool_size=2)
    opened: list[Any] = []
    event.listen(db.engine.sync_engine, "connect", lambda dbapi_conn, _record: opened.append(dbapi_conn))
    async with db.read() as first, db.read() as second:  # two connections in the pool
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
    meanwhile: list[asyncio.Task[None]] = []

    async def read_during_dispose() -> None:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))

    def on_close(*_: object) -> None:
        if not meanwhile:  # the first pooled connection is being closed
            meanwhile.append(asyncio.get_running_loop().create_task(read_during_dispose()))

    event.listen(db.engine.sync_engine, "close", on_close)
    try:
        await asyncio.wait_for(db.dispose(), 10)
        assert meanwhile, "no pooled connection was closed"
        await asyncio.wait_for(meanwhile[0], 10)
    finally:
        await db.dispose()  # the engine's pool now: what the read used is closed here
    assert len(opened) >= 2 and all(conn._connection.is_closed() for conn in opened)
