"""Pinned messages (DESIGN §6.5): pin, unpin, list.

A pin is state of the message (``pinned_at``, ``pinned_by``): pinning or unpinning gives
the message a new ``version_seq`` (``message.updated``, resumed through ``changes`` like an
edit) and adds a system line to the conversation ("Ann pinned a message"). Any member may
pin and unpin; a conversation holds at most ``MAX_PINS`` pins. Deleting a message unpins
it (``Messages.delete``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from parley.clock import utcnow
from parley.errors import MessageDeleted, PinLimit, ValidationFailed
from parley.services.access import (
    bump_version,
    insert_system_message,
    lock_conversation,
    membership,
    visible_message,
)
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import EventSink
from parley.services.message_records import Message, load_message, load_messages
from parley.services.message_sending import changed_event, created_event
from parley.store.db import Database
from parley.store.tables.messages import messages
from parley.wire.events import EventType

# Slack's limit per channel: enough for reference material, few enough to scan.
MAX_PINS = 100


class Pins:
    def __init__(self, db: Database, events: EventSink, urls: AttachmentUrls | None) -> None:
        self._db = db
        self._events = events
        self._urls = urls  # signs the attachment URLs of the messages it returns

    async def pin(self, user_id: str, message_id: str) -> Message:
        """Pin (idempotent: pinning a pinned message changes nothing)."""
        return await self._set(user_id, message_id, pinned=True)

    async def unpin(self, user_id: str, message_id: str) -> Message:
        return await self._set(user_id, message_id, pinned=False)

    async def list(self, user_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's pinned messages, the latest pin first."""
        async with self._db.read() as conn:
            await membership(conn, conversation_id, user_id)
            pinned = await load_messages(
                conn,
                select(messages)
                .where(messages.c.conversation_id == conversation_id, messages.c.pinned_at.is_not(None))
                .order_by(messages.c.pinned_at.desc(), messages.c.id.desc())
                .limit(MAX_PINS),
                urls=self._urls,
            )
        return [m.to_public() for m in pinned]

    async def _set(self, user_id: str, message_id: str, *, pinned: bool) -> Message:
        now = utcnow()
        async with self._db.transaction() as conn:
            seen = await visible_message(conn, user_id, message_id, urls=self._urls)
            # Under the conversation's lock, read again: concurrent pins of one message
            # change it once, and concurrent pins cannot all see room under the limit.
            await lock_conversation(conn, seen.conversation_id)
            message = await load_message(conn, message_id, urls=self._urls) or seen
            if message.kind != "text":
                raise ValidationFailed.field("message_id", "system messages cannot be pinned")
            if (message.pinned_at is not None) == pinned:
                return message  # nothing to change, nothing to announce
            if pinned and message.deleted:
                raise MessageDeleted()
            if pinned:
                count = (
                    await conn.execute(
                        select(func.count())
                        .select_from(messages)
                        .where(
                            messages.c.conversation_id == message.conversation_id,
                            messages.c.pinned_at.is_not(None),
                        )
                    )
                ).scalar_one()
                if count >= MAX_PINS:
                    raise PinLimit()
            await bump_version(
                conn,
                message.conversation_id,
                message_id,
                now,
                pinned_at=now if pinned else None,
                pinned_by=user_id if pinned else None,
            )
            line_id = await insert_system_message(
                conn,
                message.conversation_id,
                {
                    "type": "message.pinned" if pinned else "message.unpinned",
                    "actor_id": user_id,
                    "message_id": message_id,
                },
                now,
            )
            updated = await load_message(conn, message_id, urls=self._urls)
            line = await load_message(conn, line_id, urls=self._urls)
        assert updated is not None and line is not None
        # In seq order: the message's new version, then the system line after it.
        await self._events.emit([changed_event(EventType.MESSAGE_UPDATED, updated), created_event(line)])
        return updated
