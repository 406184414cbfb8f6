"""The ``JobQueue`` contract, run against the in-process queue and Redis Streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from parley.jobs.memory import MemoryJobQueue
from parley.jobs.queue import MAX_ATTEMPTS, Job, JobQueue, retry_delay
from parley.jobs.redis_streams import GROUP, RedisJobQueue
from parley.jobs.scheduler import Scheduler
from parley.redis_urls import slot_tagged
from tests.support.redis_fixtures import TOPOLOGY

WAIT = 10.0


@pytest.fixture(params=["memory", "redis"])
def unstarted_queue(request: pytest.FixtureRequest) -> JobQueue:
    # Synchronous, so that it can pick its async Redis fixtures at run time.
    if request.param == "memory":
        return MemoryJobQueue(retry_base_seconds=0.001)
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    return RedisJobQueue(
        client,
        prefix=slot_tagged(prefix + "jobs", TOPOLOGY),
        retry_base_seconds=0.001,
        poll_seconds=0.02,
    )


@pytest.fixture
async def queue(unstarted_queue: JobQueue) -> AsyncIterator[JobQueue]:
    yield unstarted_queue
    await unstarted_queue.close()


async def test_jobs_run_retry_and_dead_letter(queue: JobQueue) -> None:
    finished: dict[str, asyncio.Event] = {name: asyncio.Event() for name in ("ok", "third-time")}
    attempts: dict[str, int] = {}

    async def flaky(job: Job) -> None:
        attempts[job.payload["name"]] = job.attempt
        if job.payload["fail_times"] >= job.attempt:
            raise RuntimeError("not yet")
        finished[job.payload["name"]].set()

    queue.register("flaky", flaky)
    await queue.start()
    await queue.enqueue("flaky", {"name": "ok", "fail_times": 0})
    await queue.enqueue("flaky", {"name": "third-time", "fail_times": 2})
    await queue.enqueue("flaky", {"name": "never", "fail_times": 99})
    await queue.enqueue("unknown-kind")
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in finished.values())), WAIT)
    assert attempts["ok"] == 1 and attempts["third-time"] == 3

    async def dead_letters() -> None:
        while (await queue.stats()).dead < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(dead_letters(), WAIT)
    assert attempts["never"] == MAX_ATTEMPTS


async def test_redis_takes_over_jobs_of_a_dead_consumer(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    prefix = slot_tagged(redis_prefix + "jobs", TOPOLOGY)
    producer = RedisJobQueue(redis_client, prefix=prefix)
    await producer._ensure_group()
    await producer.enqueue("work", {"n": 1})
    # A consumer that read the job and died before acknowledging it.
    taken = await redis_client.xreadgroup(GROUP, "dead-node", {producer.stream: ">"}, count=1)
    assert taken and json.loads(taken[0][1][0][1][b"payload"]) == {"n": 1}

    survivor = RedisJobQueue(redis_client, prefix=prefix, claim_idle_seconds=0.05, poll_seconds=0.02)
    ran = asyncio.Event()

    async def work(job: Job) -> None:
        ran.set()

    survivor.register("work", work)
    await survivor.start()
    try:
        await asyncio.wait_for(ran.wait(), WAIT)

        async def acknowledged() -> None:
            while (await survivor.stats()).in_flight:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(acknowledged(), WAIT)
    finally:
        await survivor.close()


def test_retry_delay_grows_and_caps() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(30) == 60.0


async def test_scheduler_enqueues_periodically(queue: JobQueue) -> None:
    ticked = asyncio.Event()

    async def tick(job: Job) -> None:
        ticked.set()

    queue.register("tick", tick)
    scheduler = Scheduler(queue)
    scheduler.every(0.01, "tick")
    await queue.start()
    await scheduler.start()
    try:
        await asyncio.wait_for(ticked.wait(), WAIT)
    finally:
        await scheduler.close()


async def test_delayed_jobs_wait_their_delay(queue: JobQueue) -> None:
    """``delay_seconds``: not before its time (a lower bound, never a timed upper one),
    and the immediate job enqueued after it runs first."""
    loop = asyncio.get_running_loop()
    ran: list[tuple[str, float]] = []
    done = asyncio.Event()

    async def record(job: Job) -> None:
        ran.append((job.payload["name"], loop.time()))
        if len(ran) == 2:
            done.set()

    queue.register("record", record)
    await queue.start()
    started = loop.time()
    await queue.enqueue("record", {"name": "later"}, delay_seconds=0.5)
    await queue.enqueue("record", {"name": "now"})
    assert (await queue.stats()).queued >= 1  # the delayed job counts as waiting
    await asyncio.wait_for(done.wait(), WAIT)
    assert [name for name, _ in ran] == ["now", "later"]
    assert ran[1][1] - started >= 0.5
