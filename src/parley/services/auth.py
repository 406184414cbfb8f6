"""Authentication and sessions (devices): login, refresh with rotation, logout, revocation.

A session is one logged-in device. It holds one current refresh token; refreshing rotates
it. Presenting a rotated token again means it was copied: the whole session is revoked
(RFC 6819 §5.2.2.3) — except within a few seconds of the rotation, where it is a client
racing itself (two tabs, a reload). Access tokens are JWTs naming the session, checked
against it on use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidToken,
    NotFound,
    RefreshTokenReused,
    SessionRevoked,
)
from parley.ids import new_id
from parley.security.login_throttle import LoginThrottle
from parley.security.passwords import PasswordHasher
from parley.security.tokens import AccessClaims, TokenSigner, hash_random_token, new_refresh_token
from parley.services.accounts import User, fetch_user
from parley.services.batching import READS_CLOSE_SECONDS, Batcher
from parley.services.events import Event, EventSink
from parley.services.open_sessions import (
    LAST_USED_RESOLUTION,
    IdentifyRead,
    ReadForUsers,
    SessionTouches,
    open_session,
    open_sessions_then,
)
from parley.services.session_cache import SessionCache
from parley.store.db import Database
from parley.store.tables.accounts import refresh_tokens, sessions, users
from parley.store.tables.integrations import bots
from parley.wire.events import EventType

T = TypeVar("T")

# The event naming revoked sessions; the gateway closes their sockets (4001) on every node.

@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip_address: str = ""
    user_agent: str = ""
    device_name: str = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user and the session (device) their token belongs to."""

    user_id: str
    session_id: str
    # A bot authenticated by its token (``Authorization: Bot``): allowed a narrower API
    # (``integrations.bot_scope``) and nothing it was not added to (DESIGN §6.6).
    is_bot: bool = False
    # When the access token that authenticated the call expires (None: a bot token, which
    # does not): a socket closes then unless it re-identifies.
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PasswordChecked:
    """A login whose password was right: who, and the username it was typed as."""

    user_id: str
    username_key: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    device_token: str | None = None  # logins only: marks this device as known

    def to_public(self) -> dict[str, Any]:
        public = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }
        if self.device_token is not None:
            public["device_token"] = self.device_token
        return public


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    device_name: str
    user_agent: str
    ip_address: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime

    def to_public(self, current_session_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_name": self.device_name,
            "user_agent": self.user_agent,
            "ip_address": self.ip_address,
            "created_at": isoformat(self.created_at),
            "last_used_at": isoformat(self.last_used_at),
            "expires_at": isoformat(self.expires_at),
            "current": self.id == current_session_id,
        }


# Bot tokens: looked up by their hash; the session they open must still be open.
_BOT_TOKEN_STATE = (
    select(
        bots.c.user_id,
        bots.c.session_id,
        sessions.c.revoked_at,
        sessions.c.last_used_at,
        users.c.deactivated_at,
    )
    .join(users, users.c.id == bots.c.user_id)
    .join(sessions, sessions.c.id == bots.c.session_id)
    .where(bots.c.token_hash == bindparam("token_hash"))
)
# Bot tokens start with this, so a token's kind is known without a lookup (the gateway's
# identify takes both kinds in one field).
BOT_TOKEN_PREFIX = "pbot_"


def _principal_of(claims: AccessClaims) -> Principal:
    return Principal(user_id=claims.user_id, session_id=claims.session_id, expires_at=claims.expires_at)


class Auth:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        signer: TokenSigner,
        throttle: LoginThrottle,
        events: EventSink,
        *,
        refresh_ttl: timedelta,
        reuse_grace: timedelta = timedelta(seconds=10),
        session_cache_seconds: float = 0.0,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._signer = signer
        self._throttle = throttle
        self._events = events
        self._refresh_ttl = refresh_ttl
        self._reuse_grace = reuse_grace
        self._touches = SessionTouches(db)
        self._open_sessions = SessionCache(session_cache_seconds)
        # Identifies arriving while one is being read are read together (a reconnect storm):
        # one transaction and one hand-off for all of them.
        self._identify_reads: Batcher[IdentifyRead, tuple[datetime, Any]] = Batcher.reads(
            self._read_identities, name="identify reads", max_batch=128
        )

    async def _read_identities(
        self, batch: Sequence[IdentifyRead]
    ) -> list[tuple[datetime, Any] | BaseException]:
        return await self._db.read_sync(open_sessions_then, batch)

    async def close(self) -> None:
        """Read the identifies queued, refuse new ones (shutdown)."""
        await self._identify_reads.close(timeout=READS_CLOSE_SECONDS)

    # --- login and tokens

    async def login(
        self,
        username: str,
        password: str,
        client: ClientInfo,
        *,
        device_token: str | None = None,
    ) -> tuple[TokenPair, User]:
        """Check the password and open a session (no second factor: ``services.login``
        adds it for the API). The pair returned carries a fresh device token."""
        checked = await self.check_password(username, password, client, device_token=device_token)
        return await self.finish_login(checked, client)

    async def check_password(
        self,
        username: str,
        password: str,
        client: ClientInfo,
        *,
        device_token: str | None = None,
    ) -> PasswordChecked:
        """The first step of a login: the attempt is counted before the password is checked
        (``security.login_throttle`` has the policy); the error never says which of
        username or password was wrong. A device token presented from an earlier login
        marks the device as known to the throttle."""
        key = username.strip().lower()[:64]
        # Throttled first, before any database read: a flood of refused guesses costs
        # nothing but the limiter. The device token names its username for that reason
        # (usernames are never reused, so the name identifies the user it was issued to).
        device = self._signer.read_device(device_token) if device_token else None
        known_device = device.device_id if device is not None and device.username == key else None
        reservation = await self._throttle.reserve(key, client.ip_address, device_id=known_device)
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.id, users.c.password_hash).where(
                        users.c.username_key == key,
                        users.c.deactivated_at.is_(None),
                        users.c.is_bot.is_(False),  # bots never log in interactively
                    )
                )
            ).first()
        valid = await self._hasher.verify(row.password_hash if row else None, password)
        if row is None or not valid:
            raise InvalidCredentials()
        await self._throttle.succeeded(reservation)
        if self._hasher.needs_rehash(row.password_hash):
            new_hash = await self._hasher.hash(password)
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(users).where(users.c.id == row.id).values(password_hash=new_hash)
                )
        return PasswordChecked(user_id=row.id, username_key=key)

    async def finish_login(
        self, checked: PasswordChecked, client: ClientInfo
    ) -> tuple[TokenPair, User]:
        """Open the session of a login whose every factor passed, with a device token."""
        tokens, user = await self.open_session(checked.user_id, client)
        device = self._signer.issue_device(checked.user_id, checked.username_key)
        return replace(tokens, device_token=device), user

    async def open_session(self, user_id: str, client: ClientInfo) -> tuple[TokenPair, User]:
        now = utcnow()
        session_id = new_id()
        refresh = new_refresh_token()
        async with self._db.transaction() as conn:
            user = await fetch_user(conn, user_id)
            if user is None:
                raise InvalidCredentials()
            await conn.execute(
                insert(sessions).values(
                    id=session_id,
                    user_id=user_id,
                    device_name=client.device_name[:200],
                    user_agent=client.user_agent[:400],
                    ip_address=client.ip_address[:64],
                    created_at=now,
                    last_used_at=now,
                    expires_at=now + self._refresh_ttl,
                )
            )
            await conn.execute(
                insert(refresh_tokens).values(
                    token_hash=hash_random_token(refresh), session_id=session_id, created_at=now
                )
            )
        return self._pair(user_id, session_id, refresh), user

    async def refresh(self, refresh_token: str, client: ClientInfo) -> TokenPair:
        """Rotate: the presented token stops working and a new pair is returned."""
        now = utcnow()
        token_hash = hash_random_token(refresh_token)
        reused = False
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(
                        refresh_tokens.c.session_id,
                        refresh_tokens.c.rotated_at,
                        sessions.c.user_id,
                        sessions.c.revoked_at,
                        sessions.c.expires_at,
                        users.c.deactivated_at,
                    )
                    .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
                    .join(users, users.c.id == sessions.c.user_id)
                    .where(refresh_tokens.c.token_hash == token_hash)
                )
            ).first()
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise InvalidRefreshToken()
            if row.deactivated_at is not None:
                raise SessionRevoked("This account has been deactivated")
            # Only one caller can move the token from current to rotated.
            claimed = await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.token_hash == token_hash,
                    refresh_tokens.c.rotated_at.is_(None),
                )
                .values(rotated_at=now)
            )
            raced = claimed.rowcount != 1 and row.rotated_at is None
            within_grace = row.rotated_at is not None and now - row.rotated_at <= self._reuse_grace
            if claimed.rowcount != 1 and not (raced or within_grace):
                await _revoke(conn, row.session_id, "refresh_reuse", now)
                reused = True
            else:
                # A second use within seconds of the first is two tabs or a reload racing
                # the same refresh, not theft: it gets its own new token (RFC 9700 §4.14.2
                # allows such a grace period). Later reuse still revokes the session.
                new_token = new_refresh_token()
                await conn.execute(
                    insert(refresh_tokens).values(
                        token_hash=hash_random_token(new_token),
                        session_id=row.session_id,
                        created_at=now,
                    )
                )
                values: dict[str, Any] = {
                    "last_used_at": now,
                    "expires_at": now + self._refresh_ttl,
                }
                if client.ip_address:
                    values["ip_address"] = client.ip_address[:64]
                await conn.execute(
                    update(sessions).where(sessions.c.id == row.session_id).values(**values)
                )
        # Raised after the transaction so that the revocation above is committed.
        if reused:
            await self._announce_revoked(row.user_id, [row.session_id], "refresh_reuse")
            raise RefreshTokenReused()
        return self._pair(row.user_id, row.session_id, new_token)

    def _pair(self, user_id: str, session_id: str, refresh: str) -> TokenPair:
        return TokenPair(
            access_token=self._signer.issue_access(user_id, session_id),
            refresh_token=refresh,
            expires_in=int(self._signer.access_ttl.total_seconds()),
            session_id=session_id,
        )

    async def authenticate(self, access_token: str) -> Principal:
        """Verify the JWT, then that its session is still open and its user still active
        (read from the database, or found open less than a second ago: ``SessionCache``)."""
        claims = self._signer.verify_access(access_token)
        now = utcnow()
        session_id, user_id = claims.session_id, claims.user_id
        cache = self._open_sessions
        last_used_at = cache.last_used_at(session_id, user_id)
        if last_used_at is None:
            asked_at, evictions = cache.now(), cache.evictions
            # One hand-off to a database thread (read_sync), not the async driver's several.
            last_used_at = await self._db.read_sync(open_session, session_id, user_id)
            cache.found_open(
                session_id, user_id, last_used_at, asked_at=asked_at, evictions_before=evictions
            )
        if now - last_used_at > LAST_USED_RESOLUTION:
            await self._touches.touch(session_id, now)
            cache.used(session_id, now)
        return _principal_of(claims)

    async def authenticate_bot(self, bot_token: str) -> Principal:
        """A bot's long-lived token (``integrations.bots``): its hash names the bot, whose
        token session must be open and whose account active."""
        if not bot_token.startswith(BOT_TOKEN_PREFIX):
            raise InvalidToken("Not a bot token")
        now = utcnow()
        async with self._db.read() as conn:
            row = (
                await conn.execute(_BOT_TOKEN_STATE, {"token_hash": hash_random_token(bot_token)})
            ).first()
        if row is None or row.revoked_at is not None or row.deactivated_at is not None:
            raise InvalidToken("The bot token is not valid (revoked or rotated?)")
        if now - row.last_used_at > LAST_USED_RESOLUTION:
            await self._touches.touch(row.session_id, now)
        return Principal(user_id=row.user_id, session_id=row.session_id, is_bot=True)

    async def identify(
        self,
        token: str,
        claim: Callable[[Principal], Awaitable[None]],
        read: ReadForUsers[T],
    ) -> tuple[Principal, T]:
        """Authenticate a gateway ``identify`` (an access token or a bot token) and read
        what it needs, with one database hand-off for an access token (shared with the
        identifies read at the same moment: one transaction for a burst of them).

        The token's signature names the user and session; ``claim`` runs next (the gateway
        subscribes the socket to the user, so that what commits after the read below reaches
        it); then one read transaction checks that the session is open and the user active,
        as :meth:`authenticate` does, and runs ``read(conn, [user_id])`` (with the other
        identifies' users: one statement for all of them). A bot token is found
        by its hash, so it is checked first and read second, as before.
        ``AuthenticationFailed`` (before or after ``claim``) when the token does not hold."""
        if token.startswith(BOT_TOKEN_PREFIX):
            principal = await self.authenticate_bot(token)
            await claim(principal)
            found = await self._db.read_sync(read, [principal.user_id])
            return principal, found[principal.user_id]
        claims = self._signer.verify_access(token)
        principal = _principal_of(claims)
        await claim(principal)
        now = utcnow()
        request = IdentifyRead(principal.session_id, principal.user_id, read)
        last_used_at, result = await self._identify_reads.submit(request)
        if now - last_used_at > LAST_USED_RESOLUTION:
            await self._touches.touch(claims.session_id, now)
        return principal, cast(T, result)

    async def authenticate_any(self, token: str) -> Principal:
        """An access token or a bot token (the gateway's ``identify`` takes either)."""
        if token.startswith(BOT_TOKEN_PREFIX):
            return await self.authenticate_bot(token)
        return await self.authenticate(token)

    # --- sessions (devices)

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        now = utcnow()
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(sessions)
                .where(
                    sessions.c.user_id == user_id,
                    sessions.c.revoked_at.is_(None),
                    sessions.c.expires_at > now,
                )
                .order_by(sessions.c.last_used_at.desc())
            )
            return [
                SessionInfo(
                    id=r.id,
                    device_name=r.device_name,
                    user_agent=r.user_agent,
                    ip_address=r.ip_address,
                    created_at=r.created_at,
                    last_used_at=r.last_used_at,
                    expires_at=r.expires_at,
                )
                for r in rows
            ]

    async def revoke(
        self,
        user_id: str,
        *,
        session_ids: Sequence[str] | None = None,
        except_session_id: str | None = None,
        reason: str = "logout",
    ) -> list[str]:
        """Revoke sessions of ``user_id`` — those named, or every open one but
        ``except_session_id`` — and close their sockets at once, on every node.

        The one way to end sessions: logout, logout everywhere, refresh-token reuse, and
        whatever else must cut a user off (password change, admin deactivation, erasure)
        call this. After the commit, a ``session.revoked`` event names the sessions: each
        node's gateway closes their sockets with 4001 (the bus carries it to every node
        with a socket of the user). Their access tokens fail at the next request; their
        refresh tokens never work again. Returns the ids revoked (already revoked ones and
        other users' are left out)."""
        conditions = [sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)]
        if session_ids is not None:
            conditions.append(sessions.c.id.in_(list(session_ids)))
        if except_session_id is not None:
            conditions.append(sessions.c.id != except_session_id)
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(sessions)
                .where(and_(*conditions))
                .values(revoked_at=utcnow(), revoked_reason=reason)
                .returning(sessions.c.id)
            )
            revoked = sorted(row.id for row in result)
        await self._announce_revoked(user_id, revoked, reason)
        return revoked

    async def announce_revoked(self, user_id: str, session_ids: list[str], reason: str) -> None:
        """Close the sockets of sessions revoked in a caller's own transaction (after it
        committed), as ``revoke`` does for its own."""
        await self._announce_revoked(user_id, session_ids, reason)

    async def _announce_revoked(self, user_id: str, session_ids: list[str], reason: str) -> None:
        self._open_sessions.evict(session_ids)  # on this node, refused from the next request
        if session_ids:
            data = {"user_id": user_id, "session_ids": session_ids, "reason": reason}
            await self._events.emit([Event(EventType.SESSION_REVOKED, data, user_ids=(user_id,))])

    async def revoke_session(self, user_id: str, session_id: str, reason: str = "logout") -> None:
        if not await self.revoke(user_id, session_ids=[session_id], reason=reason):
            raise NotFound("No such session")

    async def revoke_all(self, user_id: str, *, except_session_id: str | None = None) -> int:
        revoked = await self.revoke(user_id, except_session_id=except_session_id, reason="logout_all")
        return len(revoked)


async def _revoke(conn: AsyncConnection, session_id: str, reason: str, now: datetime) -> None:
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
