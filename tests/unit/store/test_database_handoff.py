"""``Database.write`` and ``Database.read_sync``: synchronous work in one transaction, handed
to a database thread once on SQLite, through ``run_sync`` on PostgreSQL — committed or
rolled back whole, serialised with ``transaction()``, never cut off by a caller that leaves."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, text

from parley.store.db import Database

WAIT = 10.0


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=4)
    async with database.transaction() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS handoff_probe"))
        await conn.execute(text("CREATE TABLE handoff_probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL)"))
    yield database
    async with database.transaction() as conn:  # the PostgreSQL database outlives the test
        await conn.execute(text("DROP TABLE handoff_probe"))
    await database.dispose()


def insert(conn: Connection, row_id: int, note: str) -> int:
    conn.execute(text("INSERT INTO handoff_probe (id, note) VALUES (:i, :n)"), {"i": row_id, "n": note})
    return row_id


def notes(conn: Connection) -> dict[int, str]:
    return {r.id: r.note for r in conn.execute(text("SELECT id, note FROM handoff_probe"))}


def insert_then_fail(conn: Connection) -> None:
    insert(conn, 99, "never")
    raise LookupError("changed my mind")


async def test_work_commits_whole_or_not_at_all(db: Database) -> None:
    assert await db.write(insert, 1, "kept") == 1
    with pytest.raises(LookupError):
        await db.write(insert_then_fail)
    assert await db.read_sync(notes) == {1: "kept"}


async def test_writes_interleave_with_async_transactions_without_losing_any(db: Database) -> None:
    async def through_transaction(row_id: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(
                text("INSERT INTO handoff_probe (id, note) VALUES (:i, 'async')"), {"i": row_id}
            )

    work = [db.write(insert, i, "sync") if i % 2 else through_transaction(i) for i in range(40)]
    await asyncio.wait_for(asyncio.gather(*work), WAIT)
    stored = await db.read_sync(notes)
    assert sorted(stored) == list(range(40))
    assert {stored[i] for i in range(1, 40, 2)} == {"sync"}


async def test_a_caller_that_leaves_does_not_cut_the_write_off(db: Database) -> None:
    started = threading.Event()

    def slow_insert(conn: Connection) -> None:
        started.set()
        time.sleep(0.2)  # the caller is cancelled meanwhile
        insert(conn, 7, "finished anyway")

    caller = asyncio.create_task(db.write(slow_insert))
    assert await asyncio.wait_for(asyncio.to_thread(started.wait, WAIT), WAIT)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # The next write waits for the first to commit (the write lock is held until it has).
    await asyncio.wait_for(db.write(insert, 8, "after"), WAIT)
    assert await db.read_sync(notes) == {7: "finished anyway", 8: "after"}
