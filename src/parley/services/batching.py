"""Group commit: gather concurrent requests for a short window, write them in one
transaction, answer each caller only after that transaction commits (DESIGN §2).

The window only delays a request that arrives when the writer is idle; requests that pile
up while a batch is being written go out in the next batch at once, so under load batches
grow by themselves and nothing waits longer than one commit plus one window. And only when
there is company to wait for: a lone request after a batch of one (one sender at a time, a
REST call now and then) is written at once — the window would be all of its wait for
nothing — while a request found with others, or after a batch of several, waits as before.

Reads (``Batcher.reads``) also wait for company before every batch, not only after being
idle: a read takes a few milliseconds, too few for many requests to pile up behind it, and
the statements of a read cost about the same for one request as for dozens.

One request must never fail another's: when a whole flush raises (the database refused one
request's values, say), the batch is split in halves and each half flushed again, until the
request at fault is alone and gets the error (about 2·log2(n) extra transactions for one
bad request in n, in the original order). A database that cannot be reached is the
exception: every request fails alike, and splitting would only knock on a closed door.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from parley.background import cancel_and_wait
from parley.errors import Unavailable
from parley.store.failures import is_unavailable

log = logging.getLogger(__name__)

# How long a read batcher's close waits for the reads queued at shutdown (every session is
# closing: an answer later than this helps nobody).
READS_CLOSE_SECONDS = 5.0

# How long a read batcher's read waits for company, when there is some (a lone read after a
# read of one is read at once). A burst of identifies is read a batch at a time, and the statements cost about
# the same for one session as for a dozen; read as they came (a mean batch of five at 800
# connects a second), the database threads spent more CPU per identify than the event
# loop. Waiting this long before each batch made them about four times larger and
# connect + identify about a third cheaper (docs/benchmarks.md, round fourteen).
READS_WINDOW_SECONDS = 0.005

Item = TypeVar("Item")
Result = TypeVar("Result")

# A flush returns one outcome per item, in order: its result or the exception to raise.
Flush = Callable[[Sequence[Item]], Awaitable[Sequence[Result | BaseException]]]


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _fail(batch: Sequence[tuple[Any, asyncio.Future[Any]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


class Batcher(Generic[Item, Result]):
    def __init__(
        self,
        flush: Flush[Item, Result],
        *,
        window_seconds: float,
        max_batch: int,
        name: str = "group commit",
        drop_abandoned: bool = False,
        gather_every_batch: bool = False,
    ) -> None:
        self._flush = flush
        self._name = name  # in its task's name and its log lines
        # Reads: an item whose caller went away (its future cancelled) is not read at all.
        # (Writes are written anyway: the caller may retry, and idempotency needs the row.)
        self._drop_abandoned = drop_abandoned
        # Reads: the window before every batch; writes: only after being idle.
        self._gather_every_batch = gather_every_batch
        self._window = window_seconds
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_batch = 0  # the size of the last batch written: is there company?

    async def submit(self, item: Item) -> Result:
        """Queue ``item``; returns once the batch holding it has committed."""
        return await self.enqueue(item)

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item`` now; the future returned resolves once its batch has committed.
        Items queued one after another are written in that order."""
        if self._closing:
            raise Unavailable("The server is shutting down; retry on another node")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        # If the caller is gone by the time the batch fails, the error is still "retrieved".
        future.add_done_callback(_retrieve)
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)
        self._wakeup.set()
        # The future is this item's alone, not the batch's: a caller that goes away cancels
        # only its own answer (``_write`` skips a future already done); the item is still
        # written with its batch. (No shield: one less future and two callbacks per send.)
        return future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                if self._closing:
                    return
                continue
            first = True
            while self._pending:
                if (first or self._gather_every_batch) and self._waits_for_company():
                    await asyncio.sleep(self._window)
                first = False
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._last_batch = len(batch)
                try:
                    await self._write(batch)
                except asyncio.CancelledError:
                    # Here, not in ``_write``: a batch being split has halves that no
                    # ``_write`` holds yet, and their callers must hear too.
                    _fail(batch, Unavailable("The write was interrupted; retry"))
                    raise
            if self._closing:
                return

    def _waits_for_company(self) -> bool:
        """Whether the next batch sits out the window first: only with room in it and
        company to wait for (items already waiting together, or a last batch of several)."""
        return (
            self._window > 0
            and len(self._pending) < self._max_batch
            and not self._closing
            and (len(self._pending) > 1 or self._last_batch > 1)
        )

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        if self._drop_abandoned:
            batch = [(item, future) for item, future in batch if not future.done()]
            if not batch:
                return
        try:
            outcomes = await self._flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not is_unavailable(exc):
                half = len(batch) // 2  # find the request at fault; the others commit
                await self._write(batch[:half])
                await self._write(batch[half:])
                return
            log.exception("%s failed", self._name, extra={"batch": len(batch)})
            outcomes = [exc] * len(batch)  # every caller of what is left learns why
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    @classmethod
    def reads(
        cls,
        flush: Flush[Item, Result],
        *,
        name: str,
        max_batch: int,
        window_seconds: float = READS_WINDOW_SECONDS,
    ) -> Batcher[Item, Result]:
        """A batcher of reads: a short window (``READS_WINDOW_SECONDS``) before every batch,
        and an item whose caller went away is not read at all."""
        return cls(
            flush,
            window_seconds=window_seconds,
            max_batch=max_batch,
            name=name,
            drop_abandoned=True,
            gather_every_batch=True,
        )

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new items, write what is queued, stop. With ``timeout``: whatever is not
        written by then fails with ``Unavailable`` (a database that stopped answering must
        not hold a shutdown forever)."""
        self._closing = True
        self._wakeup.set()
        task = self._task
        if task is None:
            return
        if timeout is None:
            await task
            return
        finished, _ = await asyncio.wait({task}, timeout=timeout)
        if finished:
            return
        await cancel_and_wait([task])  # the batch in flight fails (``_run``)
        pending, self._pending = self._pending, []
        _fail(pending, Unavailable("The server is shutting down; retry on another node"))
