"""Users' email addresses: optional, one per user, verified by a signed link (DESIGN §6.2).

An address is *pending* until its owner opens the link mailed to it, then *verified*. Only a
verified address is ever used to send anything else — digests here, password resets in the
accounts service: read it with :func:`verified_address` (or :func:`user_for_verified_address`
to go from an address to its user). A verified address belongs to one user (a partial unique
index); several users may have the same address pending, and the first to verify keeps it.
Changing the address drops the verification; removing it stops every email at once.

The verification mail is sent by a job (``email.verify``), so a slow SMTP server never holds
up the request, and mails per user are rate limited (a mailbox cannot be flooded by setting
it again and again).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import EmailTaken, NotConfigured, NotFound, RateLimited, ValidationFailed
from parley.jobs.queue import Job, JobQueue
from parley.notifications.email_kit import EmailKit
from parley.notifications.emails import verification_email
from parley.security.link_tokens import LinkPurpose
from parley.security.ratelimit import Rate, RateLimiter
from parley.services.accounts import fetch_user
from parley.store.db import Database
from parley.store.tables.notifications import email_addresses

log = logging.getLogger(__name__)

VERIFY_JOB = "email.verify"
MAX_ADDRESS = 254  # RFC 5321's limit on a forward path
MAX_LOCAL_PART = 64
# Characters never in an address Parley accepts: whitespace, controls, and those that would
# need quoting in a header (an address is written into To: as it is).
_FORBIDDEN = re.compile(r'[\s\x00-\x1f\x7f<>(),;:"\[\]\\]')
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# Verification mails per user: enough to fix a typo a few times, not to flood a mailbox.
VERIFY_RATE = Rate.per_window(5, 3600)


@dataclass(frozen=True, slots=True)
class EmailAddress:
    address: str
    verified_at: datetime | None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None

    def to_public(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "verified": self.verified,
            "verified_at": isoformat(self.verified_at) if self.verified_at else None,
        }


def normalise_address(raw: object) -> tuple[str, str]:
    """``(address, key)``: the address as given (trimmed) and its lower-cased lookup key."""
    if not isinstance(raw, str):
        raise ValidationFailed.field("address", "must be a string")
    address = raw.strip()
    problem = "must be an email address like name@example.org"
    if not 3 <= len(address) <= MAX_ADDRESS or _FORBIDDEN.search(address):
        raise ValidationFailed.field("address", problem)
    local, at, domain = address.rpartition("@")
    if not at or not local or "@" in local or len(local) > MAX_LOCAL_PART:
        raise ValidationFailed.field("address", problem)
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValidationFailed.field("address", problem)
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise ValidationFailed.field("address", problem) from None
    return address, address.lower()


# --- reading (for every service that mails a user)


async def verified_address(conn: AsyncConnection, user_id: str) -> str | None:
    """The user's verified email address, or None. The one way to find where to mail a user."""
    found = await conn.run_sync(read_verified_addresses, [user_id])
    return found.get(user_id)


def read_verified_addresses(conn: Connection, user_ids: list[str]) -> dict[str, str]:
    """User id → verified address, for those of ``user_ids`` that have one (synchronous)."""
    if not user_ids:
        return {}
    rows = conn.execute(
        select(email_addresses.c.user_id, email_addresses.c.address).where(
            email_addresses.c.user_id.in_(user_ids), email_addresses.c.verified_at.is_not(None)
        )
    )
    return {row.user_id: row.address for row in rows}


async def user_for_verified_address(conn: AsyncConnection, address: str) -> str | None:
    """The user whose verified address this is (case-insensitive), or None."""
    row = (
        await conn.execute(
            select(email_addresses.c.user_id).where(
                email_addresses.c.address_key == address.strip().lower(),
                email_addresses.c.verified_at.is_not(None),
            )
        )
    ).first()
    return row.user_id if row else None


class EmailAddresses:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        email: EmailKit,
        limiter: RateLimiter,
        *,
        verification_ttl: timedelta,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._mailer = email.mailer
        self._signer = email.signer
        self._links = email.links
        self._limiter = limiter
        self._ttl = verification_ttl
        jobs.register(VERIFY_JOB, self._send_verification)

    async def get(self, user_id: str) -> EmailAddress | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(email_addresses).where(email_addresses.c.user_id == user_id))
            ).first()
        return EmailAddress(row.address, row.verified_at) if row else None

    async def set(self, user_id: str, raw: object) -> EmailAddress:
        """Set (or change) the address; a verification link is mailed unless it is the
        address already verified."""
        address, key = normalise_address(raw)
        if not self._mailer.enabled:
            raise NotConfigured("This server sends no email (PARLEY_SMTP_URL is not set)")
        current = await self.get(user_id)
        if current is not None and current.verified and current.address.lower() == key:
            if current.address != address:
                async with self._db.transaction() as conn:
                    await conn.execute(
                        update(email_addresses)
                        .where(email_addresses.c.user_id == user_id)
                        .values(address=address)
                    )
            return EmailAddress(address, current.verified_at)
        decision = await self._limiter.hit(f"email:verify:{user_id}", VERIFY_RATE)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, "Too many verification emails; try later")
        now = utcnow()
        async with self._db.transaction() as conn:
            await conn.execute(delete(email_addresses).where(email_addresses.c.user_id == user_id))
            await conn.execute(
                email_addresses.insert().values(
                    user_id=user_id, address=address, address_key=key, created_at=now, verified_at=None
                )
            )
        await self._jobs.enqueue(VERIFY_JOB, {"user_id": user_id, "address_key": key})
        return EmailAddress(address, None)

    async def remove(self, user_id: str) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(email_addresses).where(email_addresses.c.user_id == user_id)
            )
        if result.rowcount == 0:
            raise NotFound("No email address is set")

    async def verify(self, token: str) -> tuple[str, EmailAddress]:
        """Verify from a link token; ``(user_id, address)``. Opening the link twice is fine."""
        user_id, key = self._signer.verify(LinkPurpose.VERIFY_EMAIL, token)
        now = utcnow()
        try:
            async with self._db.transaction() as conn:
                row = (
                    await conn.execute(
                        select(email_addresses).where(email_addresses.c.user_id == user_id)
                    )
                ).first()
                if row is None or row.address_key != key:
                    raise ValidationFailed.field(
                        "token", "this link is for an address that is no longer set"
                    )
                if row.verified_at is not None:
                    return user_id, EmailAddress(row.address, row.verified_at)
                await conn.execute(
                    update(email_addresses)
                    .where(email_addresses.c.user_id == user_id)
                    .values(verified_at=now)
                )
        except IntegrityError:
            raise EmailTaken() from None
        return user_id, EmailAddress(row.address, now)

    async def _send_verification(self, job: Job) -> None:
        user_id = str(job.payload["user_id"])
        key = str(job.payload["address_key"])
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(email_addresses).where(email_addresses.c.user_id == user_id))
            ).first()
            user = await fetch_user(conn, user_id)
        if row is None or user is None or row.address_key != key or row.verified_at is not None:
            return  # changed or verified since: this link is not needed any more
        token = self._signer.issue(LinkPurpose.VERIFY_EMAIL, user_id, bound_to=key, ttl=self._ttl)
        await self._mailer.send(
            verification_email(
                to=row.address,
                display_name=user.display_name,
                link=self._links.verify_email(token),
                valid_hours=int(self._ttl.total_seconds() // 3600),
                job_id=job.id,
            )
        )
