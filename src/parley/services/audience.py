"""Who hears about a user: everyone sharing a conversation with them and their accepted
contacts (DESIGN §1). Profile changes (``user.updated``) go to all of them; presence goes to
them minus anyone blocked in either direction (the gateway applies that rule).

Synchronous: runs inside ``Database.read_sync`` (one hand-off to a database thread).
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, or_, select
from sqlalchemy.orm import aliased

from parley.store.tables.contacts import contacts
from parley.store.tables.conversations import members

_MINE = aliased(members)
_THEIRS = aliased(members)
# Built once: constructing the two aliases cost more than running the query.
_SHARING = (
    select(_THEIRS.c.user_id)
    .distinct()
    .join(_MINE, _MINE.c.conversation_id == _THEIRS.c.conversation_id)
    .where(_MINE.c.user_id == bindparam("user_id"))
)


def read_contact_ids(conn: Connection, user_id: str) -> set[str]:
    """Accepted contacts of ``user_id`` (presence audience, DM policy)."""
    rows = conn.execute(
        select(contacts.c.requester_id, contacts.c.addressee_id).where(
            or_(contacts.c.requester_id == user_id, contacts.c.addressee_id == user_id),
            contacts.c.status == "accepted",
        )
    )
    return {r.addressee_id if r.requester_id == user_id else r.requester_id for r in rows}


def read_acquaintances(conn: Connection, user_id: str) -> set[str]:
    """Users sharing a conversation with ``user_id`` or accepted contacts of theirs
    (``user_id`` not included)."""
    sharing = {row.user_id for row in conn.execute(_SHARING, {"user_id": user_id})}
    return (sharing | read_contact_ids(conn, user_id)) - {user_id}
