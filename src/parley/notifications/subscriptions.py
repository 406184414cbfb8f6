"""Web Push subscriptions: what a browser's ``PushSubscription.toJSON()`` gives, kept per
device (DESIGN §6.2 ``POST|DELETE /api/v1/push/subscriptions``).

A subscription belongs to the session that registered it: logging that session out (or its
expiry) stops its pushes — the push job deletes a subscription whose session has ended —
so a shared computer someone logged out of shows nobody's messages. An endpoint is unique:
the same browser registering again (another account logging in there) moves it to the new
owner. The endpoint must be ``https://`` (``http://`` only where outbound HTTP may reach
private addresses, ``PARLEY_OUTBOUND_ALLOW_PRIVATE``: tests, intranets); the keys must be a
P-256 point and a 16-byte secret, checked here so a bad subscription fails at once, not at
every push.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import NotFound, ValidationFailed
from parley.ids import new_id
from parley.outbound import OutboundPolicy, OutboundRefused, check_url
from parley.store.db import Database
from parley.store.tables.notifications import push_subscriptions

MAX_ENDPOINT = 1024
AUTH_SECRET_BYTES = 16  # RFC 8291 §3.2
# A user's browsers and devices; beyond this the oldest subscription makes room.
MAX_SUBSCRIPTIONS_PER_USER = 20


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    endpoint: str
    created_at: datetime
    last_success_at: datetime | None

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "created_at": isoformat(self.created_at),
            "last_success_at": isoformat(self.last_success_at) if self.last_success_at else None,
        }


def _decode_key(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not 0 < len(value) <= 128 or not value.isascii():
        raise ValidationFailed.field(field, "must be base64url text")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValidationFailed.field(field, "must be base64url text") from None


def check_endpoint(endpoint: object, policy: OutboundPolicy) -> str:
    """A push service URL: https (http only where private addresses are allowed), no
    credentials, and — as far as can be told without resolving it — a public host."""
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT:
        raise ValidationFailed.field("endpoint", f"must be a URL of at most {MAX_ENDPOINT} characters")
    if not endpoint.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in endpoint):
        raise ValidationFailed.field("endpoint", "must be a plain ASCII URL")
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if policy.allow_private else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise ValidationFailed.field("endpoint", "must be an https:// push service URL")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
        check_url(endpoint, policy)
    except ValueError:
        raise ValidationFailed.field("endpoint", "has an invalid port") from None
    except OutboundRefused as exc:
        raise ValidationFailed.field("endpoint", f"is not reachable from this server ({exc})") from None
    return endpoint


def check_keys(p256dh: object, auth: object) -> tuple[str, str]:
    point = _decode_key(p256dh, "keys.p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise ValidationFailed.field("keys.p256dh", "must be an uncompressed P-256 public key") from None
    if len(point) != 65:
        raise ValidationFailed.field("keys.p256dh", "must be an uncompressed P-256 public key")
    if len(_decode_key(auth, "keys.auth")) != AUTH_SECRET_BYTES:
        raise ValidationFailed.field("keys.auth", f"must be {AUTH_SECRET_BYTES} bytes")
    return str(p256dh), str(auth)


class PushSubscriptions:
    def __init__(self, db: Database, policy: OutboundPolicy) -> None:
        self._db = db
        self._policy = policy

    async def subscribe(
        self,
        user_id: str,
        session_id: str,
        endpoint: object,
        p256dh: object,
        auth: object,
        *,
        user_agent: str = "",
    ) -> tuple[Subscription, bool]:
        """Store the subscription; ``(subscription, created)``. The same endpoint again
        updates the existing one (and moves it to this user and session)."""
        url = check_endpoint(endpoint, self._policy)
        key, secret = check_keys(p256dh, auth)
        values = {
            "user_id": user_id,
            "session_id": session_id,
            "p256dh": key,
            "auth": secret,
            "user_agent": user_agent[:400],
        }
        for _attempt in range(2):  # a parallel insert of the same endpoint: update it instead
            now = utcnow()
            try:
                async with self._db.transaction() as conn:
                    row = (
                        await conn.execute(
                            select(push_subscriptions).where(push_subscriptions.c.endpoint == url)
                        )
                    ).first()
                    if row is not None:
                        await conn.execute(
                            update(push_subscriptions)
                            .where(push_subscriptions.c.id == row.id)
                            .values(**values)
                        )
                        return Subscription(row.id, url, row.created_at, row.last_success_at), False
                    subscription_id = new_id()
                    await conn.execute(
                        push_subscriptions.insert().values(
                            id=subscription_id, endpoint=url, created_at=now, last_success_at=None, **values
                        )
                    )
                    await self._trim(conn, user_id)
                return Subscription(subscription_id, url, now, None), True
            except IntegrityError:
                continue
        raise ValidationFailed.field("endpoint", "is being registered concurrently; retry")

    async def _trim(self, conn: AsyncConnection, user_id: str) -> None:
        rows = await conn.execute(
            select(push_subscriptions.c.id)
            .where(push_subscriptions.c.user_id == user_id)
            .order_by(push_subscriptions.c.created_at.desc(), push_subscriptions.c.id.desc())
            .offset(MAX_SUBSCRIPTIONS_PER_USER)
        )
        extra = [row.id for row in rows]
        if extra:
            await conn.execute(delete(push_subscriptions).where(push_subscriptions.c.id.in_(extra)))

    async def list_for(self, user_id: str) -> list[Subscription]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(push_subscriptions)
                .where(push_subscriptions.c.user_id == user_id)
                .order_by(push_subscriptions.c.created_at, push_subscriptions.c.id)
            )
            return [Subscription(r.id, r.endpoint, r.created_at, r.last_success_at) for r in rows]

    async def unsubscribe(self, user_id: str, subscription_id: str) -> None:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(push_subscriptions).where(
                    push_subscriptions.c.id == subscription_id,
                    push_subscriptions.c.user_id == user_id,
                )
            )
        if result.rowcount == 0:
            raise NotFound("No such push subscription")
