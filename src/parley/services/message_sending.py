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
from typing import Any

from sqlalchemy import bindparam, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Blocked, IdempotencyConflict, NotFound, RateLimited, ValidationFailed
from parley.ids import new_id
from parley.observability.metrics import Metrics
from parley.security.ratelimit import Rate, RateLimiter
from parley.services import attachment_records
from parley.services.access import CONVERSATION_NOT_FOUND
from parley.services.attachment_errors import AttachmentAlreadyUsed
from parley.services.batching import Batcher
from parley.services.events import Event, EventSink
from parley.services.markup import check_client_msg_id, check_content, mentioned_usernames
from parley.services.message_records import Message, load_messages
from parley.store.db import Database
from parley.store.tables import blocks, conversations, members, messages, users

REPLY_NOT_HERE = "must be a message of the same conversation"


# The batch's statements, built once (building them cost about as much as running them).
# Expanding parameters take the batch's lists at execution.
_LOCK_CONVERSATIONS = (
    select(conversations.c.id, conversations.c.type, conversations.c.last_seq)
    .where(conversations.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(conversations.c.id)  # two nodes lock overlapping batches in one order
    .with_for_update()
)
# Senders' memberships only (a group of 1,000 is not read for each batch), plus both
# members of each direct conversation, for the block check.
_SENDING_MEMBERS = select(members.c.conversation_id, members.c.user_id).where(
    members.c.conversation_id.in_(bindparam("ids", expanding=True)),
    or_(
        members.c.user_id.in_(bindparam("senders", expanding=True)),
        members.c.conversation_id.in_(bindparam("direct", expanding=True)),
    ),
)
_BY_CLIENT_ID = select(messages).where(
    tuple_(messages.c.conversation_id, messages.c.sender_id, messages.c.client_msg_id).in_(
        bindparam("keys", expanding=True)
    )
)
_ADVANCE_SEQ = (
    update(conversations)
    .where(conversations.c.id == bindparam("target"))
    .values(last_seq=bindparam("new_seq"), last_activity_at=bindparam("active_at"))
)


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
        """One transaction for the whole batch, with a fixed number of queries however many
        conversations it spans (each check below reads every conversation at once)."""
        outcomes: list[SendResult | BaseException | None] = [None] * len(batch)
        duplicates: dict[int, int] = {}  # index -> index of the same client_msg_id earlier
        by_conversation: dict[str, list[int]] = defaultdict(list)
        for index, request in enumerate(batch):
            by_conversation[request.conversation_id].append(index)
        now = utcnow()
        new_rows: dict[int, dict[str, Any]] = {}
        async with self._db.transaction() as conn:
            fresh_by_conversation = await self._admissible(
                conn, batch, by_conversation, outcomes, duplicates
            )
            seq_updates = []
            rows = []
            for conversation_id, (last_seq, fresh) in fresh_by_conversation.items():
                names = frozenset().union(*(batch[i].mention_names for i in fresh))
                resolved = await resolve_mentions(conn, conversation_id, names)
                for offset, i in enumerate(fresh):
                    seq = last_seq + 1 + offset
                    request = batch[i]
                    row = {
                        "id": new_id(),
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
                    new_rows[i] = row
                    rows.append(row)
                seq_updates.append({"target": conversation_id, "new_seq": last_seq + len(fresh)})
            if seq_updates:
                # The rows are locked (FOR UPDATE; SQLite's write lock) since _admissible read
                # last_seq: seq order stays commit order (DESIGN §2 "Persistence").
                await conn.execute(
                    _ADVANCE_SEQ, [u | {"active_at": now} for u in seq_updates]
                )
                await conn.execute(messages.insert(), rows)
            for i, row in new_rows.items():  # in this transaction: the message and its claim
                if batch[i].attachment_ids:
                    await attachment_records.claim(
                        conn,
                        message_id=row["id"],
                        conversation_id=row["conversation_id"],
                        sender_id=batch[i].sender_id,
                        attachment_ids=batch[i].attachment_ids,
                        now=now,
                    )
            # A plain new message is exactly its row; only replies (preview) and attachments
            # (their public form) need reading back.
            reload = [r["id"] for i, r in new_rows.items() if batch[i].attachment_ids or r["reply_to_id"]]
            stored = (
                {
                    m.id: m
                    for m in await load_messages(
                        conn, select(messages).where(messages.c.id.in_(reload))
                    )
                }
                if reload
                else {}
            )
        for i, row in new_rows.items():
            message = stored.get(row["id"]) or _message_from_new_row(row)
            outcomes[i] = SendResult(message, created=True)
        for i, first in duplicates.items():
            original = outcomes[first]
            outcomes[i] = replay(original.message, batch[i]) if isinstance(original, SendResult) else original
        created = sorted(
            (o.message for i, o in enumerate(outcomes) if i in new_rows and isinstance(o, SendResult)),
            key=lambda m: (m.conversation_id, m.seq),
        )
        return [o if o is not None else NotFound() for o in outcomes], created

    async def _admissible(
        self,
        conn: AsyncConnection,
        batch: Sequence[SendRequest],
        by_conversation: dict[str, list[int]],
        outcomes: list[SendResult | BaseException | None],
        duplicates: dict[int, int],
    ) -> dict[str, tuple[int, list[int]]]:
        """Lock the batch's conversations and sort their requests: per conversation (in id
        order), its ``last_seq`` and the requests to write, in order; the other requests get
        their outcome (an error, or the earlier message for a repeated id)."""
        conversation_ids = sorted(by_conversation)
        found = {
            row.id: row
            for row in await conn.execute(_LOCK_CONVERSATIONS, {"ids": conversation_ids})
        }
        allowed = await self._senders_who_may_write(conn, batch, by_conversation, found, outcomes)
        existing = await self._existing_by_client_id(conn, batch)
        bad_replies = await self._foreign_replies(conn, batch)
        admitted: dict[str, tuple[int, list[int]]] = {}
        for conversation_id in conversation_ids:
            fresh: list[int] = []
            first_of: dict[tuple[str, str], int] = {}
            for i in by_conversation[conversation_id]:
                request = batch[i]
                if outcomes[i] is not None:
                    continue
                if request.sender_id not in allowed.get(conversation_id, ()):
                    outcomes[i] = NotFound(CONVERSATION_NOT_FOUND)
                    continue
                if request.client_msg_id is not None:
                    key = (request.sender_id, request.client_msg_id)
                    if (conversation_id, *key) in existing:
                        outcomes[i] = replay(existing[(conversation_id, *key)], request)
                        continue
                    if key in first_of:
                        duplicates[i] = first_of[key]
                        continue
                    first_of[key] = i
                if i in bad_replies:
                    outcomes[i] = ValidationFailed.field("reply_to_id", REPLY_NOT_HERE)
                    continue
                problems = await attachment_records.find_unusable(
                    conn, request.sender_id, request.attachment_ids
                )
                if problems:
                    outcomes[i] = problems[next(a for a in request.attachment_ids if a in problems)]
                    continue
                fresh.append(i)
            if fresh:
                admitted[conversation_id] = (int(found[conversation_id].last_seq), fresh)
        return admitted

    async def _senders_who_may_write(
        self,
        conn: AsyncConnection,
        batch: Sequence[SendRequest],
        by_conversation: dict[str, list[int]],
        found: dict[str, Any],
        outcomes: list[SendResult | BaseException | None],
    ) -> dict[str, set[str]]:
        """Per conversation, the members among its senders; in a direct conversation, a
        block either way stops the sender (their requests get ``Blocked`` here)."""
        if not found:
            return {}
        senders = {batch[i].sender_id for ids in by_conversation.values() for i in ids}
        direct = [cid for cid, row in found.items() if row.type == "direct"]
        current: dict[str, set[str]] = defaultdict(set)
        for row in await conn.execute(
            _SENDING_MEMBERS, {"ids": list(found), "senders": list(senders), "direct": direct}
        ):
            current[row.conversation_id].add(row.user_id)
        allowed = {
            cid: {batch[i].sender_id for i in by_conversation[cid]} & current[cid] for cid in found
        }
        pairs = [cid for cid in direct if len(current[cid]) == 2 and allowed[cid]]
        if pairs:
            people = set().union(*(current[cid] for cid in pairs))
            blocking = {
                (row.blocker_id, row.blocked_id)
                for row in await conn.execute(
                    select(blocks.c.blocker_id, blocks.c.blocked_id).where(
                        blocks.c.blocker_id.in_(people), blocks.c.blocked_id.in_(people)
                    )
                )
            }
            for cid in pairs:
                if any(a in current[cid] and b in current[cid] for a, b in blocking):
                    for i in by_conversation[cid]:
                        if batch[i].sender_id in allowed[cid]:
                            outcomes[i] = Blocked()
                    allowed[cid] = set()
        return allowed

    async def _foreign_replies(
        self, conn: AsyncConnection, batch: Sequence[SendRequest]
    ) -> set[int]:
        """The requests whose reply target is not a message of their conversation."""
        wanted = {r.reply_to_id for r in batch if r.reply_to_id is not None}
        if not wanted:
            return set()
        where = {
            row.id: row.conversation_id
            for row in await conn.execute(
                select(messages.c.id, messages.c.conversation_id).where(messages.c.id.in_(wanted))
            )
        }
        return {
            i
            for i, r in enumerate(batch)
            if r.reply_to_id is not None and where.get(r.reply_to_id) != r.conversation_id
        }

    async def _existing_by_client_id(
        self, conn: AsyncConnection, batch: Sequence[SendRequest]
    ) -> dict[tuple[str, str, str], Message]:
        keys = {
            (r.conversation_id, r.sender_id, r.client_msg_id)
            for r in batch
            if r.client_msg_id is not None
        }
        if not keys:
            return {}
        found = await load_messages(conn, _BY_CLIENT_ID, {"keys": list(keys)})
        return {(m.conversation_id, m.sender_id or "", m.client_msg_id or ""): m for m in found}


def _message_from_new_row(row: dict[str, Any]) -> Message:
    """The message just inserted, as ``load_messages`` would read it back (no reactions,
    reply preview or attachments: the caller reloads those that have them)."""
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        version_seq=row["version_seq"],
        sender_id=row["sender_id"],
        kind=row["kind"],
        content=row["content"],
        client_msg_id=row["client_msg_id"],
        reply_to_id=row["reply_to_id"],
        mentions=tuple(json.loads(row["mentions"])),
        system_event=None,
        created_at=row["created_at"],
        edited_at=None,
        deleted_at=None,
    )
