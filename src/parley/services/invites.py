"""Invite links to groups (DESIGN §6.3).

An admin of a group creates a link (``POST /api/v1/conversations/{id}/invites``) with an
optional expiry and use limit, lists and revokes them; anyone signed in who holds the link
may look at the group it opens and join it. The link carries a random token
(``secrets.token_urlsafe``, 192 bits); only its SHA-256 is stored, so the database alone
cannot be used to join, and a listing never shows a token again.

Joining consumes a use with one conditional UPDATE (``uses < max_uses``, not revoked, not
expired) in the joining transaction, after the group's lock (``Conversations.admit``): a
link with one use left admits exactly one of any number of concurrent joins. A member
joining again consumes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import Forbidden, InviteUnusable, NotFound
from parley.ids import new_id
from parley.services.access import is_member, lock_conversation, membership, require_admin
from parley.services.conversation_views import MemberView
from parley.services.conversations import Conversations
from parley.store.db import Database
from parley.store.tables.conversations import conversation_invites, conversations, members

INVITE_NOT_FOUND = "No such invite link"
DEFAULT_TTL = timedelta(days=7)
MAX_TTL_SECONDS = 365 * 24 * 3600
MAX_USES = 100_000
# What the link's token looks like (token_urlsafe(24)); anything else names nothing.
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_TOKEN_CHARS = 64


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    conversation_id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return (
            self.revoked_at is None
            and (self.expires_at is None or self.expires_at > now)
            and (self.max_uses is None or self.uses < self.max_uses)
        )

    def to_public(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "created_by": self.created_by,
            "created_at": isoformat(self.created_at),
            "expires_at": isoformat(self.expires_at) if self.expires_at else None,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "revoked": self.revoked_at is not None,
            "usable": self.usable(now),
        }


def _invite(row: Any) -> Invite:
    return Invite(
        id=row.id,
        conversation_id=row.conversation_id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked_at=row.revoked_at,
    )


class Invites:
    def __init__(self, db: Database, conversations_: Conversations) -> None:
        self._db = db
        self._conversations = conversations_

    # --- managing (the group's admins)

    async def create(
        self,
        user_id: str,
        conversation_id: str,
        *,
        expires_in_seconds: int | None,
        max_uses: int | None,
    ) -> tuple[dict[str, Any], str]:
        """A new link: its public form and the token (shown once, put in the URL)."""
        now = utcnow()
        token = secrets.token_urlsafe(24)
        invite_id = new_id()
        expires_at = now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
        async with self._db.transaction() as conn:
            await self._require_admin(conn, conversation_id, user_id)
            await conn.execute(
                insert(conversation_invites).values(
                    id=invite_id,
                    conversation_id=conversation_id,
                    token_hash=token_hash(token),
                    created_by=user_id,
                    created_at=now,
                    expires_at=expires_at,
                    max_uses=max_uses,
                    uses=0,
                    revoked_at=None,
                )
            )
        invite = Invite(invite_id, conversation_id, user_id, now, expires_at, max_uses, 0, None)
        return invite.to_public(now), token

    async def list(self, user_id: str, conversation_id: str) -> list[dict[str, Any]]:
        now = utcnow()
        async with self._db.read() as conn:
            await self._require_admin(conn, conversation_id, user_id)
            rows = await conn.execute(
                select(conversation_invites)
                .where(conversation_invites.c.conversation_id == conversation_id)
                .order_by(conversation_invites.c.created_at.desc(), conversation_invites.c.id)
            )
            return [_invite(row).to_public(now) for row in rows]

    async def revoke(self, user_id: str, conversation_id: str, invite_id: str) -> None:
        """Idempotent: revoking a revoked link changes nothing."""
        now = utcnow()
        async with self._db.transaction() as conn:
            await self._require_admin(conn, conversation_id, user_id)
            found = await conn.execute(
                update(conversation_invites)
                .where(
                    conversation_invites.c.id == invite_id,
                    conversation_invites.c.conversation_id == conversation_id,
                )
                .values(revoked_at=func.coalesce(conversation_invites.c.revoked_at, now))
            )
            if not found.rowcount:
                raise NotFound(INVITE_NOT_FOUND)

    async def _require_admin(self, conn: AsyncConnection, conversation_id: str, user_id: str) -> None:
        member = await membership(conn, conversation_id, user_id)
        if member.is_direct:
            raise Forbidden("Direct conversations have no invite links")
        require_admin(member)

    # --- using (anyone signed in with the link)

    async def preview(self, user_id: str, token: str) -> dict[str, Any]:
        """What the link opens: the group's name, topic and size, whether the caller is in
        it already, and whether the link can still be used."""
        now = utcnow()
        async with self._db.read() as conn:
            invite = await self._find(conn, token)
            group = (
                await conn.execute(
                    select(
                        conversations.c.id,
                        conversations.c.name,
                        conversations.c.topic,
                        select(func.count())
                        .select_from(members)
                        .where(members.c.conversation_id == conversations.c.id)
                        .scalar_subquery()
                        .label("member_count"),
                    ).where(conversations.c.id == invite.conversation_id)
                )
            ).one()
            joined = await is_member(conn, invite.conversation_id, user_id)
        return {
            "conversation": {
                "id": group.id,
                "name": group.name,
                "topic": group.topic,
                "member_count": group.member_count,
            },
            "joined": joined,
            "usable": invite.usable(now),
            "expires_at": isoformat(invite.expires_at) if invite.expires_at else None,
        }

    async def join(self, user_id: str, token: str) -> tuple[MemberView, bool]:
        """Join the link's group: its view for the caller, and whether they are new in it."""
        now = utcnow()
        async with self._db.read() as conn:
            invite = await self._find(conn, token)
        async with self._db.transaction() as conn:
            # The group's lock first (the order every join takes): the member check below
            # stays true until commit, so a use is consumed only by a real join.
            await lock_conversation(conn, invite.conversation_id)
            line = None
            if not await is_member(conn, invite.conversation_id, user_id):
                used = await conn.execute(
                    update(conversation_invites)
                    .where(
                        conversation_invites.c.id == invite.id,
                        conversation_invites.c.revoked_at.is_(None),
                        or_(
                            conversation_invites.c.expires_at.is_(None),
                            conversation_invites.c.expires_at > now,
                        ),
                        or_(
                            conversation_invites.c.max_uses.is_(None),
                            conversation_invites.c.uses < conversation_invites.c.max_uses,
                        ),
                    )
                    .values(uses=conversation_invites.c.uses + 1)
                )
                if used.rowcount != 1:
                    raise InviteUnusable()
                line = await self._conversations.admit(
                    conn, invite.conversation_id, user_id, now, via="invite"
                )
        if line is not None:
            await self._conversations.announce_joined(invite.conversation_id, line, user_id)
        return await self._conversations.get(user_id, invite.conversation_id), line is not None

    async def _find(self, conn: AsyncConnection, token: str) -> Invite:
        if not token or len(token) > MAX_TOKEN_CHARS or not set(token) <= TOKEN_CHARS:
            raise NotFound(INVITE_NOT_FOUND)
        row = (
            await conn.execute(
                select(conversation_invites).where(
                    conversation_invites.c.token_hash == token_hash(token)
                )
            )
        ).first()
        if row is None:
            raise NotFound(INVITE_NOT_FOUND)
        return _invite(row)
