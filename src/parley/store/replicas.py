"""PostgreSQL read replicas (``PARLEY_DATABASE_REPLICA_URLS``): the heavy reads — history,
the changes feed, search, conversation lists — on a streaming replica when it has caught
up with what the caller needs, on the primary otherwise (DESIGN §2 "Scale-out").

"What the caller needs" is everything committed before the read began, on any node: a
client that just sent a message and then pages history must find it, and a session that
resumes after a gap must get every change up to now, or it would skip what the replica had
not replayed yet. So a read first asks the primary for its WAL position
(``pg_current_wal_insert_lsn()``: no table, no lock, a fraction of a millisecond), then
opens a transaction on a replica and checks ``pg_last_wal_replay_lsn()`` against it.
The *insert* position, not ``pg_current_wal_lsn()`` (the *write* position): with
``synchronous_commit = off`` a commit returns before its WAL is written out, so the write
position can stand before a committed row, and a replica that replayed up to it would not
have the row (the primary streams only flushed WAL). The insert position covers every
commit. It is stricter than needed in two ways, both erring towards the primary: it covers
other sessions' WAL still in flight (under steady writes with asynchronous commit most
replica reads go to the primary — correct, and counted as ``primary_lagging``); and when the
next record would start a page, it names the position after that page's header, which no
replica ever replays to — on an idle primary after a WAL segment switch every read would go
to the primary until the next write. That header is taken off (:func:`record_end`). A replica that
is behind is skipped (the next one is tried, then the primary); a replica that fails is
left alone for :data:`RETRY_AFTER_SECONDS`. Replay only moves forward, so once the check
passes every later statement of the transaction sees at least that position.

A sequence number alone would not do: a replica showing a conversation's ``last_seq`` ≥ N
proves nothing about the rows a *search* or a *conversation list* needs, and even for one
conversation the caller rarely knows the newest seq — the primary's LSN covers every case
with one comparison.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from parley.store.pool_drain import dispose_when_returned

log = logging.getLogger(__name__)

# A replica that failed (refused, timed out) is not tried again for this long: every read
# paying a connect timeout to a dead replica would be slower than reading the primary.
RETRY_AFTER_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2.0

_PRIMARY_LSN = text(
    "SELECT pg_current_wal_insert_lsn()::text, "
    "pg_size_bytes(current_setting('wal_segment_size')), "
    "current_setting('wal_block_size')::int"
)
# A WAL page's header (access/xlog_internal.h, 64-bit builds): the long form opens a segment.
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40
# Through text: asyncpg has no codec for pg_lsn parameters.
_CAUGHT_UP = text(
    "SELECT COALESCE(pg_last_wal_replay_lsn() >= CAST(CAST(:lsn AS text) AS pg_lsn), false)"
)


@dataclass
class Replica:
    url: str
    engine: AsyncEngine
    down_until: float = 0.0


class ReplicaSet:
    def __init__(self, urls: list[str], *, pool_size: int) -> None:
        self.replicas = [
            Replica(
                url,
                create_async_engine(
                    url,
                    pool_size=pool_size,
                    max_overflow=pool_size,
                    pool_pre_ping=True,
                    connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
                ),
            )
            for url in urls
        ]
        self._turn = itertools.cycle(range(len(self.replicas)))
        # Where reads went: "replica", "primary_lagging" (every replica behind),
        # "primary_unavailable" (none reachable). parley_db_reads_total{source}.
        self.sources: Counter[str] = Counter()

    @asynccontextmanager
    async def read(self, primary: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction that sees everything committed before this call."""
        conn = await self._caught_up_replica(primary)
        if conn is None:
            async with primary.connect() as conn, conn.begin():
                yield conn
            return
        try:
            yield conn
        finally:
            await conn.rollback()  # read-only: nothing to keep
            await conn.close()

    async def _caught_up_replica(self, primary: AsyncEngine) -> AsyncConnection | None:
        async with primary.connect() as conn:
            inserted, segment, block = (await conn.execute(_PRIMARY_LSN)).one()
            await conn.rollback()
        lsn = record_end(inserted, segment_bytes=int(segment), block_bytes=int(block))
        now = time.monotonic()
        lagging = False
        start = next(self._turn)
        for offset in range(len(self.replicas)):
            replica = self.replicas[(start + offset) % len(self.replicas)]
            if replica.down_until > now:
                continue
            candidate: AsyncConnection | None = None
            try:
                conn = candidate = await replica.engine.connect()
                await conn.begin()
                if (await conn.execute(_CAUGHT_UP, {"lsn": lsn})).scalar_one():
                    self.sources["replica"] += 1
                    return conn
                lagging = True
            except (OSError, DBAPIError, SQLAlchemyError, TimeoutError) as exc:
                replica.down_until = now + RETRY_AFTER_SECONDS
                log.warning(
                    "read replica unavailable; reading the primary",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
            if candidate is not None:
                await _close_quietly(candidate)
        self.sources["primary_lagging" if lagging else "primary_unavailable"] += 1
        return None

    async def dispose(self) -> None:
        for replica in self.replicas:
            await dispose_when_returned(replica.engine)


def record_end(insert_lsn: str, *, segment_bytes: int, block_bytes: int) -> str:
    """The end of the last record inserted, from ``pg_current_wal_insert_lsn()``: the same
    position unless it stands just past a page header (no record ends there: a record that
    reaches into a page holds at least one byte of it), then the page boundary itself —
    where a replica's ``pg_last_wal_replay_lsn()`` stops after replaying that record."""
    high, _, low = insert_lsn.partition("/")
    position = (int(high, 16) << 32) | int(low, 16)
    if position % segment_bytes == LONG_PAGE_HEADER:
        position -= LONG_PAGE_HEADER
    elif position % block_bytes == SHORT_PAGE_HEADER:
        position -= SHORT_PAGE_HEADER
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def _close_quietly(conn: AsyncConnection) -> None:
    try:
        await conn.rollback()
        await conn.close()
    except Exception:  # noqa: BLE001 - a broken connection: the pool discards it
        with contextlib.suppress(Exception):
            await conn.invalidate()
