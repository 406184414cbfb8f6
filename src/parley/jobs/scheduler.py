"""Periodic jobs: every N seconds, enqueue a job of a kind.

With several nodes each runs its own scheduler; periodic handlers are idempotent sweeps,
so running one twice costs a little work and breaks nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from parley.background import cancel_and_wait
from parley.jobs.queue import JobQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Periodic:
    kind: str
    every_seconds: float


class Scheduler:
    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._periodics: list[Periodic] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, kind: str) -> None:
        self._periodics.append(Periodic(kind, seconds))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(p), name=f"every-{p.kind}") for p in self._periodics]

    async def _loop(self, periodic: Periodic) -> None:
        while True:
            await asyncio.sleep(periodic.every_seconds)
            try:
                await self._queue.enqueue(periodic.kind)
            except Exception:  # a failed tick is retried at the next one
                log.exception("could not enqueue periodic job", extra={"job_kind": periodic.kind})

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
