"""Who may see and change what: membership, roles, blocks — and the per-conversation seq.

Non-members get ``NotFound`` for every conversation resource, never ``Forbidden``, so ids
reveal nothing about conversations a user is not in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.errors import Forbidden, NotFound
from parley.ids import new_id
from parley.services.attachment_urls import AttachmentUrls
from parley.services.message_records import Message, load_message
from parley.store.tables.contacts import blocks
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages

ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}


@dataclass(frozen=True, slots=True)
class Membership:
    conversation_id: str
    conversation_type: str
    created_by: str | None
    user_id: str
    role: str
    last_read_seq: int
    last_delivered_seq: int

    @property
    def is_admin(self) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK["admin"]

    @property
    def is_direct(self) -> bool:
        return self.conversation_type == "direct"


CONVERSATION_NOT_FOUND = "No such conversation"
MESSAGE_NOT_FOUND = "No such message"


async def membership(
    conn: AsyncConnection, conversation_id: str, user_id: str
) -> Membership:
    """The caller's membership, or ``NotFound`` (also for conversations that don't exist)."""
    row = (
        await conn.execute(
            select(
                members.c.role,
                members.c.last_read_seq,
                members.c.last_delivered_seq,
                conversations.c.type,
                conversations.c.created_by,
            )
            .join(conversations, conversations.c.id == members.c.conversation_id)
            .where(members.c.conversation_id == conversation_id, members.c.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return Membership(
        conversation_id=conversation_id,
        conversation_type=row.type,
        created_by=row.created_by,
        user_id=user_id,
        role=row.role,
        last_read_seq=row.last_read_seq,
        last_delivered_seq=row.last_delivered_seq,
    )


async def is_member(conn: AsyncConnection, conversation_id: str, user_id: str) -> bool:
    """Whether ``user_id`` is in the conversation now (no error either way: joining asks)."""
    row = (
        await conn.execute(
            select(members.c.user_id).where(
                members.c.conversation_id == conversation_id, members.c.user_id == user_id
            )
        )
    ).first()
    return row is not None


async def visible_message(
    conn: AsyncConnection, user_id: str, message_id: str, *, urls: AttachmentUrls | None
) -> Message:
    """The message if the caller is a member of its conversation; ``NotFound`` otherwise,
    the same for a message that does not exist and one the caller may not see."""
    message = await load_message(conn, message_id, urls=urls)
    if message is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    try:
        await membership(conn, message.conversation_id, user_id)
    except NotFound:
        raise NotFound(MESSAGE_NOT_FOUND) from None
    return message


def require_admin(member: Membership) -> None:
    if member.is_direct:
        raise Forbidden("Direct conversations have no administrators")
    if not member.is_admin:
        raise Forbidden("Only the conversation's owner or admins can do this")


async def member_ids(conn: AsyncConnection, conversation_id: str) -> list[str]:
    rows = await conn.execute(
        select(members.c.user_id)
        .where(members.c.conversation_id == conversation_id)
        .order_by(members.c.joined_at, members.c.user_id)
    )
    return [row.user_id for row in rows]


async def blocked_between(conn: AsyncConnection, user_a: str, user_b: str) -> bool:
    """True when either user has blocked the other."""
    row = (
        await conn.execute(
            select(blocks.c.blocker_id).where(
                or_(
                    and_(blocks.c.blocker_id == user_a, blocks.c.blocked_id == user_b),
                    and_(blocks.c.blocker_id == user_b, blocks.c.blocked_id == user_a),
                )
            )
        )
    ).first()
    return row is not None


async def blocked_any(conn: AsyncConnection, user_id: str, others: set[str]) -> set[str]:
    """Those of ``others`` that ``user_id`` has blocked or that have blocked ``user_id``."""
    if not others:
        return set()
    rows = await conn.execute(
        select(blocks.c.blocker_id, blocks.c.blocked_id).where(
            or_(
                and_(blocks.c.blocker_id == user_id, blocks.c.blocked_id.in_(others)),
                and_(blocks.c.blocked_id == user_id, blocks.c.blocker_id.in_(others)),
            )
        )
    )
    return {r.blocked_id if r.blocker_id == user_id else r.blocker_id for r in rows}


async def lock_conversation(conn: AsyncConnection, conversation_id: str) -> None:
    """Take the conversation's row lock now (PostgreSQL; SQLite's write transaction is
    already exclusive), so a count read next stays true until commit — the lock every
    seq allocation takes anyway."""
    await conn.execute(
        select(conversations.c.id).where(conversations.c.id == conversation_id).with_for_update()
    )


async def allocate_seqs(
    conn: AsyncConnection, conversation_id: str, count: int, now: datetime
) -> int:
    """Reserve ``count`` consecutive seqs; returns the last. Takes the conversation's row
    lock until commit, so seq order is commit order (DESIGN §2 "Persistence")."""
    result = await conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(last_seq=conversations.c.last_seq + count, last_activity_at=now)
        .returning(conversations.c.last_seq)
    )
    last = result.scalar_one_or_none()
    if last is None:
        raise NotFound(CONVERSATION_NOT_FOUND)
    return int(last)


async def bump_version(
    conn: AsyncConnection, conversation_id: str, message_id: str, now: datetime, **values: Any
) -> int:
    """Give a changed message a new ``version_seq`` (and apply ``values``); returns it."""
    seq = await allocate_seqs(conn, conversation_id, 1, now)
    await conn.execute(
        update(messages).where(messages.c.id == message_id).values(version_seq=seq, **values)
    )
    return seq


async def insert_system_message(
    conn: AsyncConnection,
    conversation_id: str,
    event: dict[str, Any],
    now: datetime,
) -> str:
    """Record a membership or settings change in the conversation's timeline."""
    seq = await allocate_seqs(conn, conversation_id, 1, now)
    message_id = new_id()
    await conn.execute(
        insert(messages).values(
            id=message_id,
            conversation_id=conversation_id,
            seq=seq,
            version_seq=seq,
            sender_id=None,
            kind="system",
            content="",
            mentions="[]",
            system_event=json.dumps(event),
            created_at=now,
        )
    )
    return message_id
