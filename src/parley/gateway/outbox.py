"""One connection's outgoing frames: a bounded queue and the writer that drains it.

Frames are already-encoded strings (events are shared between recipients, not copied).
The queue never grows past ``limit`` frames: when a frame does not fit, :meth:`Outbox.offer`
says so and the connection closes with 4009 — a client too slow to drain its socket is
disconnected and resumes through ``changes`` rather than making the server buffer for it
(DESIGN §2 "Backpressure"). Below the queue, the ASGI server buffers at most one
transport high-water mark (64 KiB in uvicorn) before a write waits, plus the one batch of
frames (:data:`BATCH_CHARS`) being written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

# The frames a socket has waiting go out together, as one write to the kernel, up to about
# this many characters (a transport high-water mark's worth): a batch is taken from the
# queue whole, so past the transport's buffer a slow reader holds at most one more of these.
BATCH_CHARS = 65_536


class FrameWriter(Protocol):
    async def send_frames(self, frames: Sequence[str]) -> None:
        """Write ``frames`` as text frames, in order (in one write to the kernel where the
        server allows it)."""
        ...

    def write_now(self, frames: Sequence[str]) -> bool:
        """Write ``frames`` at once, without waiting, if the socket takes them so; False,
        with nothing written, if it cannot (its buffer is full, or the server has no such
        write): then :meth:`send_frames` writes them."""
        ...

    async def close(self, code: int, reason: str) -> None: ...


class Flusher:
    """The outboxes that were offered frames during this turn of the event loop, written
    once at its end: one write per socket for all of them, and no task per socket.

    A fan-out of one committed batch offers a frame to every member's socket; with a writer
    task per socket and burst, a group of 1,000 started a thousand tasks per batch. Here the
    one callback writes each socket's frames in place while its transport takes them; only a
    socket whose buffer is full (or that is closing) gets a writer task, which waits."""

    __slots__ = ("_pending", "_scheduled_on")

    def __init__(self) -> None:
        self._pending: list[Outbox] = []
        # The loop a flush is scheduled on, until it runs. Compared, not just set: a loop
        # that stopped with the flush pending (an app served by one loop, then another, as
        # tests do) must not leave every later offer waiting for a flush that never runs.
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    def add(self, outbox: Outbox) -> None:
        self._pending.append(outbox)
        loop = asyncio.get_running_loop()
        if self._scheduled_on is not loop:
            loop.call_soon(self._flush)
            self._scheduled_on = loop

    def _flush(self) -> None:
        self._scheduled_on = None
        pending, self._pending = self._pending, []
        for outbox in pending:
            try:
                outbox.flush()
            except Exception:  # a bug in one socket's write must not keep the rest waiting
                log.exception("outbox flush failed")


class Outbox:
    """Frames for one connection, and the writing of them.

    No task waits on an empty queue. With a :class:`Flusher` (the gateway's), frames offered
    in one turn of the event loop are written at its end, in place; a writer task runs only
    while the socket cannot take them at once, or for the close frame, and ends when the
    queue is empty. So an idle connection holds no writer task, no event and no future
    besides :attr:`finished`. Frames are written in the order offered, by one writer at a time.
    """

    # Ten thousand idle connections hold ten thousand of these: no per-instance dict.
    __slots__ = (
        "_limit", "_on_written", "_stamps", "_appended", "_taken", "_frames", "_held",
        "_close", "_abandoned", "sent", "_writer", "_writing", "_finished", "_flusher",
        "_queued",
    )

    def __init__(
        self,
        limit: int,
        on_written: Callable[[float], None] | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        self._limit = limit
        # Delivery timing: (number of the frame in the queue's life, commit time) of stamped
        # frames; when the writer has written that frame it reports the seconds since.
        # Made on the first stamp: most connections are never timed (a few per envelope).
        self._on_written = on_written
        self._stamps: deque[tuple[int, float]] | None = None
        self._appended = 0  # frames ever put in _frames
        self._taken = 0  # frames ever taken out of _frames (written or dropped)
        self._frames: deque[str] = deque()
        # While a connection identifies, events are held back so that ``ready`` goes first.
        self._held: list[str] | None = None
        self._close: tuple[int, str] | None = None
        self._abandoned = False
        self.sent = 0
        self._writer: FrameWriter | None = None  # where frames go, once :meth:`start` said
        self._writing: asyncio.Task[None] | None = None  # the writer task, while it runs
        self._finished: asyncio.Future[None] | None = None
        # Without a flusher every burst is a writer task's (tests of the queue alone).
        self._flusher = flusher
        self._queued = False  # in the flusher's list for this turn

    @property
    def depth(self) -> int:
        return len(self._frames) + (len(self._held) if self._held is not None else 0)

    @property
    def closing(self) -> bool:
        return self._close is not None or self._abandoned

    def start(self, writer: FrameWriter) -> asyncio.Future[None]:
        """Write to ``writer`` from now on. The future resolves once the close frame is
        out, the outbox is abandoned, or the socket failed: nothing more will be written."""
        if self._finished is None:
            self._writer = writer
            self._finished = asyncio.get_running_loop().create_future()
            self._kick()
        return self._finished

    async def drain(self, writer: FrameWriter) -> None:
        """Write to ``writer`` until the close frame is out (or the socket failed)."""
        await self.start(writer)

    def offer(self, frame: str) -> bool:
        """Queue ``frame``; False when the queue is full (the caller closes with 4009).
        Frames offered once closing are dropped: the client resumes from its seq anyway."""
        # The hot path of every fan-out (once per recipient): attributes, not properties.
        if self._close is not None or self._abandoned:
            return True
        frames, held = self._frames, self._held
        if held is not None:
            if len(frames) + len(held) >= self._limit:
                return False
            held.append(frame)
            return True
        if len(frames) >= self._limit:
            return False
        frames.append(frame)
        self._appended += 1
        if self._writing is None:  # a running writer picks the frame up itself
            self._kick()
        return True

    def stamp(self, committed_at: float) -> None:
        """Time the frame offered last (not while held: ready's hold is not delivery)."""
        if self._on_written is None or self._held is not None or self.closing:
            return
        if self._stamps is None:
            self._stamps = deque()
        self._stamps.append((self._appended, committed_at))

    def _drop_all(self) -> None:
        self._taken += len(self._frames)
        self._frames.clear()
        self._stamps = None

    def hold(self) -> None:
        """Keep offered frames back until :meth:`release`."""
        if self._held is None:
            self._held = []

    def drop_held(self) -> None:
        """Forget the held frames and hold no more (ready is not coming)."""
        self._held = None

    def release(self, first: str) -> None:
        """Send ``first``, then everything held, then whatever comes next."""
        held, self._held = self._held or [], None
        if self.closing:
            return
        self._frames.append(first)
        self._frames.extend(held)
        self._appended += 1 + len(held)
        self._kick()

    def close(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Send what is queued (or drop it, with ``discard``), then the close frame."""
        if self.closing:
            return
        self._close = (code, reason)
        if discard:
            self._drop_all()
        if self._held is not None:
            # Held frames were never going to precede ready; ready is not coming now.
            self._held = None
        self._kick()

    def abandon(self) -> None:
        """The peer is gone: drop everything and stop writing without a close frame."""
        self._abandoned = True
        self._drop_all()
        self._held = None
        self._kick()

    def _kick(self) -> None:
        """Have waiting work written, if there is a writer and none is at work: frames at
        the end of this loop turn (the flusher's), the close frame by a writer task."""
        if self._writing is not None or self._writer is None:
            return
        finished = self._finished
        if finished is None or finished.done():
            return
        if self._abandoned:
            finished.set_result(None)
        elif self._flusher is not None and self._close is None:
            if self._frames and not self._queued:
                self._queued = True
                self._flusher.add(self)
        elif self._frames or self._close is not None:
            self._start_writer(self._writer, finished)

    def _start_writer(self, writer: FrameWriter, finished: asyncio.Future[None]) -> None:
        self._writing = asyncio.get_running_loop().create_task(
            self._write(writer, finished), name="gateway-writer"
        )

    def flush(self) -> None:
        """Write what waits in place while the socket takes it (the flusher calls this at
        the end of the loop turn the frames came in); a writer task takes over the rest,
        and the close frame."""
        self._queued = False
        writer, finished = self._writer, self._finished
        if self._writing is not None or writer is None or finished is None or finished.done():
            return
        frames = self._frames
        try:
            while frames and not self._abandoned and self._close is None:
                batch = _take_batch(frames)
                if not writer.write_now(batch):
                    frames.extendleft(reversed(batch))  # as they were: the task writes them
                    break
                self._written(batch)
        except Exception as exc:  # the socket went away under us: nothing left to write to
            self._fail(exc, finished)
            return
        if self._abandoned:
            _resolve(finished)
        elif frames or self._close is not None:
            self._start_writer(writer, finished)

    async def _write(self, writer: FrameWriter, finished: asyncio.Future[None]) -> None:
        """Write until the queue is empty (then end: the next offer starts another), or the
        close frame is out, or the socket failed."""
        frames = self._frames
        try:
            while frames and not self._abandoned:
                batch = _take_batch(frames)
                await writer.send_frames(batch)
                self._written(batch)
            if self._abandoned:
                _resolve(finished)
            elif self._close is not None:
                await writer.close(*self._close)
                _resolve(finished)
        except asyncio.CancelledError:
            _resolve(finished)
            raise
        except Exception as exc:  # the socket went away under us: nothing left to write to
            self._fail(exc, finished)
        finally:
            self._writing = None

    def _written(self, batch: list[str]) -> None:
        """``batch``, the next frames in the queue's order, is out: count it, and report
        its stamped frames."""
        before = self._taken
        self._taken += len(batch)
        self.sent += len(batch)
        stamps = self._stamps
        if stamps and stamps[0][0] <= self._taken:
            self._report(stamps, before)

    def _fail(self, error: Exception, finished: asyncio.Future[None]) -> None:
        log.debug("writer stopped", extra={"error": type(error).__name__})
        self._abandoned = True
        self._drop_all()
        _resolve(finished)

    def cancel(self) -> None:
        """Stop writing at once (the connection is being torn down)."""
        self._abandoned = True
        if self._writing is not None:
            self._writing.cancel()
        elif self._finished is not None:
            _resolve(self._finished)

    @property
    def writing(self) -> asyncio.Task[None] | None:
        """The writer task while one runs (for the connection's teardown to await)."""
        return self._writing

    def _report(self, stamps: deque[tuple[int, float]], before: int) -> None:
        """Report the stamped frames of the batch just written (numbered after ``before``),
        and forget any older stamp, a frame dropped unwritten: never left behind to skew
        the next."""
        taken, now = self._taken, time.time()
        while stamps and stamps[0][0] <= taken:
            number, committed_at = stamps.popleft()
            if number > before and self._on_written is not None:
                self._on_written(max(0.0, now - committed_at))


def _take_batch(frames: deque[str]) -> list[str]:
    """The frames at the head of the queue that go out in one write: all that wait, up to
    :data:`BATCH_CHARS` (at least one, however large)."""
    first = frames.popleft()
    batch, size = [first], len(first)
    while frames and size < BATCH_CHARS:
        frame = frames.popleft()
        batch.append(frame)
        size += len(frame)
    return batch


def _resolve(finished: asyncio.Future[None]) -> None:
    if not finished.done():
        finished.set_result(None)
