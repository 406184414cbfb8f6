"""The group-commit batcher: batches form under load, failures reach every caller,
close() flushes what is queued and refuses the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from parley.errors import Unavailable
from parley.services.batching import Batcher


async def test_concurrent_items_share_a_batch() -> None:
    batches: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        return [i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.01, max_batch=100)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert results == [i * 2 for i in range(20)]
    assert len(batches) == 1 and batches[0] == list(range(20))
    await batcher.close()


async def test_max_batch_splits_and_errors_are_per_item() -> None:
    sizes: list[int] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        return [ValueError(i) if i % 2 else i for i in items]

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.001, max_batch=4)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
    assert [o if not isinstance(o, ValueError) else "err" for o in outcomes] == [
        0, "err", 2, "err", 4, "err", 6, "err", 8, "err"
    ]
    assert max(sizes) <= 4 and sum(sizes) == 10
    await batcher.close()


async def test_failed_flush_fails_every_caller() -> None:
    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        raise RuntimeError("database down")

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.001, max_batch=10)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    await batcher.close()


async def test_close_flushes_then_refuses() -> None:
    written: list[int] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        written.extend(items)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.05, max_batch=10)
    pending = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)  # let them queue
    await batcher.close()
    assert await asyncio.gather(*pending) == [0, 1, 2] and written == [0, 1, 2]
    with pytest.raises(Unavailable):
        await batcher.submit(99)


async def test_a_failing_item_fails_alone() -> None:
    """A flush that raises because of one item (the database refused its values) is split
    until the item is alone: everyone else's item commits, in order."""
    written: list[int] = []
    calls = 0

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if 13 in items:
            raise ValueError("the database refused item 13")
        written.extend(items)
        return [i * 2 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.05, max_batch=100)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(50)), return_exceptions=True)
    assert isinstance(outcomes[13], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 13] == [i * 2 for i in range(50) if i != 13]
    assert written == [i for i in range(50) if i != 13]  # in submission order
    assert calls <= 2 * 6 + 1  # a bisection, not one transaction per item
    await batcher.close()


async def test_an_unavailable_database_is_not_retried_item_by_item() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("database down")

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.05, max_batch=100)
    outcomes = await asyncio.gather(*(batcher.submit(i) for i in range(20)), return_exceptions=True)
    assert all(isinstance(o, ConnectionRefusedError) for o in outcomes) and calls == 1
    await batcher.close()


async def test_a_lone_item_waits_for_company_only_after_a_batch_of_several() -> None:
    """The window is for gathering: a lone item after a batch of one (or none) is written
    at once; after a batch of several, a lone item waits the window and takes the items
    that come meanwhile along."""
    batches: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        return list(items)

    # A window no test would sit out: an item that waited for it would time out below.
    batcher: Batcher[int, int] = Batcher(flush, window_seconds=3600, max_batch=100)
    assert await asyncio.wait_for(batcher.submit(1), timeout=10) == 1
    assert await asyncio.wait_for(batcher.submit(2), timeout=10) == 2
    assert batches == [[1], [2]]
    await batcher.close()

    patient: Batcher[int, int] = Batcher(flush, window_seconds=0.2, max_batch=100)
    batches.clear()
    assert await asyncio.wait_for(asyncio.gather(patient.submit(1), patient.submit(2)), timeout=10) == [1, 2]
    lone = asyncio.ensure_future(patient.submit(3))
    for _ in range(5):  # the writer wakes and starts its window
        await asyncio.sleep(0)
    assert batches == [[1, 2]]  # 3 is waiting for company
    assert await asyncio.wait_for(asyncio.gather(lone, patient.submit(4)), timeout=10) == [3, 4]
    assert batches == [[1, 2], [3, 4]]
    await patient.close()


async def test_a_caller_that_goes_away_does_not_stop_its_item() -> None:
    written: list[int] = []
    release = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        await release.wait()
        written.extend(items)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, window_seconds=0.0, max_batch=100)
    gone = asyncio.ensure_future(batcher.submit(1))
    stays = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await asyncio.wait_for(stays, timeout=10) == 2
    await batcher.close()
    assert gone.cancelled() and written == [1, 2]


async def test_a_reads_batcher_drops_items_whose_caller_went_away() -> None:
    read: list[list[int]] = []
    first_read = asyncio.Event()
    release = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        read.append(list(items))
        first_read.set()
        await release.wait()
        return list(items)

    batcher: Batcher[int, int] = Batcher.reads(flush, name="reads", max_batch=100)
    busy = asyncio.ensure_future(batcher.submit(0))  # the read in flight
    await asyncio.wait_for(first_read.wait(), timeout=10)
    gone = asyncio.ensure_future(batcher.submit(1))  # queued behind it, then abandoned
    stays = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await asyncio.wait_for(asyncio.gather(busy, stays), timeout=10) == [0, 2]
    await batcher.close()
    assert gone.cancelled() and read == [[0], [2]]


class FirstBatchHeld:
    """A flush that records its batches and holds the first until ``release`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            await self.release.wait()
        return list(items)

    async def queue_behind_first(
        self, batcher: Batcher[int, int]
    ) -> tuple[asyncio.Future[int], list[asyncio.Future[int]]]:
        """Item 0 alone (written at once), 1 and 2 queued behind it; then 0's batch ends."""
        first = asyncio.ensure_future(batcher.submit(0))
        while not self.batches:
            await asyncio.sleep(0)
        behind = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 2)]
        await asyncio.sleep(0)
        self.release.set()
        return first, behind


async def test_a_reads_batcher_waits_for_company_before_every_batch() -> None:
    """Reads arriving while one is read wait the window before the next batch too (writes
    go at once then: see below), and take along what comes meanwhile; a lone read after a
    read of one is still read at once."""
    held = FirstBatchHeld()
    batcher: Batcher[int, int] = Batcher.reads(held.flush, name="reads", max_batch=100, window_seconds=0.5)
    first, behind = await held.queue_behind_first(batcher)
    assert await asyncio.wait_for(first, timeout=10) == 0
    for _ in range(5):  # the reader is back and sits out the window
        await asyncio.sleep(0)
    assert held.batches == [[0]]
    late = asyncio.ensure_future(batcher.submit(3))
    assert await asyncio.wait_for(asyncio.gather(*behind, late), timeout=10) == [1, 2, 3]
    assert held.batches == [[0], [1, 2, 3]]
    await batcher.close()

    alone: Batcher[int, int] = Batcher.reads(held.flush, name="reads", max_batch=100, window_seconds=3600)
    assert await asyncio.wait_for(alone.submit(4), timeout=10) == 4
    assert await asyncio.wait_for(alone.submit(5), timeout=10) == 5
    await alone.close()


async def test_writes_queued_behind_a_batch_go_at_once() -> None:
    """The group commit waits only after being idle: what piled up while a batch was being
    written is written next without a window (one it would never sit out here)."""
    held = FirstBatchHeld()
    batcher: Batcher[int, int] = Batcher(held.flush, window_seconds=3600, max_batch=100)
    first, behind = await held.queue_behind_first(batcher)
    assert await asyncio.wait_for(asyncio.gather(first, *behind), timeout=10) == [0, 1, 2]
    assert held.batches == [[0], [1, 2]]
    await batcher.close()


async def test_close_with_a_timeout_fails_what_a_stuck_database_never_answered() -> None:
    started = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        started.set()
        await asyncio.Event().wait()  # a database that no longer answers
        return list(items)

    batcher: Batcher[int, int] = Batcher.reads(flush, name="reads", max_batch=1)
    in_flight = asyncio.ensure_future(batcher.submit(1))
    await asyncio.wait_for(started.wait(), timeout=10)
    queued = asyncio.ensure_future(batcher.submit(2))  # behind it (a batch holds one)
    await asyncio.wait_for(batcher.close(timeout=0.05), timeout=10)
    for caller in (in_flight, queued):
        with pytest.raises(Unavailable):
            await asyncio.wait_for(caller, timeout=10)
    with pytest.raises(Unavailable):
        await batcher.submit(3)  # closed: refused


async def test_close_with_a_timeout_fails_a_batch_cut_short_while_being_split() -> None:
    """A batch that failed whole is split to find the item at fault; a close that cancels
    the search must still answer the halves no flush holds yet."""
    reading = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        if len(items) > 1:
            raise ValueError("one of these is bad")
        reading.set()
        await asyncio.Event().wait()  # the lone item's read never returns
        return list(items)

    batcher: Batcher[int, int] = Batcher.reads(flush, name="reads", max_batch=4)
    callers = [asyncio.ensure_future(batcher.submit(i)) for i in range(4)]
    await asyncio.wait_for(reading.wait(), timeout=10)
    await asyncio.wait_for(batcher.close(timeout=0.05), timeout=10)
    for caller in callers:
        with pytest.raises(Unavailable):
            await asyncio.wait_for(caller, timeout=10)
