"""Typing indicators: ephemeral, throttled, and self-expiring (never stored, never resumed).

A client sends ``typing.start`` while its user types (every few seconds) and ``typing.stop``
when they stop. The conversation sees ``typing.started`` at most once per throttle window
per user, and ``typing.stopped`` on stop or when no refresh came for ``expire_seconds`` —
so a client that vanishes mid-sentence never leaves "is typing…" on screen for long.
Sending a message ends typing silently: clients drop the indicator on ``message.created``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from parley.wire.events import EventType

# Clients refresh about every 3 s while typing; two missed refreshes mean they stopped.
TYPING_EXPIRE_SECONDS = 6.0
# A refresh within this long of the last broadcast only extends the expiry: typing is the
# noisiest event there is and the indicator looks the same either way.
TYPING_THROTTLE_SECONDS = 3.0

Key = tuple[str, str]  # (conversation_id, user_id)


class Publisher(Protocol):
    async def publish(
        self,
        event_type: EventType,
        data: dict[str, Any],
        *,
        conversation_id: str | None = None,
        user_ids: Sequence[str] = (),
    ) -> None: ...


@dataclass
class _Typing:
    announced_at: float
    timer: asyncio.TimerHandle


class TypingTracker:
    def __init__(
        self,
        publisher: Publisher,
        *,
        expire_seconds: float = TYPING_EXPIRE_SECONDS,
        throttle_seconds: float = TYPING_THROTTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._expire_seconds = expire_seconds
        self._throttle_seconds = throttle_seconds
        self._clock = clock
        self._active: dict[Key, _Typing] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def is_typing(self, user_id: str, conversation_id: str) -> bool:
        return (conversation_id, user_id) in self._active

    async def start(self, user_id: str, conversation_id: str) -> None:
        key = (conversation_id, user_id)
        now = self._clock()
        entry = self._active.get(key)
        timer = asyncio.get_running_loop().call_later(self._expire_seconds, self._expire, key)
        if entry is not None:
            entry.timer.cancel()
            entry.timer = timer
            if now - entry.announced_at < self._throttle_seconds:
                return
            entry.announced_at = now
        else:
            self._active[key] = _Typing(now, timer)
        await self._announce(EventType.TYPING_STARTED, key)

    async def stop(self, user_id: str, conversation_id: str) -> None:
        entry = self._active.pop((conversation_id, user_id), None)
        if entry is not None:
            entry.timer.cancel()
            await self._announce(EventType.TYPING_STOPPED, (conversation_id, user_id))

    def forget(self, user_id: str, conversation_id: str) -> None:
        """End typing without an event (the user just sent a message)."""
        entry = self._active.pop((conversation_id, user_id), None)
        if entry is not None:
            entry.timer.cancel()

    def _expire(self, key: Key) -> None:
        if self._active.pop(key, None) is None:
            return
        task = asyncio.create_task(self._announce(EventType.TYPING_STOPPED, key), name="typing-expiry")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, event_type: EventType, key: Key) -> None:
        conversation_id, user_id = key
        data: dict[str, Any] = {"conversation_id": conversation_id, "user_id": user_id}
        if event_type is EventType.TYPING_STARTED:
            data["expires_in_ms"] = int(self._expire_seconds * 1000)
        await self._publisher.publish(event_type, data, conversation_id=conversation_id)

    async def close(self) -> None:
        for entry in self._active.values():
            entry.timer.cancel()
        self._active.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
