"""Receipts: per-member watermarks (``last_delivered_seq``, ``last_read_seq``), not rows
per message. They only move forward; reading implies delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from parley.errors import ValidationFailed
from parley.services.access import membership, visible_message
from parley.services.accounts import User, fetch_users
from parley.services.conversation_views import unread_condition
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages
from parley.wire.events import EventType


@dataclass(frozen=True, slots=True)
class ReadState:
    """A member's watermarks in a conversation after marking, and what is left unread."""

    conversation_id: str
    last_read_seq: int
    last_delivered_seq: int
    unread_count: int

    def to_public(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "last_read_seq": self.last_read_seq,
            "last_delivered_seq": self.last_delivered_seq,
            "unread_count": self.unread_count,
        }


@dataclass(frozen=True, slots=True)
class MessageReceipts:
    """Who has a message delivered and read (its sender left out)."""

    message_id: str
    seq: int
    recipient_count: int
    delivered_count: int
    read_count: int
    delivered_to: list[User]
    read_by: list[User]

    def to_public(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "seq": self.seq,
            "recipient_count": self.recipient_count,
            "delivered_count": self.delivered_count,
            "read_count": self.read_count,
            "delivered_to": [user.to_public() for user in self.delivered_to],
            "read_by": [user.to_public() for user in self.read_by],
        }


class Receipts:
    def __init__(self, db: Database, events: EventSink) -> None:
        self._db = db
        self._events = events

    async def mark_read(self, user_id: str, conversation_id: str, seq: int) -> ReadState:
        return await self._mark(user_id, conversation_id, seq, read=True)

    async def mark_delivered(self, user_id: str, conversation_id: str, seq: int) -> ReadState:
        return await self._mark(user_id, conversation_id, seq, read=False)

    async def _mark(
        self, user_id: str, conversation_id: str, seq: int, *, read: bool
    ) -> ReadState:
        """Move the watermark to ``seq``. A seq behind the current mark is a no-op (another
        device got there first); a seq past the conversation's last is an error."""
        if seq < 0:
            raise ValidationFailed.field("seq", "must not be negative")
        async with self._db.transaction() as conn:
            member = await membership(conn, conversation_id, user_id)
            last_seq = (
                await conn.execute(
                    select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
                )
            ).scalar_one()
            if seq > last_seq:
                raise ValidationFailed.field(
                    "seq", f"is past the conversation's last seq ({last_seq})"
                )
            where = [members.c.conversation_id == conversation_id, members.c.user_id == user_id]
            moved_read = read and seq > member.last_read_seq
            moved_delivered = seq > member.last_delivered_seq
            if moved_read:
                await conn.execute(
                    update(members)
                    .where(*where, members.c.last_read_seq < seq)
                    .values(last_read_seq=seq)
                )
            if moved_delivered:
                await conn.execute(
                    update(members)
                    .where(*where, members.c.last_delivered_seq < seq)
                    .values(last_delivered_seq=seq)
                )
            state = (
                await conn.execute(
                    select(members.c.last_read_seq, members.c.last_delivered_seq).where(*where)
                )
            ).one()
            unread = (
                await conn.execute(
                    select(func.count())
                    .select_from(messages)
                    .join(members, members.c.conversation_id == messages.c.conversation_id)
                    .where(*where, messages.c.conversation_id == conversation_id, unread_condition(user_id))
                )
            ).scalar_one()
        events = []
        if moved_delivered:
            events.append(self._event(EventType.RECEIPT_DELIVERED, conversation_id, user_id, state.last_delivered_seq))
        if moved_read:
            events.append(self._event(EventType.RECEIPT_READ, conversation_id, user_id, state.last_read_seq))
        await self._events.emit(events)
        return ReadState(conversation_id, state.last_read_seq, state.last_delivered_seq, unread)

    @staticmethod
    def _event(kind: EventType, conversation_id: str, user_id: str, seq: int) -> Event:
        # ``seq`` here is the member's new watermark, not a new conversation seq.
        return Event(
            kind,
            {"conversation_id": conversation_id, "user_id": user_id, "seq": seq},
            conversation_id=conversation_id,
        )

    async def for_message(self, user_id: str, message_id: str) -> MessageReceipts:
        """Who has the message delivered and read (the sender excluded)."""
        async with self._db.read() as conn:
            row = await visible_message(conn, user_id, message_id, urls=None)
            others = list(
                await conn.execute(
                    select(members.c.user_id, members.c.last_read_seq, members.c.last_delivered_seq)
                    .where(members.c.conversation_id == row.conversation_id)
                    .where(members.c.user_id != (row.sender_id or ""))
                )
            )
            people = await fetch_users(conn, {m.user_id for m in others})
        read = [m.user_id for m in others if m.last_read_seq >= row.seq]
        delivered = [m.user_id for m in others if m.last_delivered_seq >= row.seq]
        return MessageReceipts(
            message_id,
            row.seq,
            recipient_count=len(others),
            delivered_count=len(delivered),
            read_count=len(read),
            delivered_to=[people[i] for i in delivered if i in people],
            read_by=[people[i] for i in read if i in people],
        )
