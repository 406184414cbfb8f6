"""Messages: edit, delete (tombstones), history pages and the ``changes`` feed; sending
(group commit, idempotency) lives in ``message_sending``.

Every later change to a message takes a new seq of its conversation as ``version_seq``
(DESIGN §2 "Persistence"), so ``changes?after_seq=N`` is one indexed query.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Forbidden, MessageDeleted, NotFound, ValidationFailed
from parley.observability.metrics import Metrics
from parley.security.ratelimit import RateLimiter
from parley.services import attachment_records
from parley.services.access import MESSAGE_NOT_FOUND, bump_version, membership, visible_message
from parley.services.events import EventSink
from parley.services.markup import check_content, mentioned_usernames
from parley.services.message_records import (
    IN_CONVERSATION,
    Message,
    load_message,
    load_messages,
)
from parley.services.message_sending import (
    MessageSender,
    changed_event,
    SendLimits,
    mention_ids,
    resolve_mentions,
)
from parley.store.db import Database
from parley.store.tables import conversations, messages, reactions

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_CHANGES_PAGE = 500


class Messages:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        limiter: RateLimiter,
        limits: SendLimits,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._events = events
        self._limits = limits
        self._sender = MessageSender(db, events, limiter, limits, metrics)
        # Group-committed and idempotent by client_msg_id: see ``message_sending``.
        self.send = self._sender.send
        self.enqueue_send = self._sender.enqueue
        self.enqueue_request = self._sender.enqueue_request  # forwards (services.forwarding)

    async def close(self) -> None:
        """Write queued sends (graceful shutdown)."""
        await self._sender.close()

    # --- changing

    async def edit(self, user_id: str, message_id: str, content: str) -> Message:
        text = check_content(content, max_chars=self._limits.max_chars)
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await visible_message(conn, user_id, message_id)
            if message.sender_id != user_id or message.kind != "text":
                raise Forbidden("Only the sender can edit a message")
            if message.deleted:
                raise MessageDeleted()
            names = frozenset(mentioned_usernames(text))
            resolved = await conn.run_sync(resolve_mentions, message.conversation_id, names)
            mentions = mention_ids(names, resolved)
            await bump_version(
                conn,
                message.conversation_id,
                message_id,
                now,
                content=text,
                mentions=json.dumps(list(mentions)),
                edited_at=now,
            )
            updated = await load_message(conn, message_id)
        assert updated is not None
        await self._events.emit([changed_event("message.updated", updated)])
        return updated

    async def delete(self, user_id: str, message_id: str) -> Message:
        """Tombstone: content, mentions and reactions erased; the seq stays."""
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await visible_message(conn, user_id, message_id)
            if message.deleted:
                return message
            if message.kind != "text":
                raise Forbidden("System messages cannot be deleted")
            if message.sender_id != user_id:
                member = await membership(conn, message.conversation_id, user_id)
                if member.is_direct or not member.is_admin:
                    raise Forbidden("Only the sender or a conversation admin can delete it")
            await conn.execute(reactions.delete().where(reactions.c.message_id == message_id))
            await attachment_records.release_for_message(conn, message_id, now)
            await bump_version(
                conn,
                message.conversation_id,
                message_id,
                now,
                content="",
                mentions="[]",
                deleted_at=now,
                pinned_at=None,  # a tombstone is no longer pinned
                pinned_by=None,
            )
            tombstone = await load_message(conn, message_id)
        assert tombstone is not None
        await self._events.emit([changed_event("message.deleted", tombstone)])
        return tombstone

    async def get(self, user_id: str, message_id: str) -> Message:
        async with self._db.read() as conn:
            return await visible_message(conn, user_id, message_id)

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
    ) -> dict[str, Any]:
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
        async with self._db.read() as conn:
            await membership(conn, conversation_id, user_id)
            if around_id is not None:
                return await self._around(conn, base, conversation_id, around_id, limit)
            if after_seq is not None:
                page = await load_messages(
                    conn,
                    base.where(messages.c.seq > after_seq).order_by(messages.c.seq).limit(limit + 1),
                )
                return {"messages": [m.to_public() for m in page[:limit]], "has_more": len(page) > limit}
            query = base if before_seq is None else base.where(messages.c.seq < before_seq)
            page = await load_messages(conn, query.order_by(messages.c.seq.desc()).limit(limit + 1))
            has_more = len(page) > limit
            page = list(reversed(page[:limit]))
            return {"messages": [m.to_public() for m in page], "has_more": has_more}

    async def _around(
        self, conn: AsyncConnection, base: Any, conversation_id: str, around_id: str, limit: int
    ) -> dict[str, Any]:
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
        )
        newer = await load_messages(
            conn,
            base.where(messages.c.seq >= target.seq)
            .order_by(messages.c.seq)
            .limit(limit - half + 1),
        )
        page = list(reversed(older[:half])) + newer[: limit - half]
        return {
            "messages": [m.to_public() for m in page],
            "has_more": len(older) > half,
            "has_more_before": len(older) > half,
            "has_more_after": len(newer) > limit - half,
            "target_id": around_id,
        }

    async def changes(
        self, user_id: str, conversation_id: str, *, after_seq: int, limit: int = MAX_CHANGES_PAGE
    ) -> dict[str, Any]:
        """Everything created or changed after ``after_seq`` (tombstones included), in
        version order — the resume feed. When ``has_more`` is false the client is current up
        to ``last_seq``; otherwise it asks again from ``next_after_seq``."""
        if after_seq < 0:
            raise ValidationFailed.field("after_seq", "must not be negative")
        if not 1 <= limit <= MAX_CHANGES_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_CHANGES_PAGE}")
        async with self._db.read() as conn:
            await membership(conn, conversation_id, user_id)
            # last_seq first: every version up to it is committed (seq order is commit
            # order), so reading the rows after it can only add, never miss.
            last_seq = (
                await conn.execute(
                    select(conversations.c.last_seq).where(conversations.c.id == conversation_id)
                )
            ).scalar_one()
            page = await load_messages(
                conn,
                select(messages)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.version_seq > after_seq,
                )
                .order_by(messages.c.version_seq)
                .limit(limit + 1),
            )
        has_more = len(page) > limit
        page = page[:limit]
        current = max(last_seq, page[-1].version_seq if page else 0)
        return {
            "messages": [m.to_public() for m in page],
            "last_seq": current,
            "has_more": has_more,
            "next_after_seq": page[-1].version_seq if has_more else current,
        }
