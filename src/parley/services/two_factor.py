"""Two-factor authentication: TOTP (RFC 6238, pyotp) and recovery codes (DESIGN §6.3).

Enrolment is two steps: ``enrol`` makes a secret (and its otpauth URI and QR code, segno)
kept *pending*; ``confirm`` with a first code from the app switches 2FA on and returns ten
recovery codes, shown once. Disabling needs a code or a recovery code.

Guarantees:

- **No replay.** A TOTP code is accepted for its 30-second step and the one on either side
  (clock drift), and only for a step later than the last accepted one: a compare-and-set on
  ``last_step`` admits exactly one of two racing uses of a code.
- **Recovery codes work once.** Stored as Argon2 hashes; the one that matches is claimed by
  a conditional UPDATE, so a burst of parallel uses of one code admits exactly one.
- **Throttled.** Every attempt (login step, confirm, disable) counts against the user's
  budget (``ATTEMPT_RATE``), before the code is looked at: six digits cannot be guessed at
  speed, and a parallel burst cannot outrun the count.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pyotp
import segno
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import Conflict, InvalidCode, NotFound, RateLimited, ValidationFailed
from parley.ids import new_id
from parley.security.passwords import PasswordHasher
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.audit import Action, write_entry
from parley.store.db import Database
from parley.store.tables.accounts import recovery_codes, totp_credentials, users

STEP_SECONDS = 30  # RFC 6238's default, what every authenticator app uses
DRIFT_STEPS = 1  # accept the step before and after: phones' clocks drift
RECOVERY_CODES = 10
# Attempts per user per window, counted before the code is checked.
ATTEMPT_RATE = Rate.per_window(10, 900)
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed by hand


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str  # a data: URI of an SVG image

    def to_public(self) -> dict[str, Any]:
        return {"secret": self.secret, "otpauth_uri": self.otpauth_uri, "qr_svg": self.qr_svg}


def normalise_recovery_code(raw: str) -> str:
    return "".join(ch for ch in raw.lower() if ch not in " -")


def new_recovery_code() -> str:
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step ``code`` belongs to (within the drift), or None."""
    digits = code.strip().replace(" ", "")
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


class TwoFactor:
    def __init__(
        self, db: Database, hasher: PasswordHasher, limiter: RateLimiter, *, issuer: str
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._limiter = limiter
        self._issuer = issuer

    async def status(self, user_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(totp_credentials.c.confirmed_at).where(totp_credentials.c.user_id == user_id)
                )
            ).first()
            left = len(
                list(
                    await conn.execute(
                        select(recovery_codes.c.id).where(
                            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
                        )
                    )
                )
            )
        enabled = row is not None and row.confirmed_at is not None
        return {
            "enabled": enabled,
            "pending": row is not None and not enabled,
            "recovery_codes_left": left if enabled else 0,
        }

    async def is_enabled(self, user_id: str) -> bool:
        async with self._db.read() as conn:
            return await _enabled(conn, user_id)

    async def enrol(self, user_id: str) -> Enrolment:
        """A new pending secret (replacing a pending one); 409 when 2FA is already on."""
        secret = pyotp.random_base32()
        async with self._db.transaction() as conn:
            username = (await conn.execute(select(users.c.username).where(users.c.id == user_id))).scalar()
            if username is None:
                raise NotFound("No such user")
            if await _enabled(conn, user_id):
                raise Conflict("Two-factor authentication is already on", code="TOTP_ALREADY_ENABLED")
            await conn.execute(delete(totp_credentials).where(totp_credentials.c.user_id == user_id))
            await conn.execute(
                insert(totp_credentials).values(user_id=user_id, secret=secret, created_at=utcnow())
            )
        uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
            name=str(username), issuer_name=self._issuer
        )
        qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=qr)

    async def confirm(self, user_id: str, code: str, *, ip_address: str = "") -> list[str]:
        """Switch 2FA on with a first code from the app; the recovery codes (shown once)."""
        await self._count_attempt(user_id)
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(totp_credentials).where(totp_credentials.c.user_id == user_id))
            ).first()
        if row is None:
            raise Conflict("Start with POST /api/v1/users/me/2fa", code="TOTP_NOT_ENROLLED")
        if row.confirmed_at is not None:
            raise Conflict("Two-factor authentication is already on", code="TOTP_ALREADY_ENABLED")
        step = matching_step(row.secret, code, time.time())
        if step is None:
            raise InvalidCode()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = [await self._hasher.hash(normalise_recovery_code(c)) for c in codes]
        async with self._db.transaction() as conn:
            switched = await conn.execute(
                update(totp_credentials)
                .where(
                    totp_credentials.c.user_id == user_id,
                    totp_credentials.c.secret == row.secret,
                    totp_credentials.c.confirmed_at.is_(None),
                )
                .values(confirmed_at=utcnow(), last_step=step)
            )
            if switched.rowcount != 1:  # confirmed (or re-enrolled) meanwhile
                raise Conflict("Two-factor authentication changed meanwhile", code="TOTP_ALREADY_ENABLED")
            await _replace_codes(conn, user_id, hashes)
            await write_entry(
                conn, Action.TOTP_ENABLED, actor_id=user_id, target_user_id=user_id, ip_address=ip_address
            )
        return codes

    async def verify(
        self,
        user_id: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        ip_address: str = "",
    ) -> str:
        """Check a second factor of a user with 2FA on: ``"totp"`` or ``"recovery_code"``,
        else ``InvalidCode``. A code accepted here never works again."""
        if (code is None) == (recovery_code is None):
            raise ValidationFailed.field("code", "send either code or recovery_code")
        await self._count_attempt(user_id)
        if code is not None:
            await self._use_totp(user_id, code)
            return "totp"
        assert recovery_code is not None
        await self._use_recovery_code(user_id, recovery_code, ip_address)
        return "recovery_code"

    async def disable(
        self,
        user_id: str,
        *,
        code: str | None,
        recovery_code: str | None,
        ip_address: str = "",
    ) -> None:
        if not await self.is_enabled(user_id):
            raise Conflict("Two-factor authentication is off", code="TOTP_NOT_ENABLED")
        await self.verify(user_id, code=code, recovery_code=recovery_code, ip_address=ip_address)
        async with self._db.transaction() as conn:
            await conn.execute(delete(totp_credentials).where(totp_credentials.c.user_id == user_id))
            await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
            await write_entry(
                conn, Action.TOTP_DISABLED, actor_id=user_id, target_user_id=user_id, ip_address=ip_address
            )

    async def renew_recovery_codes(self, user_id: str, code: str, *, ip_address: str = "") -> list[str]:
        """Ten new recovery codes (the old ones stop working), for a current TOTP code."""
        if not await self.is_enabled(user_id):
            raise Conflict("Two-factor authentication is off", code="TOTP_NOT_ENABLED")
        await self.verify(user_id, code=code)
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        hashes = [await self._hasher.hash(normalise_recovery_code(c)) for c in codes]
        async with self._db.transaction() as conn:
            await _replace_codes(conn, user_id, hashes)
            await write_entry(
                conn,
                Action.RECOVERY_CODES_RENEWED,
                actor_id=user_id,
                target_user_id=user_id,
                ip_address=ip_address,
            )
        return codes

    # --- internals

    async def _count_attempt(self, user_id: str) -> None:
        decision = await self._limiter.hit(f"2fa:user:{user_id}", ATTEMPT_RATE)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many two-factor attempts; try later")

    async def _use_totp(self, user_id: str, code: str) -> None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(totp_credentials.c.secret).where(
                        totp_credentials.c.user_id == user_id,
                        totp_credentials.c.confirmed_at.is_not(None),
                    )
                )
            ).first()
        step = matching_step(row.secret, code, time.time()) if row else None
        if step is None:
            raise InvalidCode()
        async with self._db.transaction() as conn:
            claimed = await conn.execute(
                update(totp_credentials)
                .where(
                    totp_credentials.c.user_id == user_id,
                    or_(totp_credentials.c.last_step.is_(None), totp_credentials.c.last_step < step),
                )
                .values(last_step=step)
            )
        if claimed.rowcount != 1:
            raise InvalidCode("This code was already used; wait for the next one")

    async def _use_recovery_code(self, user_id: str, raw: str, ip_address: str) -> None:
        candidate = normalise_recovery_code(raw)
        if not 0 < len(candidate) <= 32:
            raise InvalidCode()
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(
                    select(recovery_codes.c.id, recovery_codes.c.code_hash).where(
                        recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
                    )
                )
            )
        matched = None
        for row in rows:
            if await self._hasher.verify(row.code_hash, candidate):
                matched = row.id
                break
        if matched is None:
            raise InvalidCode()
        async with self._db.transaction() as conn:
            claimed = await conn.execute(
                update(recovery_codes)
                .where(recovery_codes.c.id == matched, recovery_codes.c.used_at.is_(None))
                .values(used_at=utcnow())
            )
            if claimed.rowcount != 1:
                raise InvalidCode("This recovery code was already used")
            await write_entry(
                conn,
                Action.RECOVERY_CODE_USED,
                actor_id=user_id,
                target_user_id=user_id,
                ip_address=ip_address,
            )


async def _enabled(conn: AsyncConnection, user_id: str) -> bool:
    row = (
        await conn.execute(
            select(totp_credentials.c.confirmed_at).where(totp_credentials.c.user_id == user_id)
        )
    ).first()
    return row is not None and row.confirmed_at is not None


async def _replace_codes(conn: AsyncConnection, user_id: str, hashes: list[str]) -> None:
    await conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    now = utcnow()
    await conn.execute(
        insert(recovery_codes),
        [{"id": new_id(), "user_id": user_id, "code_hash": h, "created_at": now} for h in hashes],
    )
