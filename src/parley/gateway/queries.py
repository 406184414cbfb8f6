"""The few database reads and writes the gateway needs that no REST route does.

- which conversations a user is in (ids only: the hub subscribes before the full read);
- who may see a user's presence: people sharing a conversation with them or accepted
  contacts, minus anyone blocked in either direction (DESIGN §1 "a block hides presence");
- ``users.last_seen_at``, written when a user goes offline.

They take the :class:`~parley.store.db.Database` explicitly, like every service does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import aliased

from parley.services.contacts import contact_ids
from parley.store.db import Database
from parley.store.tables import blocks, members, users


async def member_conversation_ids(db: Database, user_id: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(members.c.conversation_id).where(members.c.user_id == user_id)
        )
        return [row.conversation_id for row in rows]


async def presence_audience(db: Database, user_id: str) -> set[str]:
    """Users who may see ``user_id``'s presence (``user_id`` not included)."""
    mine = aliased(members)
    theirs = aliased(members)
    async with db.read() as conn:
        sharing = {
            row.user_id
            for row in await conn.execute(
                select(theirs.c.user_id)
                .distinct()
                .join(mine, mine.c.conversation_id == theirs.c.conversation_id)
                .where(mine.c.user_id == user_id)
            )
        }
        contacts = await contact_ids(conn, user_id)
        blocked = {
            row.blocked_id if row.blocker_id == user_id else row.blocker_id
            for row in await conn.execute(
                select(blocks.c.blocker_id, blocks.c.blocked_id).where(
                    or_(blocks.c.blocker_id == user_id, blocks.c.blocked_id == user_id)
                )
            )
        }
    return (sharing | contacts) - blocked - {user_id}


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
