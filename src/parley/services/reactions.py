"""Reactions: one per user per message per emoji. Each change bumps the message's
``version_seq`` so it travels through ``changes`` like an edit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from parley.clock import utcnow
from parley.errors import Forbidden, MessageDeleted
from parley.services.access import bump_version, visible_message
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import Event, EventSink
from parley.services.markup import check_emoji
from parley.services.message_records import Message, load_message
from parley.store.db import Database
from parley.store.tables.messages import reactions
from parley.wire.events import EventType

MAX_DISTINCT_REACTIONS = 50


class Reactions:
    def __init__(self, db: Database, events: EventSink, urls: AttachmentUrls | None) -> None:
        self._db = db
        self._events = events
        self._urls = urls  # signs the attachment URLs of the messages it returns

    async def add(self, user_id: str, message_id: str, emoji: str) -> Message:
        return await self._change(user_id, message_id, check_emoji(emoji), add=True)

    async def remove(self, user_id: str, message_id: str, emoji: str) -> Message:
        return await self._change(user_id, message_id, check_emoji(emoji), add=False)

    async def _change(self, user_id: str, message_id: str, emoji: str, *, add: bool) -> Message:
        now = utcnow()
        changed = False
        async with self._db.transaction() as conn:
            message = await visible_message(conn, user_id, message_id, urls=self._urls)
            if message.deleted:
                raise MessageDeleted()
            if message.kind != "text":
                raise Forbidden("System messages take no reactions")
            mine = (
                await conn.execute(
                    select(reactions.c.emoji).where(
                        reactions.c.message_id == message_id,
                        reactions.c.user_id == user_id,
                        reactions.c.emoji == emoji,
                    )
                )
            ).first()
            if add and mine is None:
                if len(message.reactions) >= MAX_DISTINCT_REACTIONS and emoji not in {
                    r.emoji for r in message.reactions
                }:
                    raise Forbidden("This message has too many different reactions")
                await conn.execute(
                    insert(reactions).values(
                        message_id=message_id, user_id=user_id, emoji=emoji, created_at=now
                    )
                )
                changed = True
            elif not add and mine is not None:
                await conn.execute(
                    delete(reactions).where(
                        reactions.c.message_id == message_id,
                        reactions.c.user_id == user_id,
                        reactions.c.emoji == emoji,
                    )
                )
                changed = True
            if changed:
                await bump_version(conn, message.conversation_id, message_id, now)
                message = await load_message(conn, message_id, urls=self._urls) or message
        if changed:
            data: dict[str, Any] = {
                "conversation_id": message.conversation_id,
                "seq": message.version_seq,
                "message_id": message_id,
                "user_id": user_id,
                "emoji": emoji,
                "reactions": [r.to_public() for r in message.reactions],
            }
            kind = EventType.REACTION_ADDED if add else EventType.REACTION_REMOVED
            await self._events.emit([Event(kind, data, conversation_id=message.conversation_id)])
        return message
