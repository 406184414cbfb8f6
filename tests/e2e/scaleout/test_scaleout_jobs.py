"""Jobs on Redis Streams across processes: a worker process killed (``kill -9``) in the
middle of a job leaves the entry pending under its name; a worker in another process takes
it over after the idle time and finishes it; a job that fails every time ends in the
dead-letter stream. (``test_jobs.py`` checks the same at the queue level, in one process.)
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import redis.asyncio as redis

from parley.jobs.queue import MAX_ATTEMPTS, Job
from parley.jobs.redis_streams import GROUP, RedisJobQueue
from tests.support.redis_fixtures import REDIS_URL
from tests.support.scaleout_helpers import eventually

WORKER = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    import redis.asyncio as redis
    from parley.jobs.redis_streams import RedisJobQueue

    async def main() -> None:
        url, prefix, mark = sys.argv[1:4]
        queue = RedisJobQueue(redis.from_url(url), prefix=prefix, poll_seconds=0.05)

        async def work(job):
            pathlib.Path(mark).write_text(job.id)  # started: now kill me
            await asyncio.sleep(3600)

        queue.register("work", work)
        await queue.start()
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_a_killed_workers_job_is_taken_over(
    tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    prefix = redis_prefix + "jobs"
    producer = RedisJobQueue(redis_client, prefix=prefix)
    await producer._ensure_group()
    job_id = await producer.enqueue("work", {"n": 1})

    mark = tmp_path / "started"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, REDIS_URL, prefix, str(mark),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await eventually(
            lambda: asyncio.sleep(0, mark.exists()), bool, timeout=15, what="the job started"
        )
        assert mark.read_text() == job_id
    finally:
        worker.kill()  # SIGKILL, mid-job: no acknowledgement
        await asyncio.wait_for(worker.wait(), 10)

    pending = await redis_client.xpending(producer.stream, GROUP)
    assert pending["pending"] == 1  # still there, under the dead consumer's name

    finished: list[str] = []
    attempts: list[int] = []

    async def work(job: Job) -> None:
        finished.append(job.id)

    async def always_fails(job: Job) -> None:
        attempts.append(job.attempt)
        raise RuntimeError("never works")

    survivor = RedisJobQueue(
        redis_client, prefix=prefix, claim_idle_seconds=0.2, poll_seconds=0.02,
        retry_base_seconds=0.001,
    )
    survivor.register("work", work)
    survivor.register("always-fails", always_fails)
    await survivor.start()
    try:
        await eventually(
            lambda: asyncio.sleep(0, finished), lambda done: done == [job_id],
            timeout=10, what="the survivor took the job over and finished it",
        )
        await survivor.enqueue("always-fails")
        stats = await eventually(
            survivor.stats, lambda s: s.dead == 1 and s.in_flight == 0,
            timeout=10, what="the failing job in the dead-letter stream",
        )
        assert attempts == list(range(1, MAX_ATTEMPTS + 1))
        assert stats.queued == 0
        dead = await redis_client.xrange(survivor.dead)
        assert dead[0][1][b"kind"] == b"always-fails"
    finally:
        await survivor.close()
