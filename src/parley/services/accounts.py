"""Accounts: registration, profiles, lookup and search of users.

A profile change is pushed as ``user.updated`` ``{user}`` to the user and everyone who
knows them (``services.audience``), so names change on every screen without a reload.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import NotFound, UsernameTaken, ValidationFailed
from parley.ids import new_id
from parley.security.passwords import PasswordHasher, check_password_policy
from parley.services.audience import read_acquaintances
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.one_of import one_of
from parley.store.tables.accounts import NEXT_PROFILE_VERSION, sessions, users
from parley.wire.events import EventType

USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,32}$")
MAX_DISPLAY_NAME = 64
MAX_SEARCH_QUERY = 100


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    display_name: str
    is_admin: bool
    created_at: datetime
    last_seen_at: datetime | None
    role: str = "user"  # the site role (services.administration): user, moderator or admin
    is_bot: bool = False  # a bot account (parley.integrations), shown as such everywhere
    avatar_key: str | None = None  # the profile picture's version (services.avatars)
    # Counts the changes to what others see (name, picture, erasure): a client keeps the
    # highest it has seen, so a slow read answered after a newer user.updated cannot undo it.
    profile_version: int = 0

    @classmethod
    def from_row(cls, row: Row[Any] | Any) -> User:
        return cls(
            id=row.id,
            username=row.username,
            display_name=row.display_name,
            is_admin=row.role == "admin",
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            role=row.role,
            is_bot=bool(row.is_bot),
            avatar_key=row.avatar_key,
            profile_version=row.profile_version,
        )

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "created_at": isoformat(self.created_at),
            "is_bot": self.is_bot,
            "avatar": avatar_urls(self.id, self.avatar_key),
            "profile_version": self.profile_version,
        }

    def to_private(self) -> dict[str, Any]:
        return self.to_public() | {"is_admin": self.is_admin, "role": self.role}


AVATAR_SIZES = {"small": 64, "large": 256}


def avatar_urls(user_id: str, avatar_key: str | None) -> dict[str, str] | None:
    """Where a user's profile picture is served, per size; None: none (show initials).
    Public, unguessable URLs (the key changes with every new picture): an ``<img>`` sends no
    bearer token, and a new picture is a new URL, so each can be cached for good."""
    if avatar_key is None:
        return None
    return {
        name: f"/api/v1/avatars/{user_id}/{avatar_key}/{size}" for name, size in AVATAR_SIZES.items()
    }


def group_avatar_urls(conversation_id: str, avatar_key: str | None) -> dict[str, str] | None:
    """Where a group's picture is served, per size (as :func:`avatar_urls`); None: the
    initial is shown."""
    if avatar_key is None:
        return None
    return {
        name: f"/api/v1/group-avatars/{conversation_id}/{avatar_key}/{size}"
        for name, size in AVATAR_SIZES.items()
    }


def normalise_username(raw: str) -> str:
    """Usernames are compared and stored lower-case: "Alice" and "alice" are one account."""
    username = raw.strip().lower()
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValidationFailed.field(
            "username", "must be 3-32 characters of a-z, 0-9, underscore, dot or hyphen"
        )
    return username


def clean_display_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise ValidationFailed.field(
            "display_name", f"must be 1-{MAX_DISPLAY_NAME} characters"
        )
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in name):
        raise ValidationFailed.field("display_name", "must not contain control characters")
    return name


_USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.display_name,
    users.c.role,
    users.c.avatar_key,
    users.c.created_at,
    users.c.last_seen_at,
    users.c.is_bot,
    users.c.profile_version,
)

# Runs inside the registering transaction (an invite's use is counted there: services.
# registration), so a refused claim registers nobody.
RegistrationClaim = Callable[[AsyncConnection], Awaitable[None]]


async def fetch_user(conn: AsyncConnection, user_id: str) -> User | None:
    return await conn.run_sync(read_user, user_id)


_ACTIVE_USER = select(*_USER_COLUMNS).where(  # built once: read on every user lookup
    users.c.id == bindparam("user_id"), users.c.deactivated_at.is_(None)
)


# Users with their sessions among those given, outer-joined: whether each is open comes with
# the user in one statement, for a burst of reconnecting sockets' ``ready`` at once.
_ACTIVE_USERS_IN_SESSIONS = select(
    *_USER_COLUMNS, sessions.c.id.label("session_id"), sessions.c.revoked_at
).select_from(
    users.outerjoin(
        sessions,
        and_(one_of(sessions.c.id, "session_ids"), sessions.c.user_id == users.c.id),
    )
).where(one_of(users.c.id, "user_ids"), users.c.deactivated_at.is_(None))


def read_users_in_sessions(
    conn: Connection, user_ids: Sequence[str], session_ids: Sequence[str]
) -> tuple[dict[str, User], set[tuple[str, str]]]:
    """The active users among ``user_ids``, and which of ``session_ids`` are open, as
    (user id, session id): a session is only ever its own user's."""
    found: dict[str, User] = {}
    open_sessions: set[tuple[str, str]] = set()
    params = {"user_ids": list(user_ids), "session_ids": list(session_ids)}
    for row in conn.execute(_ACTIVE_USERS_IN_SESSIONS, params):
        if row.id not in found:
            found[row.id] = User.from_row(row)
        if row.session_id is not None and row.revoked_at is None:
            open_sessions.add((row.id, row.session_id))
    return found, open_sessions


def read_user(conn: Connection, user_id: str) -> User | None:
    """The active user ``user_id`` (synchronous: for ``Database.read_sync`` work)."""
    row = conn.execute(_ACTIVE_USER, {"user_id": user_id}).first()
    return User.from_row(row) if row else None


async def fetch_users(conn: AsyncConnection, user_ids: set[str]) -> dict[str, User]:
    if not user_ids:
        return {}
    rows = await conn.execute(select(*_USER_COLUMNS).where(users.c.id.in_(user_ids)))
    return {row.id: User.from_row(row) for row in rows}


class Accounts:
    def __init__(self, db: Database, hasher: PasswordHasher, events: EventSink) -> None:
        self._db = db
        self._hasher = hasher
        self._events = events

    async def register(
        self,
        username: str,
        password: str,
        display_name: str | None = None,
        *,
        is_admin: bool = False,
        claim: RegistrationClaim | None = None,
    ) -> User:
        key = normalise_username(username)
        name = clean_display_name(display_name if display_name else username.strip())
        check_password_policy(password, username=key)
        password_hash = await self._hasher.hash(password)
        now = utcnow()
        user_id = new_id()
        role = "admin" if is_admin else "user"
        try:
            async with self._db.transaction() as conn:
                if claim is not None:
                    await claim(conn)
                await conn.execute(
                    insert(users).values(
                        id=user_id,
                        username=key,
                        username_key=key,
                        display_name=name,
                        password_hash=password_hash,
                        is_admin=is_admin,
                        role=role,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise UsernameTaken(details=[]) from None
        return User(user_id, key, name, is_admin, now, None, role)

    async def get(self, user_id: str) -> User:
        async with self._db.read() as conn:
            user = await fetch_user(conn, user_id)
        if user is None:
            raise NotFound("No such user")
        return user

    async def get_by_username(self, username: str) -> User:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(*_USER_COLUMNS).where(
                        users.c.username_key == username.strip().lower(),
                        users.c.deactivated_at.is_(None),
                    )
                )
            ).first()
        if row is None:
            raise NotFound("No such user")
        return User.from_row(row)

    async def update_profile(self, user_id: str, *, display_name: str | None) -> User:
        if display_name is None:
            return await self.get(user_id)
        name = clean_display_name(display_name)
        async with self._db.transaction() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(display_name=name, updated_at=utcnow(), profile_version=NEXT_PROFILE_VERSION)
            )
        return await self.announce(user_id)

    async def announce(self, user_id: str) -> User:
        """Push the user's profile as it is now (``user.updated``) to them and everyone who
        knows them; the profile."""
        user = await self.get(user_id)
        audience = await self._db.read_sync(read_acquaintances, user_id)
        await self._events.emit(
            [Event(EventType.USER_UPDATED, {"user": user.to_public()}, user_ids=(user_id, *sorted(audience)))]
        )
        return user

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        """For ``parley create-admin``; the admin API goes through ``Administration``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(is_admin=is_admin, role="admin" if is_admin else "user")
            )

    async def search(self, query: str, *, limit: int = 20) -> list[User]:
        """Users whose username or display name starts with (or contains) ``query``.

        Prefix matches rank first; LIKE wildcards typed by the user are matched literally.
        """
        text = query.strip().lower()
        if not text:
            return []
        if len(text) > MAX_SEARCH_QUERY:
            raise ValidationFailed.field("q", f"must be at most {MAX_SEARCH_QUERY} characters")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        contains = f"%{escaped}%"
        prefix = f"{escaped}%"
        lowered_name = func.lower(users.c.display_name)
        starts = or_(
            users.c.username_key.like(prefix, escape="\\"),
            lowered_name.like(prefix, escape="\\"),
        )
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(*_USER_COLUMNS)
                .where(
                    users.c.deactivated_at.is_(None),
                    or_(
                        users.c.username_key.like(contains, escape="\\"),
                        lowered_name.like(contains, escape="\\"),
                    ),
                )
                .order_by(starts.desc(), users.c.username_key)
                .limit(limit)
            )
            return [User.from_row(row) for row in rows]
