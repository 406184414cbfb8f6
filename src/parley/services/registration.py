"""Who may register (DESIGN §6.3): the site's registration mode and invite links.

The mode is ``open`` (anyone), ``invite`` (only with an invite link) or ``closed``
(nobody; administrators still create accounts with ``parley create-admin``). It starts as
``PARLEY_REGISTRATION`` and administrators change it at run time (``site_settings``). An
invite works in every mode but ``closed``, so an administrator can hand one out on an open
server too (it is then simply counted).

An invite is a random token shown once (its link); only its SHA-256 is stored. A use is
counted by a conditional UPDATE inside the registering transaction (``Accounts.register``'s
claim): a single-use link registers exactly one account however many use it at once, and a
registration that fails (a taken username) uses nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import (
    InvalidInvite,
    InviteRequired,
    NotFound,
    RegistrationClosed,
    ValidationFailed,
)
from parley.ids import new_id
from parley.security.tokens import hash_random_token
from parley.services.accounts import Accounts, User
from parley.services.audit import Action, write_entry
from parley.store.db import Database
from parley.store.tables.administration import registration_invites, site_settings

RegistrationMode = Literal["open", "invite", "closed"]
MODES: tuple[RegistrationMode, ...] = ("open", "invite", "closed")
REGISTRATION_KEY = "registration"
MAX_INVITE_TOKEN = 128
MAX_INVITE_USES = 10_000
MAX_INVITE_HOURS = 24 * 365


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    revoked_at: datetime | None
    note: str

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used"
        return "active"

    def to_public(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_by": self.created_by,
            "created_at": isoformat(self.created_at),
            "expires_at": isoformat(self.expires_at) if self.expires_at else None,
            "max_uses": self.max_uses,
            "uses": self.uses,
            "note": self.note,
            "state": self.state(now),
        }


class Registration:
    def __init__(self, db: Database, accounts: Accounts, *, default_mode: RegistrationMode) -> None:
        self._db = db
        self._accounts = accounts
        self._default = default_mode

    async def mode(self) -> RegistrationMode:
        async with self._db.read() as conn:
            value = (
                await conn.execute(
                    select(site_settings.c.value).where(site_settings.c.key == REGISTRATION_KEY)
                )
            ).scalar()
        return cast(RegistrationMode, value) if value in MODES else self._default

    async def set_mode(self, mode: str, *, actor_id: str, ip_address: str = "") -> RegistrationMode:
        if mode not in MODES:
            raise ValidationFailed.field("registration", "must be open, invite or closed")
        now = utcnow()
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                update(site_settings)
                .where(site_settings.c.key == REGISTRATION_KEY)
                .values(value=mode, updated_at=now, updated_by=actor_id)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(site_settings).values(
                        key=REGISTRATION_KEY, value=mode, updated_at=now, updated_by=actor_id
                    )
                )
            await write_entry(
                conn,
                Action.SETTINGS_CHANGED,
                actor_id=actor_id,
                ip_address=ip_address,
                details={"registration": mode},
            )
        return mode

    async def register(
        self,
        username: str,
        password: str,
        display_name: str | None,
        *,
        invite: str | None,
        ip_address: str = "",
    ) -> User:
        """Register under the site's mode; an invite, when given, must be good and is used."""
        mode = await self.mode()
        if mode == "closed":
            raise RegistrationClosed()
        if mode == "invite" and not invite:
            raise InviteRequired()

        async def claim(conn: AsyncConnection) -> None:
            if invite:
                invite_id = await use_invite(conn, invite)
                await write_entry(
                    conn,
                    Action.REGISTERED,
                    target_id=invite_id,
                    ip_address=ip_address,
                    details={"username": username.strip().lower()[:32], "invite_id": invite_id},
                )

        return await self._accounts.register(username, password, display_name, claim=claim)

    # --- invites

    async def create_invite(
        self,
        actor_id: str,
        *,
        max_uses: int | None,
        expires_in_hours: int | None,
        note: str = "",
        ip_address: str = "",
    ) -> tuple[Invite, str]:
        """A new invite and its token (shown once: only its hash is kept)."""
        if max_uses is not None and not 1 <= max_uses <= MAX_INVITE_USES:
            raise ValidationFailed.field("max_uses", f"must be 1-{MAX_INVITE_USES}, or null")
        if expires_in_hours is not None and not 1 <= expires_in_hours <= MAX_INVITE_HOURS:
            raise ValidationFailed.field("expires_in_hours", f"must be 1-{MAX_INVITE_HOURS}, or null")
        if len(note) > 200:
            raise ValidationFailed.field("note", "must be at most 200 characters")
        token = secrets.token_urlsafe(24)
        now = utcnow()
        invite = Invite(
            id=new_id(),
            created_by=actor_id,
            created_at=now,
            expires_at=now + timedelta(hours=expires_in_hours) if expires_in_hours else None,
            max_uses=max_uses,
            uses=0,
            revoked_at=None,
            note=note,
        )
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(registration_invites).values(
                    id=invite.id,
                    token_hash=hash_random_token(token),
                    created_by=actor_id,
                    created_at=now,
                    expires_at=invite.expires_at,
                    max_uses=max_uses,
                    uses=0,
                    note=note,
                )
            )
            await write_entry(
                conn,
                Action.INVITE_CREATED,
                actor_id=actor_id,
                target_id=invite.id,
                ip_address=ip_address,
                details={"max_uses": max_uses, "expires_in_hours": expires_in_hours},
            )
        return invite, token

    async def list_invites(self) -> list[Invite]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(registration_invites).order_by(registration_invites.c.id.desc()).limit(500)
            )
            return [_invite(row) for row in rows]

    async def revoke_invite(self, actor_id: str, invite_id: str, *, ip_address: str = "") -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(registration_invites)
                .where(
                    registration_invites.c.id == invite_id,
                    registration_invites.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            if result.rowcount == 0:
                raise NotFound("No such invite")
            await write_entry(
                conn, Action.INVITE_REVOKED, actor_id=actor_id, target_id=invite_id, ip_address=ip_address
            )


def _invite(row: Any) -> Invite:
    return Invite(
        id=row.id,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked_at=row.revoked_at,
        note=row.note,
    )


async def use_invite(conn: AsyncConnection, token: str) -> str:
    """Count one use of the invite ``token`` (in the caller's transaction); its id. Exactly
    as many callers succeed as the invite has uses left, whatever the concurrency: the
    check and the count are one UPDATE."""
    if not 0 < len(token) <= MAX_INVITE_TOKEN:
        raise InvalidInvite()
    now = utcnow()
    result = await conn.execute(
        update(registration_invites)
        .where(
            registration_invites.c.token_hash == hash_random_token(token),
            registration_invites.c.revoked_at.is_(None),
            or_(registration_invites.c.expires_at.is_(None), registration_invites.c.expires_at > now),
            or_(
                registration_invites.c.max_uses.is_(None),
                registration_invites.c.uses < registration_invites.c.max_uses,
            ),
        )
        .values(uses=registration_invites.c.uses + 1)
        .returning(registration_invites.c.id)
    )
    invite_id = result.scalar()
    if invite_id is None:
        raise InvalidInvite()
    return str(invite_id)
