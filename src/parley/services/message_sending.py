"""Sending messages: validation, idempotency and group commit (DESIGN §2 "Persistence").

A send is checked for what needs no database (text, ids, counts, rate limits) and queued;
the batcher then writes every queued send in ONE transaction that also does all the
checks that need the database — membership, blocks, reply targets, mentions, uploads —
a few queries per conversation in the batch instead of several round trips per send.
Each message takes the next ``seq`` of its conversation inside that transaction, under
the conversation's row lock, so seq order is commit order; every caller is answered only
after the commit; events go out after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Blocked, IdempotencyConflict, NotFound, RateLimited, ValidationFailed
from parley.ids import new_id
from parley.observability.metrics import Metrics
from parley.security.ratelimit import Rate, RateLimiter
from parley.services import attachment_records
from parley.services.access import CONVERSATION_NOT_FOUND, allocate_seqs
from parley.services.attachment_errors import AttachmentAlreadyUsed
from parley.services.batching import Batcher
from parley.services.events import Event, EventSink
from parley.services.markup import check_client_msg_id, check_content, mentioned_usernames
from parley.services.message_records import Message, load_messages
from parley.store.db import Database
from parley.store.tables import blocks, conversations, members, messages, users

REPLY_NOT_HERE = "must be a message of the same conversation"


@dataclass(frozen=True, slots=True)
class SendLimits:
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
    mention_names: frozenset[str] = field(default=frozenset())
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


def replay(existing: Message, request: SendRequest) -> SendResult | BaseException:
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


async def resolve_mentions(
    conn: AsyncConnection, conversation_id: str, names: set[str] | frozenset[str]
) -> dict[str, str]:
    """Username → user id, for the names that belong to members of the conversation."""
    if not names:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.username_key)
        .join(members, members.c.user_id == users.c.id)
        .where(members.c.conversation_id == conversation_id, users.c.username_key.in_(names))
    )
    return {row.username_key: row.id for row in rows}


def mention_ids(names: frozenset[str], resolved: dict[str, str]) -> list[str]:
    return [resolved[name] for name in sorted(names) if name in resolved]


class MessageSender:
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
        self._limiter = limiter
        self._limits = limits
        self._metrics = metrics
        self._batcher: Batcher[SendRequest, SendResult] = Batcher(
            self._write_batch,
            window_seconds=limits.group_commit_window_seconds,
            max_batch=limits.group_commit_max_batch,
        )

    async def close(self) -> None:
        """Write what is queued, refuse new sends (graceful shutdown)."""
        await self._batcher.close()

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
        files = tuple(attachment_ids)
        if len(files) > self._limits.max_attachments:
            raise ValidationFailed.field(
                "attachment_ids", f"at most {self._limits.max_attachments} attachments per message"
            )
        if len(set(files)) != len(files):
            raise ValidationFailed.field("attachment_ids", "must not repeat an id")
        text = check_content(content, max_chars=self._limits.max_chars, allow_empty=bool(files))
        request = SendRequest(
            sender_id=sender_id,
            conversation_id=conversation_id,
            content=text,
            client_msg_id=check_client_msg_id(client_msg_id),
            reply_to_id=reply_to_id,
            mention_names=frozenset(mentioned_usernames(text)),
            attachment_ids=files,
        )
        for key, rate in (
            (f"send:user:{sender_id}", self._limits.user_rate),
            (f"send:conversation:{conversation_id}", self._limits.conversation_rate),
        ):
            decision = await self._limiter.hit(key, rate)
            if not decision.allowed:
                raise RateLimited(decision.retry_after, "You are sending messages too fast")
        return await self._batcher.submit(request)

    # --- the batch

    async def _write_batch(self, batch: Sequence[SendRequest]) -> list[SendResult | BaseException]:
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
                fresh = await self._admissible(conn, conversation_id, batch, indexes, outcomes, duplicates)
                if not fresh:
                    continue
                names = frozenset().union(*(batch[i].mention_names for i in fresh))
                resolved = await resolve_mentions(conn, conversation_id, names)
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
                            "mentions": json.dumps(mention_ids(request.mention_names, resolved)),
                            "system_event": None,
                            "created_at": now,
                            "edited_at": None,
                            "deleted_at": None,
                        }
                    )
                await conn.execute(messages.insert(), rows)
                for i in fresh:  # in this transaction: the message and its claim commit together
                    if batch[i].attachment_ids:
                        await attachment_records.claim(
                            conn,
                            message_id=new_ids[i],
                            conversation_id=conversation_id,
                            sender_id=batch[i].sender_id,
                            attachment_ids=batch[i].attachment_ids,
                            now=now,
                        )
            stored = (
                {
                    m.id: m
                    for m in await load_messages(
                        conn, select(messages).where(messages.c.id.in_(list(new_ids.values())))
                    )
                }
                if new_ids
                else {}
            )
        for i, message_id in new_ids.items():
            outcomes[i] = SendResult(stored[message_id], created=True)
        for i, first in duplicates.items():
            original = outcomes[first]
            outcomes[i] = replay(original.message, batch[i]) if isinstance(original, SendResult) else original
        created = sorted((stored[m] for m in new_ids.values()), key=lambda m: m.seq)
        return [o if o is not None else NotFound() for o in outcomes], created

    async def _admissible(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        batch: Sequence[SendRequest],
        indexes: list[int],
        outcomes: list[SendResult | BaseException | None],
        duplicates: dict[int, int],
    ) -> list[int]:
        """Lock the conversation and sort its requests: the ones to write, in order; the
        rest get their outcome (an error, or the earlier message for a repeated id)."""
        conversation = (
            await conn.execute(
                select(conversations.c.type)
                .where(conversations.c.id == conversation_id)
                .with_for_update()
            )
        ).first()
        senders = {batch[i].sender_id for i in indexes}
        allowed = set() if conversation is None else await self._senders_who_may_write(
            conn, conversation_id, conversation.type, senders, indexes, batch, outcomes
        )
        existing = await self._existing_by_client_id(conn, conversation_id, batch, indexes)
        bad_replies = await self._foreign_replies(conn, conversation_id, batch, indexes)
        fresh: list[int] = []
        first_of: dict[tuple[str, str], int] = {}
        for i in indexes:
            request = batch[i]
            if outcomes[i] is not None:
                continue
            if request.sender_id not in allowed:
                outcomes[i] = NotFound(CONVERSATION_NOT_FOUND)
                continue
            if request.client_msg_id is not None:
                key = (request.sender_id, request.client_msg_id)
                if key in existing:
                    outcomes[i] = replay(existing[key], request)
                    continue
                if key in first_of:
                    duplicates[i] = first_of[key]
                    continue
                first_of[key] = i
            if request.reply_to_id in bad_replies:
                outcomes[i] = ValidationFailed.field("reply_to_id", REPLY_NOT_HERE)
                continue
            problems = await attachment_records.find_unusable(
                conn, request.sender_id, request.attachment_ids
            )
            if problems:
                outcomes[i] = problems[next(a for a in request.attachment_ids if a in problems)]
                continue
            fresh.append(i)
        return fresh

    async def _senders_who_may_write(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        kind: str,
        senders: set[str],
        indexes: list[int],
        batch: Sequence[SendRequest],
        outcomes: list[SendResult | BaseException | None],
    ) -> set[str]:
        """Members among ``senders``; in a direct conversation, a block either way stops
        the sender (their requests get ``Blocked`` here)."""
        current = {
            row.user_id
            for row in await conn.execute(
                select(members.c.user_id).where(members.c.conversation_id == conversation_id)
            )
        }
        allowed = senders & current
        if kind == "direct" and len(current) == 2 and allowed:
            blocked = {
                row.blocker_id
                for row in await conn.execute(
                    select(blocks.c.blocker_id).where(
                        blocks.c.blocker_id.in_(current), blocks.c.blocked_id.in_(current)
                    )
                )
            }
            if blocked:
                for i in indexes:
                    if batch[i].sender_id in allowed:
                        outcomes[i] = Blocked()
                return set()
        return allowed

    async def _foreign_replies(
        self,
        conn: AsyncConnection,
        conversation_id: str,
        batch: Sequence[SendRequest],
        indexes: list[int],
    ) -> set[str]:
        """The reply targets that are not messages of this conversation."""
        wanted = {batch[i].reply_to_id for i in indexes if batch[i].reply_to_id is not None}
        if not wanted:
            return set()
        here = {
            row.id
            for row in await conn.execute(
                select(messages.c.id).where(
                    messages.c.id.in_(wanted), messages.c.conversation_id == conversation_id
                )
            )
        }
        return {reply for reply in wanted if reply not in here}

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
