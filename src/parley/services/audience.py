"""Who hears about a user: everyone sharing a conversation with them and their accepted
contacts (DESIGN §1). Profile changes (``user.updated``) go to all of them; presence goes to
them minus anyone blocked in either direction.

Synchronous: runs inside ``Database.read_sync`` (one hand-off to a database thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Connection, Select, bindparam, case, exists, or_, select, union
from sqlalchemy.orm import aliased

from parley.store.one_of import one_of
from parley.store.tables.accounts import users
from parley.store.tables.contacts import blocks, contacts
from parley.store.tables.conversations import members

# Built once (constructing the aliases and the union cost more than running the query);
# each a single statement whatever the number of users, so a burst of ``ready`` reads pays
# one execution for all their audiences, not one each.
_USER: BindParameter[str] = bindparam("user_id")
_MINE = aliased(members)
_THEIRS = aliased(members)
_ACCEPTED = contacts.c.status == "accepted"
# (user_id, other_id): each of the users given with someone sharing a conversation with
# them or an accepted contact of theirs, each way — themselves included. (The contacts are
# reached from the users' own rows: with ``contacts.requester_id`` matched against the list
# directly, SQLite with statistics chose to scan every contact instead.)
_PAIRS = union(
    select(_MINE.c.user_id.label("user_id"), _THEIRS.c.user_id.label("other_id"))
    .join(_THEIRS, _THEIRS.c.conversation_id == _MINE.c.conversation_id)
    .where(one_of(_MINE.c.user_id, "user_ids")),
    select(users.c.id, contacts.c.addressee_id)
    .join(contacts, contacts.c.requester_id == users.c.id)
    .where(one_of(users.c.id, "user_ids"), _ACCEPTED),
    select(users.c.id, contacts.c.requester_id)
    .join(contacts, contacts.c.addressee_id == users.c.id)
    .where(one_of(users.c.id, "user_ids"), _ACCEPTED),
).subquery()
_ACQUAINTANCES = select(_PAIRS.c.user_id, _PAIRS.c.other_id).where(_PAIRS.c.other_id != _PAIRS.c.user_id)
_PRESENCE_AUDIENCES = _ACQUAINTANCES.where(
    ~exists().where(blocks.c.blocker_id == _PAIRS.c.user_id, blocks.c.blocked_id == _PAIRS.c.other_id),
    ~exists().where(blocks.c.blocker_id == _PAIRS.c.other_id, blocks.c.blocked_id == _PAIRS.c.user_id),
)
_CONTACTS = select(
    case((contacts.c.requester_id == _USER, contacts.c.addressee_id), else_=contacts.c.requester_id)
    .label("other_id")
).where(or_(contacts.c.requester_id == _USER, contacts.c.addressee_id == _USER), _ACCEPTED)


def read_contact_ids(conn: Connection, user_id: str) -> set[str]:
    """Accepted contacts of ``user_id`` (presence audience, DM policy)."""
    return {row.other_id for row in conn.execute(_CONTACTS, {"user_id": user_id})}


def read_acquaintances(conn: Connection, user_id: str) -> set[str]:
    """Users sharing a conversation with ``user_id`` or accepted contacts of theirs
    (``user_id`` not included)."""
    return _per_user(conn, _ACQUAINTANCES, [user_id])[user_id]


def read_presence_audience(conn: Connection, user_id: str) -> set[str]:
    """Who may see ``user_id``'s presence: their acquaintances minus anyone blocked in
    either direction (DESIGN §1 "a block hides presence")."""
    return read_presence_audiences(conn, [user_id])[user_id]


def read_presence_audiences(conn: Connection, user_ids: Sequence[str]) -> dict[str, set[str]]:
    """``read_presence_audience`` of each user given, in one statement."""
    return _per_user(conn, _PRESENCE_AUDIENCES, user_ids)


def _per_user(conn: Connection, statement: Select[Any], user_ids: Sequence[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {user_id: set() for user_id in user_ids}
    if not found:
        return found
    for row in conn.execute(statement, {"user_ids": list(found)}):
        found[row.user_id].add(row.other_id)
    return found
