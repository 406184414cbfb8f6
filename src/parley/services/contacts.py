"""Contacts (requests, accept, decline, remove) and blocks.

A contact is one row per pair, directed from the user who asked. A block in either
direction stops direct conversations and direct messages between the two, hides presence,
and removes any contact between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import Blocked, Conflict, NotFound, ValidationFailed
from parley.services.access import blocked_between
from parley.services.accounts import User, fetch_user, fetch_users
from parley.services.audience import read_contact_ids
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.tables.contacts import blocks, contacts
from parley.wire.events import EventType

CONTACT_FILTERS = ("all", "accepted", "incoming", "outgoing")


def _pair(user_a: str, user_b: str) -> Any:
    return or_(
        and_(contacts.c.requester_id == user_a, contacts.c.addressee_id == user_b),
        and_(contacts.c.requester_id == user_b, contacts.c.addressee_id == user_a),
    )


async def are_contacts(conn: AsyncConnection, user_a: str, user_b: str) -> bool:
    row = (
        await conn.execute(
            select(contacts.c.status).where(_pair(user_a, user_b), contacts.c.status == "accepted")
        )
    ).first()
    return row is not None


async def contact_ids(conn: AsyncConnection, user_id: str) -> set[str]:
    return await conn.run_sync(read_contact_ids, user_id)


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone in the caller's contact list, or a request either way."""

    user: User
    status: str  # accepted | incoming | outgoing
    created_at: datetime
    updated_at: datetime

    def to_public(self) -> dict[str, Any]:
        return {
            "user": self.user.to_public(),
            "status": self.status,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class ContactState:
    """Where a request or an acceptance left the pair, from the caller's side."""

    user_id: str
    status: str  # accepted | outgoing

    def to_public(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "status": self.status}


@dataclass(frozen=True, slots=True)
class BlockedUser:
    user: User
    created_at: datetime

    def to_public(self) -> dict[str, Any]:
        return {"user": self.user.to_public(), "created_at": isoformat(self.created_at)}


class Contacts:
    def __init__(self, db: Database, events: EventSink) -> None:
        self._db = db
        self._events = events

    async def list(self, user_id: str, status: str = "all") -> Sequence[Contact]:
        if status not in CONTACT_FILTERS:
            raise ValidationFailed.field("status", f"must be one of {', '.join(CONTACT_FILTERS)}")
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(
                    select(contacts).where(
                        or_(contacts.c.requester_id == user_id, contacts.c.addressee_id == user_id)
                    ).order_by(contacts.c.updated_at.desc())
                )
            )
            others = {r.addressee_id if r.requester_id == user_id else r.requester_id for r in rows}
            people = await fetch_users(conn, others)
        result = []
        for r in rows:
            outgoing = r.requester_id == user_id
            other = r.addressee_id if outgoing else r.requester_id
            state = (
                "accepted" if r.status == "accepted" else ("outgoing" if outgoing else "incoming")
            )
            if status not in ("all", state) or other not in people:
                continue
            result.append(Contact(people[other], state, r.created_at, r.updated_at))
        return result

    async def request(self, user_id: str, other_id: str) -> ContactState:
        """Ask ``other_id``. If they already asked, this accepts their request instead."""
        if other_id == user_id:
            raise ValidationFailed.field("user_id", "you cannot add yourself as a contact")
        now = utcnow()
        async with self._db.transaction() as conn:
            if await fetch_user(conn, other_id) is None:
                raise NotFound("No such user")
            if await blocked_between(conn, user_id, other_id):
                raise Blocked()
            existing = (await conn.execute(select(contacts).where(_pair(user_id, other_id)))).first()
            if existing is None:
                await conn.execute(
                    insert(contacts).values(
                        requester_id=user_id,
                        addressee_id=other_id,
                        status="pending",
                        created_at=now,
                        updated_at=now,
                    )
                )
                state, event = "outgoing", EventType.CONTACT_REQUESTED
            elif existing.status == "accepted":
                raise Conflict("You are already contacts")
            elif existing.requester_id == user_id:
                raise Conflict("You already asked; wait for an answer")
            else:
                await conn.execute(
                    update(contacts)
                    .where(_pair(user_id, other_id))
                    .values(status="accepted", updated_at=now)
                )
                state, event = "accepted", EventType.CONTACT_ACCEPTED
        await self._notify(event, user_id, other_id)
        return ContactState(other_id, state)

    async def accept(self, user_id: str, requester_id: str) -> ContactState:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(contacts)
                .where(
                    contacts.c.requester_id == requester_id,
                    contacts.c.addressee_id == user_id,
                    contacts.c.status == "pending",
                )
                .values(status="accepted", updated_at=utcnow())
            )
            if result.rowcount != 1:
                raise NotFound("No pending request from this user")
        await self._notify(EventType.CONTACT_ACCEPTED, user_id, requester_id)
        return ContactState(requester_id, "accepted")

    async def remove(self, user_id: str, other_id: str) -> None:
        """Remove a contact, cancel an outgoing request or decline an incoming one."""
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(contacts).where(_pair(user_id, other_id)))
            if result.rowcount == 0:
                raise NotFound("No contact or request with this user")
        await self._notify(EventType.CONTACT_REMOVED, user_id, other_id)

    async def _notify(self, event_type: EventType, actor_id: str, other_id: str) -> None:
        data = {"actor_id": actor_id, "user_ids": [actor_id, other_id]}
        await self._events.emit([Event(event_type, data, user_ids=(actor_id, other_id))])

    # --- blocks

    async def list_blocks(self, user_id: str) -> Sequence[BlockedUser]:
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(
                    select(blocks).where(blocks.c.blocker_id == user_id).order_by(blocks.c.created_at)
                )
            )
            people = await fetch_users(conn, {r.blocked_id for r in rows})
        return [BlockedUser(people[r.blocked_id], r.created_at) for r in rows if r.blocked_id in people]

    async def block(self, user_id: str, other_id: str) -> None:
        if other_id == user_id:
            raise ValidationFailed.field("user_id", "you cannot block yourself")
        removed_contact = False
        async with self._db.transaction() as conn:
            if await fetch_user(conn, other_id) is None:
                raise NotFound("No such user")
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(blocks).values(
                            blocker_id=user_id, blocked_id=other_id, created_at=utcnow()
                        )
                    )
            except IntegrityError:
                return  # already blocked: blocking is idempotent
            result = await conn.execute(delete(contacts).where(_pair(user_id, other_id)))
            removed_contact = result.rowcount > 0
        if removed_contact:
            await self._notify(EventType.CONTACT_REMOVED, user_id, other_id)

    async def unblock(self, user_id: str, other_id: str) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(blocks).where(blocks.c.blocker_id == user_id, blocks.c.blocked_id == other_id)
            )
            if result.rowcount == 0:
                raise NotFound("This user is not blocked")
