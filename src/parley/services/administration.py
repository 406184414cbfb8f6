"""Site administration (DESIGN §6.3): the user directory as administrators see it, site
roles, deactivation, and every conversation (listed by name and size, deletable).

Roles: ``user``, ``moderator`` (the report queue), ``admin`` (everything). Deactivating a
user revokes every session of theirs through ``Auth.revoke`` — their sockets close with
4001 on every node — and their logins and refreshes fail from then on; reactivating lets
them log in again (with new sessions).

**The last administrator stays.** Demoting or deactivating an active administrator is
refused (``LAST_ADMIN``) when no other active administrator would be left. The check and
the change are one transaction that first locks the active administrators' rows (``FOR
UPDATE`` on PostgreSQL; SQLite's write transactions are serial), so two administrators
demoting each other at once leave one, never none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import Forbidden, LastAdmin, NotFound, ValidationFailed
from parley.services.audit import Action, write_entry
from parley.services.auth import Auth
from parley.services.conversations import Conversations
from parley.store.db import Database
from parley.store.tables.accounts import totp_credentials, users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.notifications import email_addresses

Role = Literal["user", "moderator", "admin"]
ROLES: tuple[Role, ...] = ("user", "moderator", "admin")
STAFF: tuple[Role, ...] = ("moderator", "admin")
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class AdminUserView:
    id: str
    username: str
    display_name: str
    role: str
    created_at: datetime
    last_seen_at: datetime | None
    deactivated_at: datetime | None
    email: str | None
    email_verified: bool
    two_factor: bool

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "created_at": isoformat(self.created_at),
            "last_seen_at": isoformat(self.last_seen_at) if self.last_seen_at else None,
            "deactivated": self.deactivated_at is not None,
            "deactivated_at": isoformat(self.deactivated_at) if self.deactivated_at else None,
            "email": self.email,
            "email_verified": self.email_verified,
            "two_factor": self.two_factor,
        }


_VIEW = (
    select(
        users.c.id,
        users.c.username,
        users.c.display_name,
        users.c.role,
        users.c.created_at,
        users.c.last_seen_at,
        users.c.deactivated_at,
        email_addresses.c.address,
        email_addresses.c.verified_at,
        totp_credentials.c.confirmed_at,
    )
    .outerjoin(email_addresses, email_addresses.c.user_id == users.c.id)
    .outerjoin(totp_credentials, totp_credentials.c.user_id == users.c.id)
)


def _view(row: Any) -> AdminUserView:
    return AdminUserView(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        deactivated_at=row.deactivated_at,
        email=row.address,
        email_verified=row.verified_at is not None,
        two_factor=row.confirmed_at is not None,
    )


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text`` anywhere, literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def read_role(conn: AsyncConnection, user_id: str) -> str | None:
    """The site role of an active user, or None (no such user, or deactivated)."""
    row = (
        await conn.execute(
            select(users.c.role).where(users.c.id == user_id, users.c.deactivated_at.is_(None))
        )
    ).first()
    return str(row.role) if row else None


class Administration:
    def __init__(self, db: Database, auth: Auth, conversations: Conversations) -> None:
        self._db = db
        self._auth = auth
        self._conversations = conversations

    async def role_of(self, user_id: str) -> str | None:
        async with self._db.read() as conn:
            return await read_role(conn, user_id)

    async def list_users(
        self,
        *,
        q: str = "",
        role: str | None = None,
        status: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> tuple[list[AdminUserView], bool]:
        """Every user, deactivated ones included, by id; filtered by a name fragment, role
        and ``status`` (``active`` / ``deactivated``). ``after``: the last id seen."""
        query = _VIEW
        text = q.strip().lower()
        if text:
            pattern = contains_pattern(text)
            query = query.where(
                or_(
                    users.c.username_key.like(pattern, escape="\\"),
                    func.lower(users.c.display_name).like(pattern, escape="\\"),
                    email_addresses.c.address_key.like(pattern, escape="\\"),
                )
            )
        if role is not None:
            if role not in ROLES:
                raise ValidationFailed.field("role", "must be user, moderator or admin")
            query = query.where(users.c.role == role)
        if status == "active":
            query = query.where(users.c.deactivated_at.is_(None))
        elif status == "deactivated":
            query = query.where(users.c.deactivated_at.is_not(None))
        elif status is not None:
            raise ValidationFailed.field("status", "must be active or deactivated")
        if after:
            query = query.where(users.c.id > after)
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.read() as conn:
            rows = list(await conn.execute(query.order_by(users.c.id).limit(limit + 1)))
        return [_view(r) for r in rows[:limit]], len(rows) > limit

    async def get_user(self, user_id: str) -> AdminUserView:
        async with self._db.read() as conn:
            row = (await conn.execute(_VIEW.where(users.c.id == user_id))).first()
        if row is None:
            raise NotFound("No such user")
        return _view(row)

    async def update_user(
        self,
        actor_id: str,
        user_id: str,
        *,
        role: str | None = None,
        deactivated: bool | None = None,
        ip_address: str = "",
    ) -> AdminUserView:
        """Change a user's role and/or deactivate or reactivate them."""
        if role is not None and role not in ROLES:
            raise ValidationFailed.field("role", "must be user, moderator or admin")
        if deactivated and actor_id == user_id:
            raise Forbidden("You cannot deactivate yourself")
        now = utcnow()
        newly_deactivated = False
        async with self._db.transaction() as conn:
            admins = await _lock_active_admins(conn)
            row = (
                await conn.execute(
                    select(users.c.role, users.c.deactivated_at).where(users.c.id == user_id)
                )
            ).first()
            if row is None:
                raise NotFound("No such user")
            was_active_admin = row.role == "admin" and row.deactivated_at is None
            stays_active_admin = (role or row.role) == "admin" and not (
                deactivated if deactivated is not None else row.deactivated_at is not None
            )
            if was_active_admin and not stays_active_admin and admins <= 1:
                raise LastAdmin("At least one active administrator must remain")
            if role is not None and role != row.role:
                await conn.execute(
                    update(users)
                    .where(users.c.id == user_id)
                    .values(role=role, is_admin=role == "admin", updated_at=now)
                )
                await write_entry(
                    conn,
                    Action.ROLE_CHANGED,
                    actor_id=actor_id,
                    target_user_id=user_id,
                    ip_address=ip_address,
                    details={"from": row.role, "to": role},
                )
            if deactivated is True and row.deactivated_at is None:
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(deactivated_at=now, updated_at=now)
                )
                await write_entry(
                    conn, Action.USER_DEACTIVATED, actor_id=actor_id, target_user_id=user_id, ip_address=ip_address
                )
                newly_deactivated = True
            elif deactivated is False and row.deactivated_at is not None:
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(deactivated_at=None, updated_at=now)
                )
                await write_entry(
                    conn, Action.USER_REACTIVATED, actor_id=actor_id, target_user_id=user_id, ip_address=ip_address
                )
        if newly_deactivated:
            await self.revoke_sessions(actor_id, user_id, reason="deactivated", ip_address=ip_address)
        return await self.get_user(user_id)

    async def revoke_sessions(
        self, actor_id: str, user_id: str, *, reason: str = "admin", ip_address: str = ""
    ) -> int:
        """Revoke every session of ``user_id`` (sockets closed on every node)."""
        revoked = await self._auth.revoke(user_id, reason=reason)
        if revoked:
            async with self._db.transaction() as conn:
                await write_entry(
                    conn,
                    Action.SESSIONS_REVOKED,
                    actor_id=actor_id,
                    target_user_id=user_id,
                    ip_address=ip_address,
                    details={"count": len(revoked), "reason": reason},
                )
        return len(revoked)


    # --- conversations

    async def list_conversations(
        self, *, q: str = "", kind: str | None = None, after: str | None = None, limit: int = 50
    ) -> tuple[list[dict[str, Any]], bool]:
        """Every conversation by id, with its member count (never its messages); ``q``
        matches a group's name or slug."""
        counts = (
            select(members.c.conversation_id, func.count().label("member_count"))
            .group_by(members.c.conversation_id)
            .subquery()
        )
        query = select(
            conversations.c.id,
            conversations.c.type,
            conversations.c.name,
            conversations.c.slug,
            conversations.c.created_by,
            conversations.c.created_at,
            conversations.c.last_activity_at,
            conversations.c.archived_at,
            func.coalesce(counts.c.member_count, 0).label("member_count"),
        ).outerjoin(counts, counts.c.conversation_id == conversations.c.id)
        text = q.strip().lower()
        if text:
            pattern = contains_pattern(text)
            query = query.where(
                or_(
                    func.lower(conversations.c.name).like(pattern, escape="\\"),
                    conversations.c.slug.like(pattern, escape="\\"),
                )
            )
        if kind is not None:
            if kind not in ("direct", "group"):
                raise ValidationFailed.field("type", "must be direct or group")
            query = query.where(conversations.c.type == kind)
        if after:
            query = query.where(conversations.c.id > after)
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.read() as conn:
            rows = list(await conn.execute(query.order_by(conversations.c.id).limit(limit + 1)))
        found = [
            {
                "id": r.id,
                "type": r.type,
                "name": r.name,
                "slug": r.slug,
                "created_by": r.created_by,
                "created_at": isoformat(r.created_at),
                "last_activity_at": isoformat(r.last_activity_at),
                "member_count": int(r.member_count),
                "archived": r.archived_at is not None,
            }
            for r in rows[:limit]
        ]
        return found, len(rows) > limit

    async def delete_conversation(self, actor_id: str, conversation_id: str, *, ip_address: str = "") -> None:
        """Delete any conversation, its messages and files with it (members are told)."""
        await self._conversations.delete(actor_id, conversation_id, as_site_admin=True)
        async with self._db.transaction() as conn:
            await write_entry(
                conn,
                Action.CONVERSATION_DELETED,
                actor_id=actor_id,
                target_id=conversation_id,
                ip_address=ip_address,
            )


    async def set_archived(
        self, actor_id: str, conversation_id: str, archived: bool, *, ip_address: str = ""
    ) -> None:
        """Archive or unarchive any conversation (audited when it changes)."""
        if not await self._conversations.set_archived(actor_id, conversation_id, archived):
            return
        async with self._db.transaction() as conn:
            await write_entry(
                conn,
                Action.CONVERSATION_ARCHIVED if archived else Action.CONVERSATION_UNARCHIVED,
                actor_id=actor_id,
                target_id=conversation_id,
                ip_address=ip_address,
            )


async def _lock_active_admins(conn: AsyncConnection) -> int:
    """How many active administrators there are, their rows locked until the commit."""
    query = select(users.c.id).where(users.c.role == "admin", users.c.deactivated_at.is_(None))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return len(list(await conn.execute(query)))
