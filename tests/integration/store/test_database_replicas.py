"""Read replicas (``PARLEY_DATABASE_REPLICA_URLS``) against a real streaming replica: history,
the changes feed, search and the conversation list come from the replica once it has
replayed what they need; with replay paused (lag injected) they come from the primary and
still show every acknowledged message; with the replica gone, the primary serves alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from parley.config import Settings
from parley.store.db import Database
from tests.support.gateway_helpers import new_user, running_server
from tests.support.pg_replication import ReplicatedPostgres


def reads(metrics_text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("parley_db_reads_total{"):
            source = line.split('source="')[1].split('"')[0]
            found[source] = float(line.rsplit(" ", 1)[1])
    return found


@pytest.fixture
def replicated() -> object:
    pair = ReplicatedPostgres().start()
    try:
        yield pair
    finally:
        pair.stop()


async def test_reads_follow_the_replica_only_when_it_has_caught_up(
    tmp_path: Path, free_port: int, replicated: ReplicatedPostgres
) -> None:
    pair = replicated
    async with running_server(
        tmp_path,
        pair.primary_url,
        free_port,
        database_replica_urls=json.dumps([pair.replica_url]),
    ) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        http = httpx.AsyncClient(base_url=server.base_url)
        try:
            group = await alice.create_group("replicated", [bob.user_id])
            for n in range(5):
                await alice.send_message(group["id"], f"before lag {n}")

            async def sources() -> dict[str, float]:
                return reads((await http.get("/metrics")).text)

            # Caught up: every kind of heavy read is served by the replica. The search
            # indexer's pass (gathered for 0.25 s after the sends) is a write of its own:
            # a search first catches the index up, so nothing writes during the reads below.
            assert (await alice.search("before"))["results"]
            await asyncio.to_thread(pair.wait_caught_up)
            start = await sources()
            history = await bob.history(group["id"])
            assert [m["content"] for m in history["messages"]][-1] == "before lag 4"
            # Five sent, after what creating the group wrote (its first message).
            base = len((await bob.changes(group["id"], 0))["messages"])
            assert base >= 5
            assert (await bob.search("lag"))["results"]
            assert [c["id"] for c in await bob.conversations()] == [group["id"]]
            after = await sources()
            assert after.get("replica", 0) - start.get("replica", 0) == 4, (start, after)

            # Lag injected: the replica stops replaying; what is sent now is only on the
            # primary, and every read must still show it.
            await asyncio.to_thread(pair.pause_replay)
            sent = [await alice.send_message(group["id"], f"during lag {n}") for n in range(3)]
            count = f"SELECT count(*) FROM messages WHERE conversation_id = '{group['id']}'"
            assert await asyncio.to_thread(pair.sql, pair.replica_port, count) == str(base)
            assert await asyncio.to_thread(pair.sql, pair.primary_port, count) == str(base + 3)
            history = await bob.history(group["id"])
            assert [m["id"] for m in history["messages"][-3:]] == [m["id"] for m in sent]
            changes = await bob.changes(group["id"], base)
            assert [m["id"] for m in changes["messages"]] == [m["id"] for m in sent]
            assert changes["last_seq"] == base + 3
            found = await bob.search("during")
            assert {r["message"]["id"] for r in found["results"]} == {m["id"] for m in sent}
            lagging = await sources()
            assert lagging.get("primary_lagging", 0) - after.get("primary_lagging", 0) >= 3
            assert lagging.get("replica", 0) == after.get("replica", 0)

            # Replay resumes: the replica catches up and serves again, with the same answers.
            await asyncio.to_thread(pair.resume_replay)
            await asyncio.to_thread(pair.wait_caught_up)
            again = await bob.changes(group["id"], base)
            assert [m["id"] for m in again["messages"]] == [m["id"] for m in sent]
            assert (await sources()).get("replica", 0) == lagging.get("replica", 0) + 1

            # The replica goes away: reads fall back to the primary, no error.
            await asyncio.to_thread(pair.stop_replica)
            history = await bob.history(group["id"])
            assert len(history["messages"]) == base + 3
            assert (await bob.search("lag"))["results"]
            assert (await sources()).get("primary_unavailable", 0) >= 1
        finally:
            await http.aclose()
            await alice.aclose()
            await bob.aclose()


async def test_an_asynchronous_commit_is_not_read_from_a_replica_that_lacks_it() -> None:
    """A commit with ``synchronous_commit = off`` returns before its WAL is written out, so
    the primary's *write* position can stand before it, and a replica that has replayed up
    to that position does not have the row. The check compares with the *insert* position.
    The WAL writer is slowed to ten seconds so that nothing writes the commit out during
    the test (the primary streams only flushed WAL): the read must go to the primary.
    (Nearly deterministic: a background record flushed in those milliseconds would let the
    old check pass too.) First, on an idle primary just after a WAL segment switch — the
    insert position then stands past the next segment's page header, where no replica ever
    stops — the replica must still serve."""
    pair = ReplicatedPostgres(primary_settings="wal_writer_delay = 10s").start()
    asyncpg_url = "postgresql+asyncpg://"
    db = Database(
        pair.primary_url.replace("postgresql://", asyncpg_url),
        replica_urls=[pair.replica_url.replace("postgresql://", asyncpg_url)],
    )
    try:
        # Created with a synchronous commit: written out, then replayed.
        pair.sql(pair.primary_port, "SET synchronous_commit = on; CREATE TABLE notes (n int)")
        pair.sql(pair.primary_port, "SELECT pg_switch_wal()")
        inserted = pair.sql(pair.primary_port, "SELECT pg_current_wal_insert_lsn()")
        assert inserted.endswith("000028"), inserted  # a segment's first page header: 40 bytes
        # The replica has replayed the switch: it stands on the segment boundary.
        boundary = inserted[: -len("28")] + "00"
        await asyncio.to_thread(pair.wait_replayed, boundary)
        async with db.read_replica() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 0
        assert db.read_sources() == {"replica": 1}

        async with db.transaction() as conn:  # the primary's default: asynchronous here
            await conn.execute(text("INSERT INTO notes VALUES (1)"))
        replayed = "SELECT count(*) FROM notes"
        assert await asyncio.to_thread(pair.sql, pair.replica_port, replayed) == "0"
        async with db.read_replica() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 1
        assert db.read_sources() == {"replica": 1, "primary_lagging": 1}
    finally:
        await db.dispose()
        pair.stop()


def test_replicas_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", replica_urls=["postgresql+asyncpg://h/db"])
    settings = Settings(database_replica_urls=["postgres://u:secret@replica1/parley"])
    assert settings.effective_replica_urls == ["postgresql+asyncpg://u:secret@replica1/parley"]
    assert settings.masked()["database_replica_urls"] == ["postgres://u:********@replica1/parley"]
