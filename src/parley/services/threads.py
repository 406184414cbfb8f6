"""Threads (DESIGN §6.5): a thread's replies, following, and unread per thread.

A reply in a thread is an ordinary message of its conversation with ``thread_root_id``
set (written by the group commit, ``message_batch``): it takes the conversation's next seq
and its root takes another as ``version_seq`` (the summary changed), so resume and the
changes feed work unchanged. This module reads threads and keeps each user's per-thread
state in ``thread_follows``: whether they follow it (taking part follows it; following
or unfollowing by choice too) and how far they read it. A thread's unread count is its
live replies after that mark not sent by the reader.

State changes are told to the user's own sessions as ``thread.updated`` events (user
state, not conversation history: they carry no seq).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import ValidationFailed
from parley.services.access import membership, visible_message
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import Event, EventSink
from parley.services.message_records import Message, load_messages
from parley.store.db import Database
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages, thread_follows
from parley.store.upsert import insert_or_ignore
from parley.wire.events import EventType

MAX_PAGE = 100
DEFAULT_PAGE = 50
NOT_A_ROOT = "is a reply in a thread, not a thread's root"


@dataclass(frozen=True, slots=True)
class ThreadState:
    """One user's state of one thread."""

    root_id: str
    conversation_id: str
    following: bool
    last_read_seq: int
    unread_count: int

    def to_public(self) -> dict[str, Any]:
        return {
            "root_id": self.root_id,
            "conversation_id": self.conversation_id,
            "following": self.following,
            "last_read_seq": self.last_read_seq,
            "unread_count": self.unread_count,
        }


# The replies counted (an alias: the listing also joins the roots from ``messages``).
_REPLIES = messages.alias("replies")


def _unread_replies(user_id: Any, root_id: Any, after_seq: Any) -> Any:
    """Live replies of a thread after ``after_seq`` not sent by ``user_id`` (one range of
    the thread index)."""
    return and_(
        _REPLIES.c.thread_root_id == root_id,
        _REPLIES.c.seq > after_seq,
        _REPLIES.c.deleted_at.is_(None),
        or_(_REPLIES.c.sender_id.is_(None), _REPLIES.c.sender_id != user_id),
    )


_UNREAD_IN_FOLLOWED = (
    select(func.count())
    .select_from(_REPLIES)
    .where(
        _unread_replies(
            thread_follows.c.user_id, thread_follows.c.root_id, thread_follows.c.last_read_seq
        )
    )
    .correlate(thread_follows)
    .scalar_subquery()
)


class Threads:
    def __init__(self, db: Database, events: EventSink, urls: AttachmentUrls | None) -> None:
        self._db = db
        self._events = events
        self._urls = urls  # signs the attachment URLs of the messages it returns

    # --- reading

    async def replies(
        self,
        user_id: str,
        root_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> dict[str, Any]:
        """The root and a page of its replies in seq order (default: the latest
        ``limit``), with the caller's state of the thread."""
        if before_seq is not None and after_seq is not None:
            raise ValidationFailed.field("before_seq", "give at most one of before_seq, after_seq")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_PAGE}")
        async with self._db.read() as conn:
            root = await self._root(conn, user_id, root_id)
            base = select(messages).where(messages.c.thread_root_id == root_id)
            if after_seq is not None:
                page = await load_messages(
                    conn,
                    base.where(messages.c.seq > after_seq).order_by(messages.c.seq).limit(limit + 1),
                    urls=self._urls,
                )
                has_more = len(page) > limit
                page = page[:limit]
            else:
                query = base if before_seq is None else base.where(messages.c.seq < before_seq)
                page = await load_messages(
                    conn, query.order_by(messages.c.seq.desc()).limit(limit + 1), urls=self._urls
                )
                has_more = len(page) > limit
                page = list(reversed(page[:limit]))
            state = await self._state(conn, user_id, root)
        return {
            "root": root.to_public(),
            "messages": [m.to_public() for m in page],
            "has_more": has_more,
            "state": state.to_public(),
        }

    async def followed(self, user_id: str, *, unread_only: bool = False, limit: int = DEFAULT_PAGE) -> dict[str, Any]:
        """The threads the caller follows in conversations they are still in, the most
        recently replied first, each with its root and unread count (the "Threads" view)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_PAGE}")
        query = (
            select(
                thread_follows.c.root_id,
                thread_follows.c.conversation_id,
                thread_follows.c.last_read_seq,
                _UNREAD_IN_FOLLOWED.label("unread"),
            )
            .join(messages, messages.c.id == thread_follows.c.root_id)
            .join(
                members,
                and_(
                    members.c.conversation_id == thread_follows.c.conversation_id,
                    members.c.user_id == thread_follows.c.user_id,
                ),
            )
            .where(thread_follows.c.user_id == user_id, thread_follows.c.following.is_(True))
            # A thread followed before any reply has no last reply: last, on both databases.
            .order_by(messages.c.thread_last_reply_at.desc().nulls_last(), thread_follows.c.root_id)
        )
        if unread_only:
            query = query.where(_UNREAD_IN_FOLLOWED > 0)
        async with self._db.read() as conn:
            rows = list(await conn.execute(query.limit(limit + 1)))
            has_more = len(rows) > limit
            rows = rows[:limit]
            roots = {
                m.id: m
                for m in await load_messages(
                    conn,
                    select(messages).where(messages.c.id.in_([r.root_id for r in rows])),
                    urls=self._urls,
                )
            }
        threads = [
            {
                "root": roots[r.root_id].to_public(),
                "state": ThreadState(r.root_id, r.conversation_id, True, r.last_read_seq, r.unread).to_public(),
            }
            for r in rows
            if r.root_id in roots
        ]
        return {"threads": threads, "has_more": has_more}

    # --- changing

    async def follow(self, user_id: str, root_id: str, following: bool) -> dict[str, Any]:
        """Follow or unfollow a thread by choice. Unfollowing keeps the read mark; taking
        part again follows it again."""
        now = utcnow()
        async with self._db.transaction() as conn:
            root = await self._root(conn, user_id, root_id)
            await self._ensure_row(conn, user_id, root, now, following=following)
            await conn.execute(
                update(thread_follows)
                .where(thread_follows.c.root_id == root_id, thread_follows.c.user_id == user_id)
                .values(following=following, updated_at=now)
            )
            state = await self._state(conn, user_id, root)
        await self._announce(user_id, state)
        return {"state": state.to_public()}

    async def mark_read(self, user_id: str, root_id: str, seq: int) -> dict[str, Any]:
        """Move the caller's read mark of the thread forward to ``seq`` (never back); a
        seq past the conversation's last is an error, as for the conversation's mark."""
        now = utcnow()
        async with self._db.transaction() as conn:
            root = await self._root(conn, user_id, root_id)
            last_seq = (
                await conn.execute(
                    select(conversations.c.last_seq).where(conversations.c.id == root.conversation_id)
                )
            ).scalar_one()
            if seq > last_seq:
                raise ValidationFailed.field("seq", f"is past the conversation's last seq ({last_seq})")
            await self._ensure_row(conn, user_id, root, now, following=False)
            await conn.execute(
                update(thread_follows)
                .where(
                    thread_follows.c.root_id == root_id,
                    thread_follows.c.user_id == user_id,
                    thread_follows.c.last_read_seq < seq,
                )
                .values(last_read_seq=seq, updated_at=now)
            )
            state = await self._state(conn, user_id, root)
        await self._announce(user_id, state)
        return {"state": state.to_public()}

    # --- helpers

    async def _root(self, conn: AsyncConnection, user_id: str, root_id: str) -> Message:
        root = await visible_message(conn, user_id, root_id, urls=self._urls)
        if root.thread_root_id is not None:
            raise ValidationFailed.field("message_id", NOT_A_ROOT)
        return root

    async def _ensure_row(
        self, conn: AsyncConnection, user_id: str, root: Message, now: datetime, *, following: bool
    ) -> None:
        await conn.execute(
            insert_or_ignore(conn.dialect.name, thread_follows, ("root_id", "user_id")).values(
                root_id=root.id,
                user_id=user_id,
                conversation_id=root.conversation_id,
                following=following,
                last_read_seq=0,
                updated_at=now,
            )
        )

    async def _state(self, conn: AsyncConnection, user_id: str, root: Message) -> ThreadState:
        await membership(conn, root.conversation_id, user_id)
        row = (
            await conn.execute(
                select(thread_follows.c.following, thread_follows.c.last_read_seq).where(
                    thread_follows.c.root_id == root.id, thread_follows.c.user_id == user_id
                )
            )
        ).first()
        following = bool(row.following) if row else False
        read = int(row.last_read_seq) if row else 0
        unread = (
            await conn.execute(
                select(func.count())
                .select_from(_REPLIES)
                .where(_unread_replies(bindparam("user"), root.id, read)),
                {"user": user_id},
            )
        ).scalar_one()
        return ThreadState(root.id, root.conversation_id, following, read, int(unread))

    async def _announce(self, user_id: str, state: ThreadState) -> None:
        await self._events.emit([Event(EventType.THREAD_UPDATED, state.to_public(), user_ids=(user_id,))])
