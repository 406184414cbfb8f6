"""Helpers for the data lifecycle tests: event capture and back-dating messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from parley.container import Container
from parley.services.events import Event
from parley.store.tables import messages


class EventLog:
    """Every event the container emits, for assertions."""

    def __init__(self, container: Container) -> None:
        self.events: list[Event] = []
        container.events.add_listener(self._listen)

    async def _listen(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

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
