"""The few database reads and writes the gateway needs that no REST route does.

- which conversations a user is in (ids only: the hub subscribes before the full read);
- who may see a user's presence: people sharing a conversation with them or accepted
  contacts, minus anyone blocked in either direction (DESIGN §1 "a block hides presence");
- ``users.last_seen_at``, written when a user goes offline;
- everything ``ready`` needs, in one transaction.

They take the :class:`~parley.store.db.Database` explicitly, like every service does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from parley.errors import NotFound
from parley.services.accounts import User, fetch_user
from parley.services.contacts import contact_ids
from parley.services.conversation_views import member_views
from parley.store.db import Database
from parley.store.tables import blocks, members, users


_MEMBER_OF = select(members.c.conversation_id).where(members.c.user_id == bindparam("user_id"))


async def member_conversation_ids(db: Database, user_id: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(_MEMBER_OF, {"user_id": user_id})
        return [row.conversation_id for row in rows]


_MINE = aliased(members)
_THEIRS = aliased(members)
# Built once: constructing the two aliases cost more than running the query.
_SHARING = (
    select(_THEIRS.c.user_id)
    .distinct()
    .join(_MINE, _MINE.c.conversation_id == _THEIRS.c.conversation_id)
    .where(_MINE.c.user_id == bindparam("user_id"))
)
_BLOCKS = select(blocks.c.blocker_id, blocks.c.blocked_id).where(
    or_(blocks.c.blocker_id == bindparam("user_id"), blocks.c.blocked_id == bindparam("user_id"))
)


async def presence_audience(db: Database, user_id: str) -> set[str]:
    """Users who may see ``user_id``'s presence (``user_id`` not included)."""
    async with db.read() as conn:
        return await _audience(conn, user_id)


async def _audience(conn: AsyncConnection, user_id: str) -> set[str]:
    sharing = {row.user_id for row in await conn.execute(_SHARING, {"user_id": user_id})}
    contacts = await contact_ids(conn, user_id)
    blocked = {
        row.blocked_id if row.blocker_id == user_id else row.blocker_id
        for row in await conn.execute(_BLOCKS, {"user_id": user_id})
    }
    return (sharing | contacts) - blocked - {user_id}


@dataclass(frozen=True, slots=True)
class ReadyReads:
    user: User
    conversations: list[dict[str, Any]]  # as GET /conversations lists them
    audience: set[str]  # as presence_audience


async def ready_reads(db: Database, user_id: str) -> ReadyReads:
    """What ``ready`` needs, in one read transaction: one pool checkout instead of three,
    which is most of what a reconnect storm waits on. (The conversation ids the hub
    subscribes to first are read before, in their own transaction: see Connection.)"""
    async with db.read() as conn:
        user = await fetch_user(conn, user_id)
        if user is None:
            raise NotFound("No such user")
        conversations = await member_views(conn, user_id)
        audience = await _audience(conn, user_id)
    return ReadyReads(user, conversations, audience)


async def record_last_seen(db: Database, user_ids: Iterable[str], when: datetime) -> None:
    ids = sorted(set(user_ids))
    if not ids:
        return
    async with db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id.in_(ids)).values(last_seen_at=when))


async def last_seen(db: Database, user_ids: Iterable[str]) -> dict[str, datetime | None]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    async with db.read() as conn:
        rows = await conn.execute(
            select(users.c.id, users.c.last_seen_at).where(users.c.id.in_(ids))
        )
        return {row.id: row.last_seen_at for row in rows}
