"""Receipt throttling: in a busy conversation every member moves their watermarks with every
message, so receipts would multiply the fan-out by the group size. Per (conversation, user,
kind) the first receipt goes out at once; any more within the window fold into one carrying
the newest watermark, sent when the window ends.

Folding is safe because a receipt's ``seq`` is a watermark: the newest one says everything
the skipped ones said. A quiet conversation (a DM read now and then) never waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from parley.services.events import Event
from parley.wire.events import EVENTS, Seq

# Receipts carry a watermark: the newest says everything the ones before it said.
RECEIPT_TYPES = frozenset(event for event, spec in EVENTS.items() if spec.seq is Seq.WATERMARK)

Key = tuple[str, str, str]  # (conversation_id, user_id, event type)


@dataclass
class _Window:
    timer: asyncio.TimerHandle
    pending: Event | None = None


class ReceiptThrottle:
    def __init__(
        self, window_seconds: float, publish: Callable[[Event], Coroutine[Any, Any, None]]
    ) -> None:
        self._window = window_seconds
        self._publish = publish
        self._windows: dict[Key, _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, event: Event) -> None:
        key = (event.conversation_id or "", str(event.data.get("user_id", "")), event.type)
        window = self._windows.get(key)
        if window is None:
            self._open(key)
            await self._publish(event)
            return
        if window.pending is None or _seq(event) >= _seq(window.pending):
            window.pending = event

    def _open(self, key: Key) -> None:
        timer = asyncio.get_running_loop().call_later(self._window, self._expire, key)
        self._windows[key] = _Window(timer)

    def _expire(self, key: Key) -> None:
        window = self._windows.pop(key, None)
        if window is None or window.pending is None:
            return
        # Something was folded: send it, and keep throttling while the traffic lasts.
        self._open(key)
        task = asyncio.create_task(self._publish(window.pending), name="receipt-flush")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Send every folded receipt now and forget all windows (shutdown)."""
        windows, self._windows = self._windows, {}
        for window in windows.values():
            window.timer.cancel()
            if window.pending is not None:
                await self._publish(window.pending)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _seq(event: Event) -> int:
    seq = event.data.get("seq", 0)
    return seq if isinstance(seq, int) else 0
