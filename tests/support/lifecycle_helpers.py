"""Helpers for the data lifecycle tests: event capture and back-dating messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from parley.container import Container
from parley.services.events import Event
from parley.store.tables.messages import messages

WAIT = 20.0  # seconds one expected event may take before the test fails


class EventLog:
    """Every event the container emits, for assertions; ``wait_for`` waits with a timeout."""

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


async def backdate(container: Container, message_ids: Sequence[str], when: datetime) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(
            update(messages).where(messages.c.id.in_(list(message_ids))).values(created_at=when)
        )


async def stored_message_ids(container: Container, conversation_id: str) -> list[str]:
    async with container.db.read() as conn:
        rows = await conn.execute(
            select(messages.c.id)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.seq)
        )
        return [row.id for row in rows]


async def backdate_through(
    container: Container, conversation_id: str, seq: int, when: datetime
) -> None:
    """Make every message of the conversation up to ``seq`` (system ones included) old."""
    async with container.db.transaction() as conn:
        await conn.execute(
            update(messages)
            .where(messages.c.conversation_id == conversation_id, messages.c.seq <= seq)
            .values(created_at=when)
        )


async def export_ready(log: EventLog, export_id: str) -> dict[str, Any]:
    """Wait for the export's ``export.updated`` event saying it is ready (or failed)."""
    event = await log.wait_for(
        lambda e: e.type == "export.updated"
        and e.data["export"]["id"] == export_id
        and e.data["export"]["status"] in ("ready", "failed")
    )
    export: dict[str, Any] = event.data["export"]
    return export
