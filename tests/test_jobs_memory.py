"""The in-process job queue: runs jobs, retries failures with backoff, dead-letters."""

from __future__ import annotations

import asyncio

from parley.jobs.memory import MemoryJobQueue
from parley.jobs.queue import MAX_ATTEMPTS, Job, retry_delay
from parley.jobs.scheduler import Scheduler


async def test_jobs_run_and_failures_retry_then_dead_letter() -> None:
    queue = MemoryJobQueue(retry_base_seconds=0.001)
    done: list[str] = []
    attempts: dict[str, int] = {}

    async def flaky(job: Job) -> None:
        attempts[job.id] = job.attempt
        if job.payload["fail_times"] >= job.attempt:
            raise RuntimeError("not yet")
        done.append(job.payload["name"])

    queue.register("flaky", flaky)
    await queue.start()
    await queue.enqueue("flaky", {"name": "ok", "fail_times": 0})
    await queue.enqueue("flaky", {"name": "third-time", "fail_times": 2})
    await queue.enqueue("flaky", {"name": "never", "fail_times": 99})
    await queue.enqueue("unknown-kind")
    await asyncio.wait_for(queue.drain(), 10)
    assert sorted(done) == ["ok", "third-time"]
    assert max(attempts.values()) == MAX_ATTEMPTS
    dead = [job.kind for job, _ in queue.dead_letters]
    assert sorted(dead) == ["flaky", "unknown-kind"]
    assert (await queue.stats()).dead == 2
    await queue.close()


def test_retry_delay_grows_and_caps() -> None:
    assert [retry_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(30) == 60.0


async def test_scheduler_enqueues_periodically() -> None:
    queue = MemoryJobQueue()
    ticked = asyncio.Event()

    async def tick(job: Job) -> None:
        ticked.set()

    queue.register("tick", tick)
    scheduler = Scheduler(queue)
    scheduler.every(0.01, "tick")
    await queue.start()
    await scheduler.start()
    await asyncio.wait_for(ticked.wait(), 5)
    await scheduler.close()
    await queue.close()
