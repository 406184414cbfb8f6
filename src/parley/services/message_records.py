"""The message record and its wire payload, loaded with reactions and reply previews.

Every read path (history, changes, search hits, events) goes through ``read_messages`` so a
message looks the same wherever a client meets it: synchronous, for code that runs whole
transactions on a plain connection (``Database.write``), and as ``load_messages`` for async
code (the same function, through ``AsyncConnection.run_sync``). Each takes the attachment
URL signer explicitly (``urls``: the payload's attachment and preview image URLs are signed
with it; ``None`` leaves them unsigned, for tools that show no files).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat
from parley.services.attachment_records import load_public_for_messages
from parley.services.attachment_urls import AttachmentUrls
from parley.services.link_preview_records import read_link_previews
from parley.store.one_of import one_of
from parley.store.tables.messages import messages, reactions
from parley.wire.json_text import dumps

REPLY_PREVIEW_CHARS = 200
# The messages of a conversation's timeline: thread replies stay in their thread unless
# also sent to the conversation (DESIGN §6.5). The changes feed carries them all.
IN_CONVERSATION = or_(messages.c.thread_root_id.is_(None), messages.c.thread_broadcast.is_(True))


@dataclass(frozen=True, slots=True)
class Reaction:
    emoji: str
    user_ids: tuple[str, ...]

    def to_public(self) -> dict[str, Any]:
        return {"emoji": self.emoji, "count": len(self.user_ids), "user_ids": list(self.user_ids)}


@dataclass(frozen=True, slots=True)
class ReplyPreview:
    id: str
    sender_id: str | None
    content: str
    deleted: bool

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "content": self.content,
            "deleted": self.deleted,
        }


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """What a thread's root shows (DESIGN §6.5): replies, when the last came, who wrote."""

    reply_count: int
    last_reply_at: datetime | None
    participant_ids: tuple[str, ...]

    def to_public(self) -> dict[str, Any]:
        return {
            "reply_count": self.reply_count,
            "last_reply_at": isoformat(self.last_reply_at) if self.last_reply_at else None,
            "participant_ids": list(self.participant_ids),
        }


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    version_seq: int
    sender_id: str | None
    kind: str
    content: str
    client_msg_id: str | None
    reply_to_id: str | None
    mentions: tuple[str, ...]
    system_event: dict[str, Any] | None
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    reactions: tuple[Reaction, ...] = ()
    reply_to: ReplyPreview | None = None
    attachments: tuple[dict[str, Any], ...] = field(default=())
    link_preview: dict[str, Any] | None = None  # services.link_preview_records
    # Threads, forwarding and pins (DESIGN §6.5): the root this reply belongs to, whether
    # the reply is also shown in the conversation, the root's summary (None: no replies).
    thread_root_id: str | None = None
    thread_broadcast: bool = False
    thread: ThreadSummary | None = None
    forwarded_from: dict[str, Any] | None = None
    pinned_at: datetime | None = None
    pinned_by: str | None = None

    # An end-to-end encrypted message (DESIGN §6.1): content is empty, these carry it.
    ciphertext: str | None = None
    e2ee: dict[str, Any] | None = None
    # The wire form, once built: a sent message's event and its sender's answer (ack or
    # 201) share one (never mutate what ``to_public`` returns); and its JSON text, once
    # written, which the event's frame and the ack share.
    _public: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False, compare=False)
    _public_text: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def in_conversation(self) -> bool:
        """Shown in the conversation's timeline (a thread-only reply is not)."""
        return self.thread_root_id is None or self.thread_broadcast

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def to_public(self) -> dict[str, Any]:
        """The message as every client meets it (REST, events, acks), built once per record."""
        if not self._public:
            self._public.append(self._build_public())
        return self._public[0]

    def public_text(self) -> str:
        """``to_public`` as JSON text (``wire.json_text.dumps``), written once per record."""
        if not self._public_text:
            self._public_text.append(dumps(self.to_public()))
        return self._public_text[0]

    def _build_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "version_seq": self.version_seq,
            "sender_id": self.sender_id,
            "kind": self.kind,
            "content": self.content,
            "client_msg_id": self.client_msg_id,
            "reply_to_id": self.reply_to_id,
            "reply_to": self.reply_to.to_public() if self.reply_to else None,
            "mentions": list(self.mentions),
            "system_event": self.system_event,
            "reactions": [r.to_public() for r in self.reactions],
            "attachments": list(self.attachments),
            "link_preview": self.link_preview,
            "thread_root_id": self.thread_root_id,
            "thread_broadcast": self.thread_broadcast,
            "thread": self.thread.to_public() if self.thread else None,
            "forwarded_from": self.forwarded_from,
            "pinned": (
                {"by": self.pinned_by, "at": isoformat(self.pinned_at)} if self.pinned_at else None
            ),
            "ciphertext": self.ciphertext,
            "e2ee": self.e2ee,
            "created_at": isoformat(self.created_at),
            "edited_at": isoformat(self.edited_at) if self.edited_at else None,
            "deleted_at": isoformat(self.deleted_at) if self.deleted_at else None,
            "deleted": self.deleted,
        }


def message_from_row(
    row: Row[Any],
    reaction_list: Sequence[Reaction] = (),
    reply_to: ReplyPreview | None = None,
    attachment_list: Sequence[dict[str, Any]] = (),
    link_preview: dict[str, Any] | None = None,
    thread: ThreadSummary | None = None,
) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        version_seq=row.version_seq,
        sender_id=row.sender_id,
        kind=row.kind,
        content=row.content,
        client_msg_id=row.client_msg_id,
        reply_to_id=row.reply_to_id,
        mentions=tuple(json.loads(row.mentions or "[]")),
        system_event=json.loads(row.system_event) if row.system_event else None,
        created_at=row.created_at,
        edited_at=row.edited_at,
        deleted_at=row.deleted_at,
        reactions=tuple(reaction_list),
        reply_to=reply_to,
        attachments=tuple(attachment_list),
        link_preview=link_preview,
        thread_root_id=row.thread_root_id,
        thread_broadcast=bool(row.thread_broadcast),
        thread=thread,
        forwarded_from=json.loads(row.forwarded_from) if row.forwarded_from else None,
        pinned_at=row.pinned_at,
        pinned_by=row.pinned_by,
        ciphertext=row.ciphertext,
        e2ee=json.loads(row.e2ee) if row.e2ee else None,
    )


# What read_messages adds to a page of messages, built once with each list bound as one
# parameter (store/one_of.py): every history page, conversation list and ``ready`` runs
# them, and building or re-rendering an IN list cost more than running these lookups.
_REACTIONS = (
    select(reactions.c.message_id, reactions.c.emoji, reactions.c.user_id)
    .where(one_of(reactions.c.message_id, "ids"))
    .order_by(reactions.c.created_at, reactions.c.user_id)
)
_REPLY_PREVIEWS = select(
    messages.c.id, messages.c.sender_id, messages.c.content, messages.c.deleted_at
).where(one_of(messages.c.id, "ids"))
_THREAD_SENDERS = (
    select(messages.c.thread_root_id, messages.c.sender_id)
    .where(
        one_of(messages.c.thread_root_id, "ids"),
        messages.c.deleted_at.is_(None),
        messages.c.sender_id.is_not(None),
    )
    .order_by(messages.c.thread_root_id, messages.c.seq)
)


def read_thread_summaries(conn: Connection, rows: Sequence[Row[Any]]) -> dict[str, ThreadSummary]:
    """The summary of each root among ``rows`` that has replies: participants are the
    distinct senders of its live replies, first reply first (the thread index, one range
    per root)."""
    roots = {row.id: row for row in rows if row.thread_reply_count}
    if not roots:
        return {}
    participants: dict[str, list[str]] = {root: [] for root in roots}
    for r in conn.execute(_THREAD_SENDERS, {"ids": list(roots)}):
        seen = participants[r.thread_root_id]
        if r.sender_id not in seen:
            seen.append(r.sender_id)
    return {
        root: ThreadSummary(row.thread_reply_count, row.thread_last_reply_at, tuple(participants[root]))
        for root, row in roots.items()
    }


async def load_messages(
    conn: AsyncConnection,
    query: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    urls: AttachmentUrls | None,
) -> list[Message]:
    """``read_messages`` on an async connection."""
    return await conn.run_sync(read_messages, query, params, urls=urls)


def read_messages(
    conn: Connection,
    query: Select[Any],
    params: dict[str, Any] | None = None,
    *,
    urls: AttachmentUrls | None,
) -> list[Message]:
    """Run ``query`` (a ``select(messages)``, with ``params`` for its bound parameters) and
    attach reactions, reply previews and attachments (none on tombstones)."""
    rows = list(conn.execute(query, params or {}))
    if not rows:
        return []
    ids = [row.id for row in rows]
    by_message: dict[str, dict[str, list[str]]] = {}
    for r in conn.execute(_REACTIONS, {"ids": ids}):
        by_message.setdefault(r.message_id, {}).setdefault(r.emoji, []).append(r.user_id)
    reply_ids = {row.reply_to_id for row in rows if row.reply_to_id}
    previews: dict[str, ReplyPreview] = {}
    if reply_ids:
        for quoted in conn.execute(_REPLY_PREVIEWS, {"ids": list(reply_ids)}):
            previews[quoted.id] = ReplyPreview(
                id=quoted.id,
                sender_id=quoted.sender_id,
                content=quoted.content[:REPLY_PREVIEW_CHARS],
                deleted=quoted.deleted_at is not None,
            )
    visible = [row.id for row in rows if row.deleted_at is None]
    files = load_public_for_messages(conn, visible, urls)
    link_previews = read_link_previews(conn, visible, urls)
    threads = read_thread_summaries(conn, rows)
    return [
        message_from_row(
            row,
            [Reaction(e, tuple(u)) for e, u in by_message.get(row.id, {}).items()],
            previews.get(row.reply_to_id) if row.reply_to_id else None,
            files.get(row.id, ()),
            link_previews.get(row.id),
            threads.get(row.id),
        )
        for row in rows
    ]


async def load_message(
    conn: AsyncConnection, message_id: str, *, urls: AttachmentUrls | None
) -> Message | None:
    found = await load_messages(conn, select(messages).where(messages.c.id == message_id), urls=urls)
    return found[0] if found else None
