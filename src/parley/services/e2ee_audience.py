"""Who hears of a user's E2EE changes, and which devices count (DESIGN §6.1).

A device counts ("is active") while the login session that last uploaded its keys is not
revoked: logging a session out, or an admin revoking it, takes its device out of device
lists, key claims and to-device delivery at once, with no second write to forget.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.store.tables.accounts import sessions
from parley.store.tables.conversations import members
from parley.store.tables.e2ee import e2ee_devices

# Devices whose session still stands (a join on the session's primary key).
ACTIVE_DEVICES = (
    select(e2ee_devices)
    .join(sessions, sessions.c.id == e2ee_devices.c.session_id)
    .where(sessions.c.revoked_at.is_(None))
)


async def sharing_users(conn: AsyncConnection, user_id: str) -> list[str]:
    """The user and everyone who shares a conversation with them: who must learn that the
    user's device list changed (to encrypt for the new device, or stop encrypting for a
    removed one)."""
    theirs = select(members.c.conversation_id).where(members.c.user_id == user_id)
    rows = await conn.execute(
        select(members.c.user_id).distinct().where(members.c.conversation_id.in_(theirs))
    )
    return sorted({user_id, *(row.user_id for row in rows)})

