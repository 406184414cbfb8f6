"""Passwords, self-served (DESIGN §6.3): change, reset by a mailed link, reset by a link an
administrator hands over.

- Changing needs the current password; every other session of the user is revoked at once
  (their sockets closed on every node: ``Auth.revoke``), the caller's stays.
- A reset request answers the same (202) whether or not the account exists, has a verified
  address, or was asked for too often: only a mailbox learns anything. The mail goes out as
  a job (``password.reset_mail``), so the answer also takes the same time.
- A reset token is random, stored as its SHA-256, works once and for
  ``PARLEY_PASSWORD_RESET_TTL_MINUTES`` (30); an administrator's link for
  ``PARLEY_ADMIN_RESET_LINK_TTL_HOURS``. Using one revokes every session of the user and
  every other reset token of theirs. Single use holds under concurrency: the token is
  claimed by one conditional UPDATE.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Conflict, InvalidLink, NotFound, RateLimited, WrongPassword
from parley.jobs.queue import Job, JobQueue
from parley.notifications.email_addresses import user_for_verified_address, verified_address
from parley.notifications.email_kit import EmailKit
from parley.notifications.emails import password_reset_email
from parley.security.login_throttle import address_key
from parley.security.passwords import PasswordHasher, check_password_policy
from parley.security.ratelimit import Rate, RateLimiter
from parley.security.tokens import hash_random_token
from parley.services.audit import Action, write_entry
from parley.services.auth import Auth, ClientInfo
from parley.store.db import Database
from parley.store.tables.accounts import password_resets, users

RESET_MAIL_JOB = "password.reset_mail"
MAX_TOKEN = 128
MAX_IDENTIFIER = 254
# Wrong current passwords per user: a stolen session cannot guess the password at speed.
CHANGE_RATE = Rate.per_window(10, 900)
# Reset mails per account: a mailbox cannot be flooded (the excess is silently dropped).
MAIL_RATE = Rate.per_window(3, 3600)
# Reset requests per client address, whatever they name.
ADDRESS_RATE = Rate.per_window(20, 3600)


class Credentials:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        auth: Auth,
        limiter: RateLimiter,
        jobs: JobQueue,
        email: EmailKit,
        *,
        reset_ttl: timedelta,
        admin_link_ttl: timedelta,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._auth = auth
        self._limiter = limiter
        self._jobs = jobs
        self._email = email
        self._reset_ttl = reset_ttl
        self._admin_link_ttl = admin_link_ttl
        jobs.register(RESET_MAIL_JOB, self._send_reset_mail)

    # --- change

    async def change_password(
        self, user_id: str, session_id: str, current: str, new: str, client: ClientInfo
    ) -> int:
        """Change the password; every other session is revoked. How many were."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(users.c.username_key, users.c.password_hash).where(users.c.id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound("No such user")
        decision = await self._limiter.peek(f"password:change:{user_id}", CHANGE_RATE)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many wrong passwords; try later")
        if not await self._hasher.verify(row.password_hash, current):
            await self._limiter.hit(f"password:change:{user_id}", CHANGE_RATE)
            raise WrongPassword()
        check_password_policy(new, username=row.username_key)
        new_hash = await self._hasher.hash(new)
        async with self._db.transaction() as conn:
            await _set_password(conn, user_id, new_hash)
            await write_entry(
                conn,
                Action.PASSWORD_CHANGED,
                actor_id=user_id,
                target_user_id=user_id,
                ip_address=client.ip_address,
            )
        revoked = await self._auth.revoke(
            user_id, except_session_id=session_id, reason="password_change"
        )
        return len(revoked)

    # --- reset

    async def request_reset(self, identifier: str, client: ClientInfo) -> None:
        """Mail a reset link to the account's verified address, if there is one. Answers
        the same in every case but a flood from one address (``RateLimited``)."""
        decision = await self._limiter.hit(
            f"password:reset:address:{address_key(client.ip_address)}", ADDRESS_RATE
        )
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many reset requests; try later")
        text = identifier.strip()
        if not text or len(text) > MAX_IDENTIFIER or not self._email.mailer.enabled:
            return
        async with self._db.read() as conn:
            user_id = await _find_user(conn, text)
            address = await verified_address(conn, user_id) if user_id else None
        if user_id is None or address is None:
            return
        if not (await self._limiter.hit(f"password:reset:user:{user_id}", MAIL_RATE)).allowed:
            return
        async with self._db.transaction() as conn:
            await write_entry(
                conn,
                Action.PASSWORD_RESET_REQUESTED,
                target_user_id=user_id,
                ip_address=client.ip_address,
            )
        await self._jobs.enqueue(RESET_MAIL_JOB, {"user_id": user_id})

    async def issue_link(self, user_id: str, *, issued_by: str, ip_address: str = "") -> tuple[str, datetime]:
        """An administrator's reset link for ``user_id``: ``(url, expires_at)``."""
        async with self._db.transaction() as conn:
            exists = (
                await conn.execute(select(users.c.erased_at).where(users.c.id == user_id))
            ).first()
            if exists is None:
                raise NotFound("No such user")
            if exists.erased_at is not None:
                # An erased account is gone for good: a password would bring it back.
                raise Conflict("This account was erased", code="ACCOUNT_ERASED")
            token, expires_at = await _new_token(conn, user_id, self._admin_link_ttl, issued_by)
            await write_entry(
                conn,
                Action.PASSWORD_RESET_LINK,
                actor_id=issued_by,
                target_user_id=user_id,
                ip_address=ip_address,
            )
        return self._email.links.reset_password(token), expires_at

    async def confirm_reset(self, token: str, new: str, client: ClientInfo) -> str:
        """Set the password from a reset token; every session is revoked. The user's id."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            raise InvalidLink()
        token_hash = hash_random_token(token)
        now = utcnow()
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(password_resets, users.c.username_key)
                    .join(users, users.c.id == password_resets.c.user_id)
                    .where(password_resets.c.token_hash == token_hash)
                )
            ).first()
        if row is None:
            raise InvalidLink()
        if row.used_at is not None:
            raise InvalidLink("This reset link was already used")
        if row.expires_at <= now:
            raise InvalidLink("This reset link has expired")
        check_password_policy(new, username=row.username_key)
        new_hash = await self._hasher.hash(new)
        async with self._db.transaction() as conn:
            claimed = await conn.execute(
                update(password_resets)
                .where(
                    password_resets.c.token_hash == token_hash,
                    password_resets.c.used_at.is_(None),
                    password_resets.c.expires_at > utcnow(),
                )
                .values(used_at=utcnow())
            )
            if claimed.rowcount != 1:
                raise InvalidLink("This reset link was already used")
            await _set_password(conn, row.user_id, new_hash)
            await write_entry(
                conn,
                Action.PASSWORD_RESET,
                actor_id=row.user_id,
                target_user_id=row.user_id,
                ip_address=client.ip_address,
                details={"admin_link": row.issued_by is not None},
            )
        await self._auth.revoke(row.user_id, reason="password_reset")
        return str(row.user_id)

    async def _send_reset_mail(self, job: Job) -> None:
        user_id = str(job.payload["user_id"])
        async with self._db.transaction() as conn:
            user = (
                await conn.execute(
                    select(users.c.username, users.c.display_name).where(
                        users.c.id == user_id, users.c.deactivated_at.is_(None)
                    )
                )
            ).first()
            address = await verified_address(conn, user_id)
            if user is None or address is None:
                return
            token, _ = await _new_token(conn, user_id, self._reset_ttl, None)
        await self._email.mailer.send(
            password_reset_email(
                to=address,
                display_name=user.display_name,
                username=user.username,
                link=self._email.links.reset_password(token),
                valid_minutes=int(self._reset_ttl.total_seconds() // 60),
                job_id=job.id,
            )
        )


async def _find_user(conn: AsyncConnection, identifier: str) -> str | None:
    if "@" in identifier:
        return await user_for_verified_address(conn, identifier)
    row = (
        await conn.execute(
            select(users.c.id).where(
                users.c.username_key == identifier.lower(), users.c.deactivated_at.is_(None)
            )
        )
    ).first()
    return str(row.id) if row else None


async def _new_token(
    conn: AsyncConnection, user_id: str, ttl: timedelta, issued_by: str | None
) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await conn.execute(
        insert(password_resets).values(
            token_hash=hash_random_token(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + ttl,
            issued_by=issued_by,
        )
    )
    return token, now + ttl


async def _set_password(conn: AsyncConnection, user_id: str, password_hash: str) -> None:
    """The new hash; every outstanding reset token of the user stops working."""
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, updated_at=utcnow())
    )
    await conn.execute(
        delete(password_resets).where(
            password_resets.c.user_id == user_id, password_resets.c.used_at.is_(None)
        )
    )
