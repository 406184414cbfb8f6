"""What every part of the ``Conversations`` service shares: its dependencies, one
conversation as its member sees it, adding member rows, and announcing a change.

Every membership or settings change is also a system message in the conversation, so it
takes a seq, appears in history and is resumed through ``changes`` like any message;
``_emit_with_system_message`` sends that message with the typed change event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.errors import NotFound
from parley.services.access import CONVERSATION_NOT_FOUND
from parley.services.attachment_urls import AttachmentUrls
from parley.services.conversation_rules import ConversationLimits
from parley.services.conversation_views import MemberView, member_views
from parley.services.events import Event, EventSink
from parley.services.message_records import load_message
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.conversations import members
from parley.wire.events import EventType


async def existing_users(conn: AsyncConnection, user_ids: set[str]) -> set[str]:
    """The ids among ``user_ids`` of accounts that exist and are not deactivated."""
    if not user_ids:
        return set()
    rows = await conn.execute(
        select(users.c.id).where(users.c.id.in_(user_ids), users.c.deactivated_at.is_(None))
    )
    return {row.id for row in rows}


class ConversationBase:
    """The state of ``parley.services.conversations.Conversations``; each concept of it is
    a subclass of this one (reading, encryption, creating, settings, membership)."""

    def __init__(
        self,
        db: Database,
        events: EventSink,
        limits: ConversationLimits,
        urls: AttachmentUrls | None,
    ) -> None:
        self._db = db
        self._events = events
        self._limits = limits
        self._urls = urls  # signs the attachment URLs of views' last messages
        # Called after a conversation is deleted, with its id and picture key (the picture's
        # blobs live in the media store, which this service does not know: services.avatars).
        self._on_deleted: list[Callable[[str, str | None], Awaitable[None]]] = []

    def on_deleted(self, hook: Callable[[str, str | None], Awaitable[None]]) -> None:
        self._on_deleted.append(hook)

    async def get(self, user_id: str, conversation_id: str) -> MemberView:
        async with self._db.read() as conn:
            found = await member_views(conn, user_id, [conversation_id], urls=self._urls)
        if not found:
            raise NotFound(CONVERSATION_NOT_FOUND)
        return found[0]

    async def _insert_members(
        self, conn: AsyncConnection, conversation_id: str, roles: dict[str, str], now: datetime
    ) -> None:
        await conn.execute(
            insert(members),
            [
                {
                    "conversation_id": conversation_id,
                    "user_id": uid,
                    "role": role,
                    "joined_at": now,
                    "last_read_seq": 0,
                    "last_delivered_seq": 0,
                }
                for uid, role in roles.items()
            ],
        )

    async def _emit_with_system_message(
        self,
        conversation_id: str,
        message_id: str,
        event_type: EventType,
        data: dict[str, Any],
        *,
        extra_users: list[str] | None = None,
    ) -> None:
        """Emit the system message (which carries the seq) and the typed change event."""
        async with self._db.read() as conn:
            message = await load_message(conn, message_id, urls=self._urls)
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(members)
                    .where(members.c.conversation_id == conversation_id)
                )
            ).scalar_one()
        if message is None:
            return
        payload = message.to_public()
        users_ = tuple(extra_users or ())
        await self._events.emit(
            [
                Event(
                    EventType.MESSAGE_CREATED,
                    {"conversation_id": conversation_id, "seq": message.seq, "message": payload},
                    conversation_id=conversation_id,
                    user_ids=users_,
                ),
                Event(
                    event_type,
                    {"conversation_id": conversation_id, "seq": message.seq, "member_count": count}
                    | data,
                    conversation_id=conversation_id,
                    user_ids=users_,
                ),
            ]
        )
