"""Bot accounts (DESIGN §6.6): users with ``is_bot`` that a person owns, each with one
long-lived token (``Authorization: Bot <token>``).

A bot is a real user row, so it is added to conversations, sends, reacts and appears in
member lists like anyone (marked ``is_bot``); it can never log in with a password
(``Auth.login`` skips bots, and its password hash is not one). Its token is 256 random
bits shown once, kept as a SHA-256 hash, and opens a session row: rotating the token or
deleting the bot revokes that session through ``Auth.revoke``, which stops the old token
at the next request and closes its sockets on every node (``session.revoked``).

Bots made for webhooks (``kind`` 'webhook', see ``webhooks``) have no token and are not
listed here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import Conflict, Forbidden, NotFound, UsernameTaken
from parley.ids import new_id
from parley.security.tokens import hash_random_token
from parley.services.accounts import Accounts, avatar_urls, clean_display_name, normalise_username
from parley.services.auth import BOT_TOKEN_PREFIX, Auth
from parley.services.avatars import Avatars
from parley.services.upload_sink import ReceivedFile
from parley.store.db import Database
from parley.store.tables.accounts import sessions, users
from parley.store.tables.integrations import bots

# Not an argon2 hash: verifying any password against it fails (InvalidHashError).
NO_PASSWORD = "!bot"
# A bot token's session never expires by itself; rotation and deletion end it.
TOKEN_SESSION_TTL = timedelta(days=365 * 100)
BOT = "bot"
WEBHOOK_BOT = "webhook"
BOT_NOT_FOUND = "No such bot"


class TooManyBots(Conflict):
    code = "TOO_MANY_BOTS"
    default_message = "You own as many bots as allowed (PARLEY_MAX_BOTS_PER_USER)"


@dataclass(frozen=True, slots=True)
class BotAccount:
    id: str
    username: str
    display_name: str
    owner_id: str
    created_at: datetime
    token_issued_at: datetime | None
    avatar_key: str | None = None  # its picture's version, set by its owner (services.avatars)
    profile_version: int = 0

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "avatar": avatar_urls(self.id, self.avatar_key),
            "profile_version": self.profile_version,
            "is_bot": True,
            "owner_id": self.owner_id,
            "created_at": isoformat(self.created_at),
            "token_issued_at": isoformat(self.token_issued_at) if self.token_issued_at else None,
        }


def new_bot_token() -> str:
    return BOT_TOKEN_PREFIX + secrets.token_urlsafe(32)


_BOT_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.display_name,
    users.c.avatar_key,
    users.c.profile_version,
    bots.c.owner_id,
    bots.c.created_at,
    bots.c.token_issued_at,
)


def _account(row: Any) -> BotAccount:
    return BotAccount(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        owner_id=row.owner_id,
        created_at=row.created_at,
        token_issued_at=row.token_issued_at,
        avatar_key=row.avatar_key,
        profile_version=row.profile_version,
    )


async def insert_bot_user(
    conn: AsyncConnection, owner_id: str, username: str, display_name: str, kind: str, now: datetime
) -> str:
    """Insert the user row and the bot row of a new bot; ``UsernameTaken`` if taken."""
    bot_id = new_id()
    try:
        await conn.execute(
            insert(users).values(
                id=bot_id,
                username=username,
                username_key=username,
                display_name=display_name,
                password_hash=NO_PASSWORD,
                is_admin=False,
                is_bot=True,
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityError:  # the whole transaction rolls back

        raise UsernameTaken(details=[]) from None
    await conn.execute(
        insert(bots).values(user_id=bot_id, owner_id=owner_id, kind=kind, created_at=now)
    )
    return bot_id


class Bots:
    def __init__(
        self, db: Database, auth: Auth, accounts: Accounts, avatars: Avatars, *, max_per_owner: int
    ) -> None:
        self._db = db
        self._auth = auth
        self._accounts = accounts
        self._avatars = avatars
        self._max_per_owner = max_per_owner

    async def create(
        self, owner_id: str, username: str, display_name: str | None
    ) -> tuple[BotAccount, str]:
        """A new bot owned by ``owner_id`` and its first token (shown only now)."""
        key = normalise_username(username)
        name = clean_display_name(display_name if display_name else key)
        now = utcnow()
        async with self._db.transaction() as conn:
            # Serialises one owner's creations (PostgreSQL row lock; SQLite writes are serial),
            # so a burst cannot pass the limit between count and insert.
            owner = (
                await conn.execute(
                    select(users.c.id, users.c.is_bot)
                    .where(users.c.id == owner_id, users.c.deactivated_at.is_(None))
                    .with_for_update()
                )
            ).first()
            if owner is None or owner.is_bot:
                raise Forbidden("Bots cannot own bots")
            owned = (
                await conn.execute(
                    select(func.count())
                    .select_from(bots.join(users, users.c.id == bots.c.user_id))
                    .where(
                        bots.c.owner_id == owner_id,
                        bots.c.kind == BOT,
                        users.c.deactivated_at.is_(None),
                    )
                )
            ).scalar_one()
            if owned >= self._max_per_owner:
                raise TooManyBots()
            bot_id = await insert_bot_user(conn, owner_id, key, name, BOT, now)
            token = await _issue_token(conn, bot_id, now)
            row = (await conn.execute(_select_bots().where(bots.c.user_id == bot_id))).one()
        return _account(row), token

    async def list(self, owner_id: str) -> list[BotAccount]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                _select_bots().where(bots.c.owner_id == owner_id).order_by(bots.c.created_at, bots.c.user_id)
            )
            return [_account(row) for row in rows]

    async def get(self, caller_id: str, bot_id: str) -> BotAccount:
        async with self._db.read() as conn:
            return await _owned(conn, caller_id, bot_id)

    async def rename(self, caller_id: str, bot_id: str, display_name: str) -> BotAccount:
        """A new display name, pushed as ``user.updated`` like anyone's profile change."""
        async with self._db.read() as conn:
            await _owned(conn, caller_id, bot_id)
        await self._accounts.update_profile(bot_id, display_name=display_name)
        return await self.get(caller_id, bot_id)

    async def set_picture(
        self, caller_id: str, bot_id: str, received: ReceivedFile, *, filename: str | None, declared_type: str = ""
    ) -> BotAccount:
        """A new picture for the bot (its owner or a site admin), processed like anyone's
        profile picture and pushed as ``user.updated``."""
        await self.get(caller_id, bot_id)
        await self._avatars.set_for_user(bot_id, received, filename=filename, declared_type=declared_type)
        return await self.get(caller_id, bot_id)

    async def remove_picture(self, caller_id: str, bot_id: str) -> BotAccount:
        """Back to initials."""
        await self.get(caller_id, bot_id)
        try:
            await self._avatars.remove_for_user(bot_id)
        except NotFound:
            raise NotFound("The bot has no picture") from None
        return await self.get(caller_id, bot_id)

    async def rotate_token(self, caller_id: str, bot_id: str) -> tuple[BotAccount, str]:
        """A new token; the old one stops at once and its sockets close. Concurrent
        rotations serialise on the bot row: exactly one token is left working."""
        now = utcnow()
        async with self._db.transaction() as conn:
            await _owned(conn, caller_id, bot_id, lock=True)
            token = await _issue_token(conn, bot_id, now)
            row = (await conn.execute(_select_bots().where(bots.c.user_id == bot_id))).one()
            revoked = await _revoke_other_sessions(conn, bot_id, now, "bot_token_rotated")
        await self._auth.announce_revoked(bot_id, revoked, "bot_token_rotated")
        return _account(row), token

    async def delete(self, caller_id: str, bot_id: str) -> None:
        """Deactivate the bot: its token stops, its sockets close, its messages stay."""
        now = utcnow()
        async with self._db.transaction() as conn:
            await _owned(conn, caller_id, bot_id, lock=True)
            await conn.execute(
                update(users).where(users.c.id == bot_id).values(deactivated_at=now, updated_at=now)
            )
            await conn.execute(
                update(bots).where(bots.c.user_id == bot_id).values(token_hash=None, session_id=None)
            )
        await self._auth.revoke(bot_id, reason="bot_deleted")


def _select_bots() -> Any:
    return (
        select(*_BOT_COLUMNS)
        .join(users, users.c.id == bots.c.user_id)
        .where(bots.c.kind == BOT, users.c.deactivated_at.is_(None))
    )


async def _owned(conn: AsyncConnection, caller_id: str, bot_id: str, *, lock: bool = False) -> BotAccount:
    """The bot if ``caller_id`` owns it or is a site admin; ``NotFound`` otherwise (another
    user's bot is not even confirmed to exist)."""
    query = _select_bots().where(bots.c.user_id == bot_id)
    if lock:
        query = query.with_for_update(of=bots)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(BOT_NOT_FOUND)
    if row.owner_id != caller_id:
        is_admin = (
            await conn.execute(select(users.c.is_admin).where(users.c.id == caller_id))
        ).scalar_one_or_none()
        if not is_admin:
            raise NotFound(BOT_NOT_FOUND)
    return _account(row)


async def _revoke_other_sessions(
    conn: AsyncConnection, bot_id: str, now: datetime, reason: str
) -> list[str]:
    """Revoke every session of the bot but its current token's, in this transaction."""
    current = select(bots.c.session_id).where(bots.c.user_id == bot_id).scalar_subquery()
    result = await conn.execute(
        update(sessions)
        .where(
            sessions.c.user_id == bot_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.id != func.coalesce(current, ""),
        )
        .values(revoked_at=now, revoked_reason=reason)
        .returning(sessions.c.id)
    )
    return sorted(row.id for row in result)


async def _issue_token(conn: AsyncConnection, bot_id: str, now: datetime) -> str:
    """A fresh token and the session it opens; the previous token's hash is replaced (it
    stops matching at once), its session is revoked by the caller after the commit."""
    token = new_bot_token()
    session_id = new_id()
    await conn.execute(
        insert(sessions).values(
            id=session_id,
            user_id=bot_id,
            device_name="bot token",
            user_agent="",
            ip_address="",
            created_at=now,
            last_used_at=now,
            expires_at=now + TOKEN_SESSION_TTL,
        )
    )
    await conn.execute(
        update(bots)
        .where(bots.c.user_id == bot_id)
        .values(token_hash=hash_random_token(token), session_id=session_id, token_issued_at=now)
    )
    return token
