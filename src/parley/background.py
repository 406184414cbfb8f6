"""Stopping background tasks, even ones whose cancellation gets lost.

A task looping over a Redis command can swallow one cancellation: redis-py's blocking
commands may turn a ``CancelledError`` that lands at the wrong moment into a
``ConnectionError`` (redis/redis-py#2028, #2551), and the loop's "Redis away: wait and
retry" branch then carries on. ``cancel_and_wait`` cancels again until each task has
ended — the next cancellation lands in the retry's sleep — within a bound, so shutting
down never hangs on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

RECANCEL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 10.0


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, timeout: float = STOP_TIMEOUT_SECONDS
) -> None:
    """Cancel ``tasks`` and wait until they have ended (their errors are dropped)."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        if pending and loop.time() >= deadline:
            log.error(
                "background tasks did not stop",
                extra={"tasks": sorted(task.get_name() for task in pending)},
            )
            return
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a task that failed earlier was logged where it failed
