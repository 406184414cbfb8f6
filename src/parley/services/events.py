"""Domain events: what services emit after a commit, for the gateway to deliver.

An event names a ``conversation_id`` (delivered to the conversation's members) and/or
explicit ``user_ids`` (delivered to those users' sessions, for example a member just
removed, or the other side of a contact request). ``type`` and ``data`` are one of
``parley.wire.events``' event types and its payload.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley.wire.events import EventType
from parley.wire.json_text import JsonText

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    data: dict[str, Any]
    conversation_id: str | None = None
    user_ids: tuple[str, ...] = field(default=())
    # ``data`` as JSON text, when its producer wrote it already (``wire.json_text.
    # object_text``: the very text ``dumps(data)`` writes); the gateway's frame splices it.
    data_text: JsonText | None = None


class EventSink(Protocol):
    async def emit(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` (already committed). Must not raise: a lost event is closed by
        the client's seq gap check, a failed request after commit is not."""
        ...


Listener = Callable[[Sequence[Event]], Awaitable[None]]


class EventBroker:
    """The in-process ``EventSink``: hands events to every registered listener in order."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    async def emit(self, events: Sequence[Event]) -> None:
        if not events:
            return
        for listener in list(self._listeners):
            try:
                await listener(events)
            except Exception:  # a broken listener must never fail a committed change
                log.exception("event listener failed", extra={"events": len(events)})
