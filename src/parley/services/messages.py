"""Messages: edit, delete (tombstones), history pages and the ``changes`` feed; sending
(group commit, idempotency) lives in ``message_sending``.

Every later change to a message takes a new seq of its conversation as ``version_seq``
(DESIGN §2 "Persistence"), so ``changes?after_seq=N`` is one indexed query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import (
    EncryptionRequired,
    Forbidden,
    MessageDeleted,
    NotEncrypted,
    NotFound,
    ValidationFailed,
)
from parley.services import attachment_records
from parley.services.access import MESSAGE_NOT_FOUND, bump_version, membership, visible_message
from parley.services.attachment_urls import AttachmentUrls
from parley.services.e2ee_messages import check_encrypted
from parley.services.markup import check_content, mentioned_usernames
from parley.services.message_batch import mention_ids, resolve_mentions
from parley.services.message_records import IN_CONVERSATION, Message, load_message, load_messages
from parley.services.message_sending import MessageSender, changed_event
from parley.store.tables.conversations import conversations
from parley.store.tables.messages import messages, reactions
from parley.wire.events import EventType

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_CHANGES_PAGE = 500


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of messages in seq order; around a message, also which sides have more."""

    messages: list[Message]
    has_more: bool
    has_more_before: bool | None = None  # these three: only for a page around a message
    has_more_after: bool | None = None
    target_id: str | None = None

    def to_public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [m.to_public() for m in self.messages],
            "has_more": self.has_more,
        }
        if self.target_id is not None:
            body["has_more_before"] = self.has_more_before
            body["has_more_after"] = self.has_more_after
            body["target_id"] = self.target_id
        return body


@dataclass(frozen=True, slots=True)
class ChangesPage:
    """A page of the resume feed (``changes``)."""

    messages: list[Message]
    last_seq: int
    has_more: bool
    next_after_seq: int
    # Retention (DESIGN §6.4): every message at or below this seq was deleted; the client
    # drops what it holds there.
    expired_through_seq: int = 0

    def to_public(self) -> dict[str, Any]:
        return {
            "messages": [m.to_public() for m in self.messages],
            "last_seq": self.last_seq,
            "has_more": self.has_more,
            "next_after_seq": self.next_after_seq,
            "expired_through_seq": self.expired_through_seq,
        }


class Messages(MessageSender):
    """Sending (``send``, ``enqueue``: group-committed and idempotent by client_msg_id, see
    ``message_sending``) and every later change and read of messages."""

    # --- changing

    async def edit(
        self,
        user_id: str,
        message_id: str,
        content: str,
        *,
        ciphertext: str | None = None,
        e2ee: object = None,
    ) -> Message:
        """New text, or new ciphertext for an encrypted message (DESIGN §6.1)."""
        sealed = check_encrypted(
            content, ciphertext, e2ee, max_chars=self._limits.max_ciphertext_chars
        )
        text = "" if sealed else check_content(content, max_chars=self._limits.max_chars)
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await visible_message(conn, user_id, message_id, urls=self._urls)
            if message.sender_id != user_id or message.kind != "text":
                raise Forbidden("Only the sender can edit a message")
            if message.deleted:
                raise MessageDeleted()
            encrypted = (
                await conn.execute(
                    select(conversations.c.encrypted).where(
                        conversations.c.id == message.conversation_id
                    )
                )
            ).scalar_one()
            if sealed is not None:
                if not encrypted:
                    raise NotEncrypted("This conversation is not encrypted: edit the content")
                # A message from before the switch may be replaced by ciphertext too.
                await bump_version(
                    conn,
                    message.conversation_id,
                    message_id,
                    now,
                    content="",
                    mentions="[]",
                    ciphertext=sealed.ciphertext,
                    e2ee=sealed.e2ee,
                    edited_at=now,
                )
            elif encrypted:
                raise EncryptionRequired("This conversation is encrypted: edit with ciphertext")
            else:
                await self._edit_text(conn, message, text, now)
            updated = await load_message(conn, message_id, urls=self._urls)
        assert updated is not None
        await self._events.emit([changed_event(EventType.MESSAGE_UPDATED, updated)])
        return updated

    @staticmethod
    async def _edit_text(conn: AsyncConnection, message: Message, text: str, now: datetime) -> None:
        names = frozenset(mentioned_usernames(text))
        resolved = await conn.run_sync(resolve_mentions, message.conversation_id, names)
        mentions = mention_ids(names, resolved)
        await bump_version(
            conn,
            message.conversation_id,
            message.id,
            now,
            content=text,
            mentions=json.dumps(list(mentions)),
            edited_at=now,
        )

    async def delete(self, user_id: str, message_id: str) -> Message:
        """Tombstone: content, mentions and reactions erased; the seq stays."""
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await visible_message(conn, user_id, message_id, urls=self._urls)
            if message.deleted:
                return message
            if message.kind != "text":
                raise Forbidden("System messages cannot be deleted")
            if message.sender_id != user_id:
                member = await membership(conn, message.conversation_id, user_id)
                if member.is_direct or not member.is_admin:
                    raise Forbidden("Only the sender or a conversation admin can delete it")
            tombstone = await _erase(conn, message, now, self._urls)
        await self._events.emit([changed_event(EventType.MESSAGE_DELETED, tombstone)])
        return tombstone

    async def delete_for_moderation(self, message_id: str) -> Message:
        """Tombstone a message as a site moderator resolving a report (DESIGN §6.3): no
        membership needed. The caller checks the site role."""
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await load_message(conn, message_id, urls=self._urls)
            if message is None:
                raise NotFound(MESSAGE_NOT_FOUND)
            if message.deleted or message.kind != "text":
                return message
            tombstone = await _erase(conn, message, now, self._urls)
        await self._events.emit([changed_event(EventType.MESSAGE_DELETED, tombstone)])
        return tombstone

    async def get(self, user_id: str, message_id: str) -> Message:
        async with self._db.read() as conn:
            return await visible_message(conn, user_id, message_id, urls=self._urls)

    # --- reading

    async def history(
        self,
        user_id: str,
        conversation_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        around_id: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> HistoryPage:
        """A page of messages in seq order. Default: the latest ``limit``."""
        if sum(x is not None for x in (before_seq, after_seq, around_id)) > 1:
            raise ValidationFailed.field(
                "before_seq", "give at most one of before_seq, after_seq, around_id"
            )
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_PAGE}")
        # The conversation's timeline: thread replies stay in their thread unless also
        # sent to the conversation (the changes feed carries them all).
        base = select(messages).where(
            messages.c.conversation_id == conversation_id, IN_CONVERSATION
        )
        async with self._db.read_replica() as conn:
            await membership(conn, conversation_id, user_id)
            if around_id is not None:
                return await self._around(conn, base, conversation_id, around_id, limit)
            if after_seq is not None:
                page = await load_messages(
                    conn,
                    base.where(messages.c.seq > after_seq).order_by(messages.c.seq).limit(limit + 1),
                    urls=self._urls,
                )
                return HistoryPage(page[:limit], has_more=len(page) > limit)
            query = base if before_seq is None else base.where(messages.c.seq < before_seq)
            page = await load_messages(
                conn, query.order_by(messages.c.seq.desc()).limit(limit + 1), urls=self._urls
            )
            has_more = len(page) > limit
            return HistoryPage(list(reversed(page[:limit])), has_more=has_more)

    async def _around(
        self, conn: AsyncConnection, base: Any, conversation_id: str, around_id: str, limit: int
    ) -> HistoryPage:
        target = (
            await conn.execute(
                select(messages.c.seq).where(
                    messages.c.id == around_id, messages.c.conversation_id == conversation_id
                )
            )
        ).first()
        if target is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        half = max((limit - 1) // 2, 0)
        older = await load_messages(
            conn,
            base.where(messages.c.seq < target.seq).order_by(messages.c.seq.desc()).limit(half + 1),
            urls=self._urls,
        )
        newer = await load_messages(
            conn,
            base.where(messages.c.seq >= target.seq)
            .order_by(messages.c.seq)
            .limit(limit - half + 1),
            urls=self._urls,
        )
        page = list(reversed(older[:half])) + newer[: limit - half]
        return HistoryPage(
            page,
            has_more=len(older) > half,
            has_more_before=len(older) > half,
            has_more_after=len(newer) > limit - half,
            target_id=around_id,
        )

    async def changes(
        self, user_id: str, conversation_id: str, *, after_seq: int, limit: int = MAX_CHANGES_PAGE
    ) -> ChangesPage:
        """Everything created or changed after ``after_seq`` (tombstones included), in
        version order — the resume feed. When ``has_more`` is false the client is current up
        to ``last_seq``; otherwise it asks again from ``next_after_seq``."""
        if after_seq < 0:
            raise ValidationFailed.field("after_seq", "must not be negative")
        if not 1 <= limit <= MAX_CHANGES_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_CHANGES_PAGE}")
        async with self._db.read_replica() as conn:
            await membership(conn, conversation_id, user_id)
            # last_seq first: every version up to it is committed (seq order is commit
            # order), so reading the rows after it can only add, never miss.
            position = (
                await conn.execute(
                    select(conversations.c.last_seq, conversations.c.expired_through_seq).where(
                        conversations.c.id == conversation_id
                    )
                )
            ).one()
            last_seq = position.last_seq
            page = await load_messages(
                conn,
                select(messages)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.version_seq > after_seq,
                )
                .order_by(messages.c.version_seq)
                .limit(limit + 1),
                urls=self._urls,
            )
        has_more = len(page) > limit
        page = page[:limit]
        current = max(last_seq, page[-1].version_seq if page else 0)
        return ChangesPage(
            page,
            last_seq=current,
            has_more=has_more,
            next_after_seq=page[-1].version_seq if has_more else current,
            expired_through_seq=position.expired_through_seq,
        )


async def _erase(
    conn: AsyncConnection, message: Message, now: datetime, urls: AttachmentUrls | None
) -> Message:
    """The tombstone: content, mentions, reactions and attachments go; the seq stays."""
    await conn.execute(reactions.delete().where(reactions.c.message_id == message.id))
    await attachment_records.release_for_message(conn, message.id, now)
    await bump_version(
        conn,
        message.conversation_id,
        message.id,
        now,
        content="",
        mentions="[]",
        deleted_at=now,
        pinned_at=None,  # a tombstone is no longer pinned
        pinned_by=None,
        ciphertext=None,
        e2ee=None,
    )
    tombstone = await load_message(conn, message.id, urls=urls)
    assert tombstone is not None
    return tombstone
