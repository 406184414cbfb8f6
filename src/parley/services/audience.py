"""Who hears about a user: everyone sharing a conversation with them and their accepted
contacts (DESIGN §1). Profile changes (``user.updated``) go to all of them; presence goes to
them minus anyone blocked in either direction.

Synchronous: runs inside ``Database.read_sync`` (one hand-off to a database thread).
"""

from __future__ import annotations

from sqlalchemy import BindParameter, Connection, bindparam, case, or_, select, union
from sqlalchemy.orm import aliased

from parley.store.tables.contacts import blocks, contacts
from parley.store.tables.conversations import members

# Built once (constructing the aliases and the union cost more than running the query);
# each a single statement, so a ``ready`` pays one execution for its audience, not three.
_USER: BindParameter[str] = bindparam("user_id")
_MINE = aliased(members)
_THEIRS = aliased(members)
_SHARING = (
    select(_THEIRS.c.user_id.label("other_id"))
    .join(_MINE, _MINE.c.conversation_id == _THEIRS.c.conversation_id)
    .where(_MINE.c.user_id == _USER)
)
_CONTACTS = select(
    case((contacts.c.requester_id == _USER, contacts.c.addressee_id), else_=contacts.c.requester_id)
    .label("other_id")
).where(or_(contacts.c.requester_id == _USER, contacts.c.addressee_id == _USER), contacts.c.status == "accepted")
_ACQUAINTED = union(_SHARING, _CONTACTS).subquery()
_ACQUAINTANCES = select(_ACQUAINTED.c.other_id).where(_ACQUAINTED.c.other_id != _USER)
_BLOCKED_EITHER_WAY = union(
    select(blocks.c.blocked_id).where(blocks.c.blocker_id == _USER),
    select(blocks.c.blocker_id).where(blocks.c.blocked_id == _USER),
)
_PRESENCE_AUDIENCE = _ACQUAINTANCES.where(_ACQUAINTED.c.other_id.not_in(_BLOCKED_EITHER_WAY))


def read_contact_ids(conn: Connection, user_id: str) -> set[str]:
    """Accepted contacts of ``user_id`` (presence audience, DM policy)."""
    return {row.other_id for row in conn.execute(_CONTACTS, {"user_id": user_id})}


def read_acquaintances(conn: Connection, user_id: str) -> set[str]:
    """Users sharing a conversation with ``user_id`` or accepted contacts of theirs
    (``user_id`` not included)."""
    return {row.other_id for row in conn.execute(_ACQUAINTANCES, {"user_id": user_id})}


def read_presence_audience(conn: Connection, user_id: str) -> set[str]:
    """Who may see ``user_id``'s presence: their acquaintances minus anyone blocked in
    either direction (DESIGN §1 "a block hides presence")."""
    return {row.other_id for row in conn.execute(_PRESENCE_AUDIENCE, {"user_id": user_id})}
