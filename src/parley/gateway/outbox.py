"""One connection's outgoing frames: a bounded queue and the writer that drains it.

Frames are already-encoded strings (events are shared between recipients, not copied).
The queue never grows past ``limit`` frames: when a frame does not fit, :meth:`Outbox.offer`
says so and the connection closes with 4009 — a client too slow to drain its socket is
disconnected and resumes through ``changes`` rather than making the server buffer for it
(DESIGN §2 "Backpressure"). Below the queue, the ASGI server buffers at most one
transport high-water mark (64 KiB in uvicorn) before ``send`` waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class FrameWriter(Protocol):
    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class Outbox:
    def __init__(self, limit: int, on_written: Callable[[float], None] | None = None) -> None:
        self._limit = limit
        # Delivery timing: (number of the frame in the queue's life, commit time) of stamped
        # frames; when the writer has written that frame it reports the seconds since.
        self._on_written = on_written
        self._stamps: deque[tuple[int, float]] = deque()
        self._appended = 0  # frames ever put in _frames
        self._taken = 0  # frames ever taken out of _frames (written or dropped)
        self._frames: deque[str] = deque()
        # While a connection identifies, events are held back so that ``ready`` goes first.
        self._held: list[str] | None = None
        self._wakeup = asyncio.Event()
        self._close: tuple[int, str] | None = None
        self._abandoned = False
        self.sent = 0

    @property
    def depth(self) -> int:
        return len(self._frames) + (len(self._held) if self._held is not None else 0)

    @property
    def closing(self) -> bool:
        return self._close is not None or self._abandoned

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
        if len(frames) == 1:  # the writer only ever waits on an empty queue
            self._wakeup.set()
        return True

    def stamp(self, committed_at: float) -> None:
        """Time the frame offered last (not while held: ready's hold is not delivery)."""
        if self._on_written is None or self._held is not None or self.closing:
            return
        self._stamps.append((self._appended, committed_at))

    def _drop_all(self) -> None:
        self._taken += len(self._frames)
        self._frames.clear()
        self._stamps.clear()

    def hold(self) -> None:
        """Keep offered frames back until :meth:`release`."""
        if self._held is None:
            self._held = []

    def release(self, first: str) -> None:
        """Send ``first``, then everything held, then whatever comes next."""
        held, self._held = self._held or [], None
        if self.closing:
            return
        self._frames.append(first)
        self._frames.extend(held)
        self._appended += 1 + len(held)
        self._wakeup.set()

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
        self._wakeup.set()

    def abandon(self) -> None:
        """The peer is gone: drop everything and stop the writer without a close frame."""
        self._abandoned = True
        self._drop_all()
        self._held = None
        self._wakeup.set()

    async def drain(self, writer: FrameWriter) -> None:
        """The writer task: send frames in order until closed. Returns when the close frame
        is sent, the outbox is abandoned, or the socket fails."""
        try:
            while True:
                while self._frames and not self._abandoned:
                    self._taken += 1
                    await writer.send_text(self._frames.popleft())
                    self.sent += 1
                    stamps = self._stamps
                    if stamps and stamps[0][0] <= self._taken:
                        self._report(stamps)
                if self._abandoned:
                    return
                if self._close is not None:
                    await writer.close(*self._close)
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
        except Exception as exc:  # the socket went away under us: nothing left to write to
            log.debug("writer stopped", extra={"error": type(exc).__name__})
            self._abandoned = True
            self._drop_all()

    def _report(self, stamps: deque[tuple[int, float]]) -> None:
        """Report the stamped frames written by now (the one just written, and any whose
        write was skipped by a drop: never left behind to skew the next)."""
        taken, now = self._taken, time.time()
        while stamps and stamps[0][0] <= taken:
            number, committed_at = stamps.popleft()
            if number == taken and self._on_written is not None:
                self._on_written(max(0.0, now - committed_at))
