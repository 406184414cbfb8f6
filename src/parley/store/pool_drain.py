"""Waiting for a pool's connections to come back before the pool is disposed.

``AsyncEngine.dispose()`` closes only the connections sitting in the pool. One still checked
out — a write whose caller went away (``Database.write`` finishes it regardless), the
clean-up of a statement cancelled mid-flight, a session touch — is checked in later to the
discarded pool, where nothing ever closes it: asyncpg finds it unclosed when the garbage
collector frees it, long after and far from the work that opened it. So disposing waits for
them first, within a bound (a connection held for good must not hang shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# Longer than any statement Parley runs at shutdown; the search indexer's own grace is 5 s.
RETURN_GRACE_SECONDS = 10.0


def checked_out(engine: AsyncEngine) -> int:
    """Connections of the engine's pool in use now (0 for pools that do not count them)."""
    pool: Any = engine.pool
    try:
        return int(pool.checkedout())
    except AttributeError:
        return 0


async def wait_until_returned(engine: AsyncEngine, *, grace: float = RETURN_GRACE_SECONDS) -> int:
    """Wait until every connection of ``engine``'s pool is back, at most ``grace`` seconds;
    how many were still out then (logged: they will be found unclosed later)."""
    if checked_out(engine) == 0:
        return 0
    pool = engine.pool
    returned = asyncio.Event()

    def on_checkin(*_: object) -> None:
        returned.set()  # on the loop's thread: the async engine checks in from its greenlets

    event.listen(pool, "checkin", on_checkin)
    try:
        async with asyncio.timeout(grace):
            while checked_out(engine):
                returned.clear()
                await returned.wait()
    except TimeoutError:
        log.error(
            "database connections still in use at shutdown",
            extra={"connections": checked_out(engine), "waited_seconds": grace},
        )
    finally:
        event.remove(pool, "checkin", on_checkin)
    return checked_out(engine)
