"""Helpers for the data lifecycle tests: back-dating messages, and waiting for an export."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from parley.container import Container
from parley.store.tables.messages import messages
from tests.support.container_events import EventLog


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
