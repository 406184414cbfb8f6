"""The domain events a test's container emits, as the gateway and the notifier receive them
(through the shipped in-process broker): kept for assertions, waited on with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from parley.container import Container
from parley.services.events import Event

WAIT = 20.0  # seconds one expected event may take before the test fails


class EventLog:
    """Every event the container emits from now on; ``wait_for`` waits with a timeout."""

    def __init__(self, container: Container) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        container.events.add_listener(self._listen)

    async def _listen(self, events: Sequence[Event]) -> None:
        async with self._changed:
            self.events.extend(events)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = WAIT) -> Event:
        async def found() -> Event:
            async with self._changed:
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(found(), timeout)

    def of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]
