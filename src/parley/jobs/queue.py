"""The job queue contract shared by every backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Handler = Callable[["Job"], Awaitable[None]]

# Retry delays grow 1 s, 2 s, 4 s, ... capped; after MAX_ATTEMPTS the job is dead-lettered.
MAX_ATTEMPTS = 5
BASE_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


def retry_delay(attempt: int, base: float = BASE_RETRY_SECONDS) -> float:
    return min(base * 2.0 ** max(attempt - 1, 0), MAX_RETRY_SECONDS)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class QueueStats:
    queued: int
    in_flight: int
    dead: int


class JobQueue(Protocol):
    def register(self, kind: str, handler: Handler) -> None:
        """Run ``handler`` for jobs of ``kind``. Register before ``start``."""
        ...

    async def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, delay_seconds: float = 0.0
    ) -> str:
        """Queue a job, to run no sooner than ``delay_seconds`` from now; returns its id.
        Durable once this returns (Redis backend); a delayed job runs up to one poll
        interval (half a second) late there."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop taking new work; let running handlers finish."""
        ...

    async def stats(self) -> QueueStats: ...
