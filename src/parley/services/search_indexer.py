"""Search indexing after the commit, in batches (migration 0017; DESIGN §2 "Full-text search").

A send records, in its own transaction, that the message waits to be indexed (SQLite: a row
of ``message_search_queue``; PostgreSQL: the message's ``search_vector`` is NULL). This
indexer turns the waiting messages into index entries, a batch per transaction, off the
send path. Guarantees (documented in docs/architecture.md "Search indexing"):

- Durable: the waiting mark commits with the message, so a message acknowledged just before
  the process died is indexed by the next indexer to run (this node on restart, or another).
- Bounded: the indexer is woken by every local send and polls every ``poll_seconds`` for
  other nodes' messages; a message is searchable within one second of its commit. The
  delay is measured per message (``parley_search_indexing_delay_seconds``) and the backlog
  exported (``parley_search_index_backlog``, ``parley_search_index_lag_seconds``).
- A search never misses an acknowledged message all the same: ``Search`` calls
  :meth:`catch_up` first, which indexes whatever is still waiting (usually nothing).
- Only the current row is ever indexed, in the transaction that clears its mark; edits and
  deletes forget the old text in their own transaction (the triggers of 0017). A message
  deleted, expired or erased before its batch is never indexed.
- Several nodes: SQLite has one writer at a time, so batches never overlap; PostgreSQL
  nodes claim disjoint batches with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, TextClause, bindparam, text

from parley.background import cancel_and_wait
from parley.observability.metrics import SearchIndexMetrics
from parley.services.events import Event
from parley.services.search_bigrams import bigram_rows
from parley.store.db import Database
from parley.wire.events import EventType

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# How long closing waits for the batch in progress before cancelling it.
CLOSE_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2
# Once woken, the indexer lets this long's sends gather before it indexes them: a batch per
# send batch cost a second write transaction per commit (on SQLite, FTS5 also writes a
# segment per transaction), which at a few hundred messages a second was as much of the
# writer's time as the sends themselves. Well inside the bound below.
GATHER_SECONDS = 0.25
RETRY_SECONDS = 1.0
# The bound the docs promise, and what the indexer's own test checks the metric against.
SEARCHABLE_WITHIN_SECONDS = 1.0

_WAKING = frozenset({EventType.MESSAGE_CREATED, EventType.MESSAGE_UPDATED})

# --- SQLite: the queue of 0017 and the FTS5 tables of 0002 and 0021, one write transaction
# per batch.
_SQLITE_CLAIM = text(
    "SELECT message_id, queued_at FROM message_search_queue ORDER BY queued_at LIMIT :n"
)
_SQLITE_TOP = text("SELECT coalesce(max(doc_id), 0) FROM message_search")
# Only visible text, and only once: the row as it is now decides.
_SQLITE_DOCS = text(
    """
    INSERT INTO message_search (message_id)
    SELECT m.id FROM messages AS m
    WHERE m.id IN :ids AND m.kind = 'text' AND m.deleted_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM message_search AS s WHERE s.message_id = m.id)
    ORDER BY m.created_at, m.id
    """
).bindparams(bindparam("ids", expanding=True))
_SQLITE_FTS = [
    text(
        f"""
        INSERT INTO {table} (rowid, content)
        SELECT s.doc_id, m.content FROM message_search AS s JOIN messages AS m
            ON m.id = s.message_id
        WHERE s.doc_id > :top
        """
    )
    for table in ("messages_fts", "messages_fts_trigram")
]
# The bigram keys of migration 0021, for the new documents whose text can have any: only
# text outside ASCII (more UTF-8 bytes than characters, a third of the cost of a GLOB).
_SQLITE_NEW_TEXT = text(
    """
    SELECT s.doc_id, m.content FROM messages AS m JOIN message_search AS s ON s.message_id = m.id
    WHERE m.id IN :ids AND s.doc_id > :top AND length(CAST(m.content AS BLOB)) > length(m.content)
    """
).bindparams(bindparam("ids", expanding=True))
_SQLITE_KEYS = text("INSERT INTO message_search_bigrams (doc_id, bigrams) VALUES (:doc_id, :bigrams)")
_SQLITE_KEYS_FTS = text(
    """
    INSERT INTO messages_fts_bigram (rowid, bigrams)
    SELECT doc_id, bigrams FROM message_search_bigrams WHERE doc_id > :top
    """
)
_SQLITE_DONE = text("DELETE FROM message_search_queue WHERE message_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_SQLITE_WAITING = text("SELECT 1 FROM message_search_queue LIMIT 1")
_SQLITE_BACKLOG = text("SELECT count(*), min(queued_at) FROM message_search_queue")

# --- PostgreSQL: NULL vectors of visible text are the backlog (ix_messages_search_pending).
_PENDING = "search_vector IS NULL AND kind = 'text' AND deleted_at IS NULL"


def _postgres_index(claim: str) -> TextClause:
    return text(
        f"""
        WITH claimed AS (
            SELECT id, coalesce(edited_at, created_at) AS queued_at FROM messages
            WHERE {_PENDING}
            ORDER BY created_at
            LIMIT :n
            {claim}
        )
        UPDATE messages SET search_vector = to_tsvector('parley_search', messages.content)
        FROM claimed WHERE messages.id = claimed.id
        RETURNING claimed.queued_at
        """
    )


# The indexers' batches: each claims what no other batch holds.
_POSTGRES_INDEX = _postgres_index("FOR UPDATE SKIP LOCKED")
# A search's catch-up: it waits for the batches in flight instead of skipping their messages
# (still waiting until they commit); once one commits, PostgreSQL checks the row again and
# it is no longer waiting.
_POSTGRES_CATCH_UP = _postgres_index("FOR UPDATE")
_POSTGRES_WAITING = text(f"SELECT 1 FROM messages WHERE {_PENDING} LIMIT 1")
_POSTGRES_BACKLOG = text(
    f"SELECT count(*), min(coalesce(edited_at, created_at)) FROM messages WHERE {_PENDING}"
)


@dataclass(frozen=True, slots=True)
class Backlog:
    waiting: int
    oldest_seconds: float  # how long the oldest waiting message has waited; 0 when none


def _epoch(value: float | datetime) -> float:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(value)


def _index_sqlite(conn: Connection, batch_size: int) -> list[float]:
    claimed = list(conn.execute(_SQLITE_CLAIM, {"n": batch_size}))
    if not claimed:
        return []
    ids = [row.message_id for row in claimed]
    top = conn.execute(_SQLITE_TOP).scalar_one()
    conn.execute(_SQLITE_DOCS, {"ids": ids})
    for statement in _SQLITE_FTS:
        conn.execute(statement, {"top": top})
    new_text = conn.execute(_SQLITE_NEW_TEXT, {"ids": ids, "top": top})
    rows = bigram_rows((row.doc_id, row.content) for row in new_text)
    if rows:
        conn.execute(_SQLITE_KEYS, rows)
        conn.execute(_SQLITE_KEYS_FTS, {"top": top})
    conn.execute(_SQLITE_DONE, {"ids": ids})
    return [float(row.queued_at) for row in claimed]


def _index_postgres(conn: Connection, batch_size: int, *, wait: bool = False) -> list[float]:
    """``wait``: for batches in flight (a catch-up), instead of leaving their messages."""
    statement = _POSTGRES_CATCH_UP if wait else _POSTGRES_INDEX
    return [_epoch(row.queued_at) for row in conn.execute(statement, {"n": batch_size})]


class SearchIndexer:
    def __init__(
        self,
        db: Database,
        metrics: SearchIndexMetrics | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        poll_seconds: float = POLL_SECONDS,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Set after every batch: lets a caller wait for progress instead of sleeping.
        self.indexed = asyncio.Condition()

    async def index_batch(self, *, wait: bool = False) -> int:
        """Index up to one batch of waiting messages, in one transaction; how many marks it
        cleared (0: nothing was waiting, or other nodes hold it). ``wait``: for the batches
        other indexers have in flight, so nothing waiting now is left behind (PostgreSQL;
        SQLite's one writer runs batches one after the other anyway)."""
        if self._db.is_sqlite:
            queued = await self._db.write(_index_sqlite, self._batch_size)
        else:
            queued = await self._db.write(_index_postgres, self._batch_size, wait=wait)
        if queued and self._metrics is not None:
            now = time.time()
            for moment in queued:
                self._metrics.delay.observe(max(0.0, now - moment))
            self._metrics.indexed.inc(len(queued))
        async with self.indexed:
            self.indexed.notify_all()
        return len(queued)

    async def waiting(self) -> bool:
        """Whether any message waits (one indexed probe, no write)."""
        probe = _SQLITE_WAITING if self._db.is_sqlite else _POSTGRES_WAITING
        async with self._db.read() as conn:
            return (await conn.execute(probe)).first() is not None

    async def catch_up(self) -> None:
        """Index everything waiting now (what a search needs to miss nothing), waiting for
        the batches in flight: a message another batch has claimed but not committed is
        still waiting, and a search that skipped it would miss it."""
        if not await self.waiting():
            return
        while await self.index_batch(wait=True) == self._batch_size:
            pass

    async def backlog(self) -> Backlog:
        statement = _SQLITE_BACKLOG if self._db.is_sqlite else _POSTGRES_BACKLOG
        async with self._db.read() as conn:
            count, oldest = (await conn.execute(statement)).one()
        if not count or oldest is None:
            return Backlog(0, 0.0)
        return Backlog(int(count), max(0.0, time.time() - _epoch(oldest)))

    async def refresh_metrics(self) -> None:
        if self._metrics is None:
            return
        backlog = await self.backlog()
        self._metrics.backlog.set(backlog.waiting)
        self._metrics.lag.set(backlog.oldest_seconds)

    async def on_events(self, events: Sequence[Event]) -> None:
        """Event listener: a local send or edit wakes the indexer at once."""
        if any(e.type in _WAKING for e in events):
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="search-indexer")

    async def close(self) -> None:
        """Stop after the batch in progress: a transaction cancelled mid-statement can leave
        its asyncpg connection unclosed. Cancelled only if that batch outlasts the grace."""
        if self._task is None:
            return
        self._stop.set()
        self._wake.set()
        finished, _ = await asyncio.wait({self._task}, timeout=CLOSE_GRACE_SECONDS)
        if not finished:
            await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        # Starting with a pass indexes what a crash left waiting.
        woken = True
        while not self._stop.is_set():
            try:
                # A poll (for other nodes' messages) probes first and writes only when
                # something waits: an idle node's poll is a read, not a write transaction
                # five times a second (on SQLite, the one writer the senders need).
                if woken or await self.waiting():
                    await self._gather()
                    self._wake.clear()  # what woke it while it gathered is in this pass
                    while not self._stop.is_set() and await self.index_batch() == self._batch_size:
                        pass
            except Exception:  # the database is away: the marks wait, durable
                log.exception("search indexing failed; retrying")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
                woken = True
            except TimeoutError:
                woken = False
            self._wake.clear()

    async def _gather(self) -> None:
        """Wait ``gather_seconds`` for more of what woke the indexer (cut short by close)."""
        if self._gather_seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._gather_seconds)
