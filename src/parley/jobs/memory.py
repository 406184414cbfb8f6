"""In-process job queue: asyncio workers, retries with backoff, a bounded dead-letter list.

Jobs live in memory, so a process restart forgets queued work; the periodic jobs that
matter (cleanup, retention) are idempotent sweeps that simply run again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from parley.background import cancel_and_wait
from parley.ids import new_id
from parley.jobs.queue import MAX_ATTEMPTS, Handler, Job, QueueStats, retry_delay

log = logging.getLogger(__name__)
MAX_DEAD_LETTERS = 1000


class MemoryJobQueue:
    def __init__(self, *, workers: int = 2, retry_base_seconds: float = 1.0) -> None:
        self._handlers: dict[str, Handler] = {}
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers = workers
        self._retry_base = retry_base_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._delayed: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self.dead_letters: deque[tuple[Job, str]] = deque(maxlen=MAX_DEAD_LETTERS)

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, delay_seconds: float = 0.0
    ) -> str:
        job = Job(id=new_id(), kind=kind, payload=payload or {})
        if delay_seconds > 0:
            # Not awaited by drain(): a job due in minutes is not "queued work" yet.
            task = asyncio.create_task(self._requeue_later(job, delay_seconds))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
        else:
            self._queue.put_nowait(job)
        return job.id

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"jobs-{i}") for i in range(self._workers)
            ]

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._in_flight += 1
            try:
                await self._run(job)
            finally:
                self._in_flight -= 1
                self._queue.task_done()

    async def _run(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        if handler is None:
            self.dead_letters.append((job, "no handler"))
            log.error("job has no handler", extra={"job_kind": job.kind})
            return
        try:
            await handler(job)
        except Exception as exc:
            if job.attempt >= MAX_ATTEMPTS:
                self.dead_letters.append((job, repr(exc)))
                log.error("job dead-lettered", extra={"job_kind": job.kind, "error": repr(exc)})
                return
            delay = retry_delay(job.attempt, self._retry_base)
            retry = Job(job.id, job.kind, job.payload, job.attempt + 1)
            task = asyncio.create_task(self._requeue_later(retry, delay))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _requeue_later(self, job: Job, delay: float) -> None:
        await asyncio.sleep(delay)
        self._queue.put_nowait(job)

    async def drain(self) -> None:
        """Wait until every queued job (retries included) has run — for tests and shutdown."""
        while True:
            await self._queue.join()
            if not self._retries:
                return
            await asyncio.gather(*list(self._retries), return_exceptions=True)

    async def close(self) -> None:
        await cancel_and_wait([*self._tasks, *self._retries, *self._delayed])
        self._tasks = []

    async def stats(self) -> QueueStats:
        queued = self._queue.qsize() + len(self._delayed) + len(self._retries)
        return QueueStats(queued, self._in_flight, len(self.dead_letters))
