"""Disposing an engine's pool without leaving a connection unclosed.

``AsyncEngine.dispose()`` closes only the connections sitting in the pool, then replaces the
pool. One still checked out — a write whose caller went away (``Database.write`` finishes it
regardless), the clean-up of a statement cancelled mid-flight, a session touch — is checked
in later to the discarded pool, where nothing ever closes it: asyncpg finds it unclosed when
the garbage collector frees it, long after and far from the work that opened it. And closing
the pooled connections awaits each one while the pool is still the engine's: another task
could take a connection from it meanwhile, and give it back to the discarded pool. So
disposing waits for the connections out (within a bound: one held for good must not hang
shutdown), gives the engine its new pool, and only then closes the old one's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.util import greenlet_spawn

log = logging.getLogger(__name__)

# Longer than any statement Parley runs at shutdown; the search indexer's own grace is 5 s.
RETURN_GRACE_SECONDS = 10.0


def checked_out(pool: Pool) -> int:
    """Connections of ``pool`` in use now (0 for pools that do not count them)."""
    counted: Any = pool
    try:
        return int(counted.checkedout())
    except AttributeError:
        return 0


async def wait_until_returned(pool: Pool, *, grace: float = RETURN_GRACE_SECONDS) -> int:
    """Wait until every connection of ``pool`` is back, at most ``grace`` seconds; how many
    were still out then (logged: they will be found unclosed later)."""
    if checked_out(pool) == 0:
        return 0
    returned = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_checkin(*_: object) -> None:
        # Usually on the loop's thread (the engine's greenlets), but a connection dropped
        # unreturned is checked in by the collector, on whichever thread it runs.
        loop.call_soon_threadsafe(returned.set)

    event.listen(pool, "checkin", on_checkin)
    try:
        async with asyncio.timeout(grace):
            while checked_out(pool):
                returned.clear()
                await returned.wait()
    except TimeoutError:
        log.error(
            "database connections still in use at shutdown",
            extra={"connections": checked_out(pool), "waited_seconds": grace},
        )
    finally:
        event.remove(pool, "checkin", on_checkin)
    return checked_out(pool)


async def dispose_when_returned(engine: AsyncEngine, *, grace: float = RETURN_GRACE_SECONDS) -> None:
    """Give ``engine`` a new pool once every connection of the old one is back, then close
    the old one's. In that order, with nothing awaited in between: closing a connection
    awaits, and a pool still the engine's while it is closed could lend one out meanwhile."""
    pool = engine.pool
    await wait_until_returned(pool, grace=grace)
    await engine.dispose(close=False)  # no await inside: nothing can take from the old pool
    await greenlet_spawn(pool.dispose)  # closing an async driver's connection awaits
