"""Messages: send (group-committed, idempotent), edit, delete (tombstones), history, changes.

Ordering and durability (DESIGN §2 "Persistence"): a message's ``seq`` is taken inside the
transaction that stores it, under the conversation's row lock, so seq order is commit
order; the sender is answered only after that commit; events go out after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import (
    Blocked,
    Forbidden,
    IdempotencyConflict,
    MessageDeleted,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from parley.ids import new_id
from parley.observability.metrics import Metrics
from parley.security.ratelimit import Rate, RateLimiter
from parley.services import attachment_records
from parley.services.access import (
    CONVERSATION_NOT_FOUND,
    allocate_seqs,
    blocked_between,
    bump_version,
    member_ids,
    membership,
)
from parley.services.attachment_errors import AttachmentAlreadyUsed
from parley.services.batching import Batcher
from parley.services.events import Event, EventSink
from parley.services.markup import check_client_msg_id, check_content, mentioned_usernames
from parley.services.message_records import Message, load_message, load_messages
from parley.store.db import Database
from parley.store.tables import conversations, members, messages, reactions, users

MAX_PAGE = 100
DEFAULT_PAGE = 50
MAX_CHANGES_PAGE = 500
MESSAGE_NOT_FOUND = "No such message"


@dataclass(frozen=True, slots=True)
class MessageLimits:
    max_chars: int
    user_rate: Rate
    conversation_rate: Rate
    group_commit_window_seconds: float
    group_commit_max_batch: int
    max_attachments: int = 10


@dataclass(frozen=True, slots=True)
class SendRequest:
    sender_id: str
    conversation_id: str
    content: str
    client_msg_id: str | None = None
    reply_to_id: str | None = None
    mentions: tuple[str, ...] = field(default=())
    attachment_ids: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SendResult:
    message: Message
    created: bool  # False when client_msg_id matched an earlier send


def created_event(message: Message) -> Event:
    return Event(
        "message.created",
        {"conversation_id": message.conversation_id, "seq": message.seq, "message": message.to_public()},
        conversation_id=message.conversation_id,
    )


def changed_event(event_type: str, message: Message) -> Event:
    return Event(
        event_type,
        {
            "conversation_id": message.conversation_id,
            "seq": message.version_seq,
            "message": message.to_public(),
        },
        conversation_id=message.conversation_id,
    )


class Messages:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        limiter: RateLimiter,
        limits: MessageLimits,
        metrics: Metrics,
    ) -> None:
        self._db = db
        self._events = events
        self._limiter = limiter
        self._limits = limits
        self._metrics = metrics
        self._batcher: Batcher[SendRequest, SendResult] = Batcher(
            self._write_batch,
            window_seconds=limits.group_commit_window_seconds,
            max_batch=limits.group_commit_max_batch,
        )

    async def close(self) -> None:
        """Flush queued sends (graceful shutdown)."""
        await self._batcher.close()

    # --- sending

    async def send(
        self,
        sender_id: str,
        conversation_id: str,
        content: str,
        *,
        client_msg_id: str | None = None,
        reply_to_id: str | None = None,
        attachment_ids: Sequence[str] = (),
    ) -> SendResult:
        files = self._check_attachment_ids(attachment_ids)
        text = check_content(content, max_chars=self._limits.max_chars, allow_empty=bool(files))
        client_id = check_client_msg_id(client_msg_id)
        async with self._db.read() as conn:
            member = await membership(conn, conversation_id, sender_id)
            if member.is_direct:
                others = [u for u in await member_ids(conn, conversation_id) if u != sender_id]
                if others and await blocked_between(conn, sender_id, others[0]):
                    raise Blocked()
            if reply_to_id is not None:
                await self._check_reply(conn, conversation_id, reply_to_id)
            mentions = await self._resolve_mentions(conn, conversation_id, text)
        for key, rate in (
            (f"send:user:{sender_id}", self._limits.user_rate),
            (f"send:conversation:{conversation_id}", self._limits.conversation_rate),
        ):
            decision = await self._limiter.hit(key, rate)
            if not decision.allowed:
                raise RateLimited(decision.retry_after, "You are sending messages too fast")
        request = SendRequest(
            sender_id, conversation_id, text, client_id, reply_to_id, mentions, files
        )
        return await self._batcher.submit(request)

    def _check_attachment_ids(self, attachment_ids: Sequence[str]) -> tuple[str, ...]:
        files = tuple(attachment_ids)
        if len(files) > self._limits.max_attachments:
            raise ValidationFailed.field(
                "attachment_ids", f"at most {self._limits.max_attachments} attachments per message"
            )
        if len(set(files)) != len(files):
            raise ValidationFailed.field("attachment_ids", "must not repeat an id")
        return files

    async def _check_reply(self, conn: AsyncConnection, conversation_id: str, reply_to_id: str) -> None:
        row = (
            await conn.execute(
                select(messages.c.conversation_id).where(messages.c.id == reply_to_id)
            )
        ).first()
        if row is None or row.conversation_id != conversation_id:
            raise ValidationFailed.field(
                "reply_to_id", "must be a message of the same conversation"
            )

    async def _resolve_mentions(
        self, conn: AsyncConnection, conversation_id: str, content: str
    ) -> tuple[str, ...]:
        names = mentioned_usernames(content)
        if not names:
            return ()
        rows = await conn.execute(
            select(users.c.id)
            .join(members, members.c.user_id == users.c.id)
            .where(members.c.conversation_id == conversation_id, users.c.username_key.in_(names))
            .order_by(users.c.username_key)
        )
        return tuple(row.id for row in rows)

    async def _write_batch(
        self, batch: Sequence[SendRequest]
    ) -> list[SendResult | BaseException]:
        try:
            outcomes, created = await self._commit(batch)
        except (IntegrityError, AttachmentAlreadyUsed):
            # A concurrent writer (another node) raced on a client_msg_id, or two sends
            # claimed one upload: write one by one so only the racing request sees the conflict.
            outcomes, created = [], []
            for request in batch:
                try:
                    single, made = await self._commit([request])
                    outcomes.extend(single)
                    created.extend(made)
                except IntegrityError:
                    outcomes.append(IdempotencyConflict("Retry: a concurrent send raced this one"))
                except AttachmentAlreadyUsed as exc:  # claimed by a concurrent send
                    outcomes.append(exc)
        if created:
            self._metrics.messages_sent.inc(len(created))
            self._metrics.group_commit_batch.observe(len(created))
            await self._events.emit([created_event(m) for m in created])
        return outcomes

    async def _commit(
        self, batch: Sequence[SendRequest]
    ) -> tuple[list[SendResult | BaseException], list[Message]]:
        outcomes: list[SendResult | BaseException | None] = [None] * len(batch)
        duplicates: dict[int, int] = {}  # index -> index of the same client_msg_id earlier
        by_conversation: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(batch):
            by_conversation[request.conversation_id].append(index)
        now = utcnow()
        new_ids: dict[int, str] = {}
        async with self._db.transaction() as conn:
            # Sorted, so that two nodes writing overlapping batches lock in the same order.
            for conversation_id in sorted(by_conversation):
                indexes = by_conversation[conversation_id]
                await conn.execute(
                    select(conversations.c.id)
                    .where(conversations.c.id == conversation_id)
                    .with_for_update()
                )
                senders = {batch[i].sender_id for i in indexes}
                allowed = {
                    row.user_id
                    for row in await conn.execute(
                        select(members.c.user_id).where(
                            members.c.conversation_id == conversation_id,
                            members.c.user_id.in_(senders),
                        )
                    )
                }
                existing = await self._existing_by_client_id(conn, conversation_id, batch, indexes)
                fresh: list[int] = []
                first_of: dict[tuple[str, str], int] = {}
                for i in indexes:
                    request = batch[i]
                    if request.sender_id not in allowed:
                        outcomes[i] = NotFound(CONVERSATION_NOT_FOUND)
                        continue
                    if request.client_msg_id is not None:
                        key = (request.sender_id, request.client_msg_id)
                        if key in existing:
                            outcomes[i] = _replay(existing[key], request)
                            continue
                        if key in first_of:
                            duplicates[i] = first_of[key]
                            continue
                        first_of[key] = i
                    fresh.append(i)
                fresh = await self._usable_attachments(conn, batch, fresh, outcomes)
                if not fresh:
                    continue
                last = await allocate_seqs(conn, conversation_id, len(fresh), now)
                rows = []
                for offset, i in enumerate(fresh):
                    seq = last - len(fresh) + 1 + offset
                    request = batch[i]
                    new_ids[i] = new_id()
                    rows.append(
                        {
                            "id": new_ids[i],
                            "conversation_id": conversation_id,
                            "seq": seq,
                            "version_seq": seq,
                            "sender_id": request.sender_id,
                            "kind": "text",
                            "content": request.content,
                            "client_msg_id": request.client_msg_id,
                            "reply_to_id": request.reply_to_id,
                            "mentions": json.dumps(list(request.mentions)),
                            "system_event": None,
                            "created_at": now,
                            "edited_at": None,
                            "deleted_at": None,
                        }
                    )
                await conn.execute(messages.insert(), rows)
                for i in fresh:  # in this transaction: the message and its claim commit together
                    await attachment_records.claim(
                        conn,
                        message_id=new_ids[i],
                        conversation_id=conversation_id,
                        sender_id=batch[i].sender_id,
                        attachment_ids=batch[i].attachment_ids,
                        now=now,
                    )
            stored = {
                m.id: m
                for m in await load_messages(
                    conn, select(messages).where(messages.c.id.in_(list(new_ids.values())))
                )
            } if new_ids else {}
        for i, message_id in new_ids.items():
            outcomes[i] = SendResult(stored[message_id], created=True)
        for i, first in duplicates.items():
            original = outcomes[first]
            outcomes[i] = (
                _replay(original.message, batch[i]) if isinstance(original, SendResult) else original
            )
        created = [stored[new_ids[i]] for i in sorted(new_ids, key=lambda i: stored[new_ids[i]].seq)]
        return [o if o is not None else NotFound() for o in outcomes], created

    async def _usable_attachments(
        self,
        conn: AsyncConnection,
        batch: Sequence[SendRequest],
        fresh: list[int],
        outcomes: list[SendResult | BaseException | None],
    ) -> list[int]:
        """Drop (with their error) the requests naming an upload they may not attach: unknown,
        another user's, or already used. ``attachment_records.claim`` re-checks atomically."""
        usable: list[int] = []
        for i in fresh:
            request = batch[i]
            problems = await attachment_records.find_unusable(
                conn, request.sender_id, request.attachment_ids
            )
            if problems:
                outcomes[i] = problems[next(a for a in request.attachment_ids if a in problems)]
            else:
                usable.append(i)
        return usable

    async def _existing_by_client_id(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        batch: Sequence[SendRequest],
        indexes: list[int],
    ) -> dict[tuple[str, str], Message]:
        keys = {
            (batch[i].sender_id, batch[i].client_msg_id)
            for i in indexes
            if batch[i].client_msg_id is not None
        }
        if not keys:
            return {}
        found = await load_messages(
            conn,
            select(messages).where(
                messages.c.conversation_id == conversation_id,
                tuple_(messages.c.sender_id, messages.c.client_msg_id).in_(list(keys)),
            ),
        )
        return {(m.sender_id or "", m.client_msg_id or ""): m for m in found}

    # --- changing

    async def edit(self, user_id: str, message_id: str, content: str) -> Message:
        text = check_content(content, max_chars=self._limits.max_chars)
        now = utcnow()
        async with self._db.transaction() as conn:
            message = await self._visible(conn, user_id, message_id)
            if message.sender_id != user_id or message.kind != "text":
                raise Forbidden("Only the sender can edit a message")
            if message.deleted:
                raise MessageDeleted()
            mentions = await self._resolve_mentions(conn, message.conversation_id, text)
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
            message = await self._visible(conn, user_id, message_id)
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
            )
            tombstone = await load_message(conn, message_id)
        assert tombstone is not None
        await self._events.emit([changed_event("message.deleted", tombstone)])
        return tombstone

    async def _visible(self, conn: AsyncConnection, user_id: str, message_id: str) -> Message:
        """The message if the caller is a member of its conversation, else ``NotFound``."""
        message = await load_message(conn, message_id)
        if message is None:
            raise NotFound(MESSAGE_NOT_FOUND)
        try:
            await membership(conn, message.conversation_id, user_id)
        except NotFound:
            raise NotFound(MESSAGE_NOT_FOUND) from None
        return message

    async def get(self, user_id: str, message_id: str) -> Message:
        async with self._db.read() as conn:
            return await self._visible(conn, user_id, message_id)

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
        base = select(messages).where(messages.c.conversation_id == conversation_id)
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


def _replay(existing: Message, request: SendRequest) -> SendResult | BaseException:
    """A resend with the same client_msg_id: the same message, unless it says otherwise."""
    if existing.content != request.content and not existing.deleted:
        return IdempotencyConflict()
    if existing.reply_to_id != request.reply_to_id:
        return IdempotencyConflict()
    # The uploads are claimed by the original already: same set means the same send.
    attached = sorted(a["id"] for a in existing.attachments)
    if not existing.deleted and attached != sorted(request.attachment_ids):
        return IdempotencyConflict()
    return SendResult(existing, created=False)
