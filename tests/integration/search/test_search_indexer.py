"""The batched search indexer (migration 0017) on both databases: a sent message becomes
searchable within the promised bound (read from the exported metrics), a message acknowledged
and never indexed (the process died first) is indexed by the next indexer to start, a message
deleted or removed before its batch never becomes searchable, indexers running at the same
time index each message once, and an idle indexer's polls read without writing."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import text

from parley.container import Container
from parley.services import search_indexer as search_indexer_module
from parley.services.search import Search
from parley.services.search_indexer import SEARCHABLE_WITHIN_SECONDS, SearchIndexer
from parley.store.db import Database
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_group, send
from tests.support.search_index_checks import check_sqlite_index

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]

WAIT_SECONDS = 10.0  # how long a test waits for progress before failing; not the bound


async def in_index(db: Database, user_id: str, q: str) -> list[str]:
    """What the index holds now: a search that does not catch up first."""
    result = await Search(db, None).search(user_id, q, limit=50)
    return sorted(hit["message"]["content"] for hit in result["results"])


async def until_indexed(indexer: SearchIndexer, db: Database, user_id: str, q: str, want: list[str]) -> None:
    """Wait on the indexer's batches (not a timed sleep) until ``q`` finds ``want``."""

    async def progress() -> None:
        while await in_index(db, user_id, q) != want:
            async with indexer.indexed:
                # A batch may have landed between the check and here: re-check at least
                # every poll interval, woken early by each batch.
                try:
                    await asyncio.wait_for(indexer.indexed.wait(), 0.5)
                except TimeoutError:
                    pass

    await asyncio.wait_for(progress(), WAIT_SECONDS)


def sample(container: Container, name: str, labels: dict[str, str] | None = None) -> float:
    value = container.metrics.registry.get_sample_value(name, labels or {})
    return float(value or 0.0)


async def test_a_sent_message_is_searchable_within_the_bound(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    texts = sorted(f"bounded delivery number {i}" for i in range(5))
    for content in texts:
        await send(client, alice, group["id"], content)
    await until_indexed(container.search_indexer, container.db, bob.id, "bounded", texts)

    # Every message's delay from commit to index, as exported, is within the bound.
    count = sample(container, "parley_search_indexing_delay_seconds_count")
    within = sample(
        container, "parley_search_indexing_delay_seconds_bucket", {"le": str(SEARCHABLE_WITHIN_SECONDS)}
    )
    assert count >= len(texts)
    assert within == count
    await container.refresh_metrics()
    assert sample(container, "parley_search_index_backlog") == 0
    assert sample(container, "parley_search_index_lag_seconds") == 0
    exported = generate_latest(container.metrics.registry).decode()
    for name in ("parley_search_index_backlog", "parley_search_index_lag_seconds"):
        assert name in exported


async def test_a_message_acknowledged_but_never_indexed_is_indexed_on_restart(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    # The process "dies" between the acknowledgement and the batch: no indexer runs.
    await container.search_indexer.close()
    await send(client, alice, group["id"], "orphaned until restart")
    assert await in_index(container.db, bob.id, "orphaned") == []
    backlog = await container.search_indexer.backlog()
    assert backlog.waiting == 1

    restarted = SearchIndexer(container.db)
    restarted.start()
    try:
        await until_indexed(restarted, container.db, bob.id, "orphaned", ["orphaned until restart"])
    finally:
        await restarted.close()
    assert (await restarted.backlog()).waiting == 0
    if container.db.is_sqlite:
        await check_sqlite_index(container.db)


async def test_deleted_edited_and_removed_messages_are_never_indexed_late(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await container.search_indexer.close()  # everything below happens before any batch
    deleted = await send(client, alice, group["id"], "latecomer deleted")
    edited = await send(client, alice, group["id"], "latecomer before the edit")
    expired = await send(client, alice, group["id"], "latecomer expired")
    assert (await client.delete(f"/api/v1/messages/{deleted['id']}", headers=alice.headers)).status_code in (200, 204)
    response = await client.patch(
        f"/api/v1/messages/{edited['id']}", json={"content": "latecomer after the edit"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    async with container.db.transaction() as conn:  # as retention removes an expired message
        await conn.exec_driver_sql(f"DELETE FROM messages WHERE id = '{expired['id']}'")

    indexer = SearchIndexer(container.db)
    while await indexer.index_batch():
        pass
    assert await in_index(container.db, bob.id, "latecomer") == ["latecomer after the edit"]
    assert await in_index(container.db, bob.id, "before") == []
    assert (await indexer.backlog()).waiting == 0

    # Deleting an indexed message forgets it at once, without waiting for a batch.
    assert (await client.delete(f"/api/v1/messages/{edited['id']}", headers=alice.headers)).status_code in (200, 204)
    assert await in_index(container.db, bob.id, "latecomer") == []
    if container.db.is_sqlite:
        await check_sqlite_index(container.db)


async def test_indexers_running_together_index_each_message_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await container.search_indexer.close()
    texts = sorted(f"together {i:02d}" for i in range(40))
    for content in texts:
        await send(client, alice, group["id"], content)
    # Small batches, so the two really interleave (PostgreSQL: SKIP LOCKED claims).
    first, second = SearchIndexer(container.db, batch_size=3), SearchIndexer(container.db, batch_size=3)

    async def drain(indexer: SearchIndexer) -> int:
        done = 0
        while n := await indexer.index_batch():
            done += n
        return done

    counts = await asyncio.gather(drain(first), drain(second))
    assert sum(counts) == len(texts)
    assert await in_index(container.db, bob.id, "together") == texts
    if container.db.is_sqlite:
        await check_sqlite_index(container.db)


async def test_a_search_waits_for_a_batch_in_flight(client: httpx.AsyncClient, container: Container) -> None:
    """PostgreSQL: a message claimed by another indexer's batch that has not committed yet
    (this node's, woken by the send, or another node's) is still waiting to be indexed: the
    search's catch-up waits for that batch instead of skipping the message, so the search
    finds it. (SQLite has one writer: a batch and the catch-up never overlap.)"""
    if container.db.is_sqlite:
        pytest.skip("SQLite's single writer serialises batches and catch-ups")
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await container.search_indexer.close()
    await send(client, alice, group["id"], "inflight batch message")
    async with container.db.engine.connect() as batch:
        transaction = await batch.begin()
        # The indexer's own claim, left uncommitted: a batch in flight.
        claimed = await batch.run_sync(search_indexer_module._index_postgres, 500)
        assert len(claimed) == 1
        search = asyncio.create_task(container.search.search(bob.id, "inflight", limit=50))
        waiting_for_lock = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )

        async def blocked_or_done() -> None:
            while not search.done():
                async with container.db.read() as conn:
                    if (await conn.execute(waiting_for_lock)).scalar_one():
                        return
                await asyncio.sleep(0.01)  # polling the server's view of locks, with a timeout

        await asyncio.wait_for(blocked_or_done(), WAIT_SECONDS)
        assert not search.done(), "the search read before the batch in flight committed"
        await transaction.commit()
    result = await asyncio.wait_for(search, WAIT_SECONDS)
    assert [hit["message"]["content"] for hit in result["results"]] == ["inflight batch message"]


async def test_an_idle_indexers_polls_read_and_another_nodes_message_is_indexed(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await send(client, alice, group["id"], "before the poller")
    await container.search_indexer.catch_up()
    await container.search_indexer.close()
    # An indexer no local send wakes: it learns of messages only by polling, as it does of
    # another node's.
    indexer = SearchIndexer(container.db, poll_seconds=0.02)
    probes, batches = 0, 0
    polled = asyncio.Event()
    probe, index_batch = indexer.waiting, indexer.index_batch

    async def counted_probe() -> bool:
        nonlocal probes
        probes += 1
        if probes >= 6:
            polled.set()
        return await probe()

    async def counted_batch(*, wait: bool = False) -> int:
        nonlocal batches
        batches += 1
        return await index_batch(wait=wait)

    indexer.waiting, indexer.index_batch = counted_probe, counted_batch  # type: ignore[method-assign]
    indexer.start()
    try:
        await asyncio.wait_for(polled.wait(), WAIT_SECONDS)
        assert batches == 1  # the pass at start only: five idle polls, no write
        await send(client, alice, group["id"], "from another node")
        await until_indexed(indexer, container.db, bob.id, "another node", ["from another node"])
        assert batches >= 2
    finally:
        await indexer.close()


async def test_sends_in_quick_succession_are_indexed_together(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Once woken, the indexer waits ``gather_seconds`` before indexing: eight sends, each
    its own commit, make one or two index transactions, not eight. (This indexer learns of
    them by polling, as of another node's; a local send's event wakes it the same way.)"""
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    await container.search_indexer.close()
    indexer = SearchIndexer(container.db, poll_seconds=0.02, gather_seconds=2.0)
    batches: list[int] = []
    index_batch = indexer.index_batch

    async def counted_batch(*, wait: bool = False) -> int:
        indexed = await index_batch(wait=wait)
        batches.append(indexed)
        return indexed

    indexer.index_batch = counted_batch  # type: ignore[method-assign]
    indexer.start()
    try:
        texts = sorted(f"gathered message {i}" for i in range(8))
        await asyncio.gather(*(send(client, alice, group["id"], content) for content in texts))
        await until_indexed(indexer, container.db, bob.id, "gathered", texts)
        writing = [n for n in batches if n]
        assert sum(writing) == len(texts)
        assert len(writing) <= 2, batches
    finally:
        await indexer.close()


async def test_closing_cuts_the_gathering_short(container: Container) -> None:
    await container.search_indexer.close()
    indexer = SearchIndexer(container.db, gather_seconds=60.0)
    indexer.start()
    await asyncio.sleep(0)  # the first pass is gathering now
    # Far less than the minute it would gather, and than close's grace for a batch (5 s).
    await asyncio.wait_for(indexer.close(), 2.0)
