"""The to-device inbox (DESIGN §6.1): pairwise ciphertexts, each for one device.

A sender posts ciphertexts for devices (sender keys, key requests; ``parley.client.e2ee``
makes them with X3DH and the Double Ratchet). Each is stored in its device's inbox, pushed
to its user's sessions as a ``to_device`` event after the commit, and kept until that
device acknowledges it: delivery is at least once, and a client that was offline reads its
inbox (``pending``). ``(recipient device, sender, message_id)`` is unique: a resend after a
lost answer stores nothing new.

Bounds: an inbox holds ``inbox_max`` messages; past it the oldest are dropped and counted
(``parley_e2ee_to_device_dropped_total``) — a device that never comes back must not grow
the table for ever, and a device that lost keys asks for them again (key requests).

Only active devices receive (``e2ee_audience``), and only from users they share a
conversation with (or their own other devices): a stranger cannot fill an inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.e2ee import formats
from parley.errors import E2eeDisabled, NotFound, ValidationFailed
from parley.ids import new_id
from parley.observability.metrics import Metrics
from parley.services.e2ee_audience import ACTIVE_DEVICES
from parley.services.events import Event, EventSink
from parley.services.markup import CLIENT_MSG_ID_PATTERN
from parley.store.db import Database
from parley.store.tables.conversations import members
from parley.store.tables.e2ee import e2ee_devices, e2ee_to_device
from parley.store.upsert import insert_or_ignore
from parley.wire.events import EventType

MAX_BATCH = 2000  # messages per request: a sender key for a large group goes in a few
MAX_PAGE = 500
NO_DEVICE = "register a device first (PUT /api/v1/devices/{device_id}/keys)"


@dataclass(frozen=True, slots=True)
class Outgoing:
    user_id: str
    device_id: str
    message_id: str
    ciphertext: str


def message_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "sender_id": row.sender_id,
        "sender_device_id": row.sender_device_id,
        "message_id": row.message_id,
        "ciphertext": row.ciphertext,
        "created_at": isoformat(row.created_at),
    }


class E2eeInbox:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        metrics: Metrics,
        *,
        enabled: bool,
        inbox_max: int,
        max_ciphertext_chars: int,
    ) -> None:
        self._db = db
        self._events = events
        self._metrics = metrics
        self._enabled = enabled
        self._inbox_max = inbox_max
        self._max_chars = max_ciphertext_chars

    def _check(self, messages: Sequence[Outgoing]) -> None:
        if not self._enabled:
            raise E2eeDisabled()
        if not messages:
            raise ValidationFailed.field("messages", "must not be empty")
        if len(messages) > MAX_BATCH:
            raise ValidationFailed.field("messages", f"at most {MAX_BATCH} per request")
        for i, m in enumerate(messages):
            where = f"messages[{i}]"
            try:
                formats.check_device_id(m.device_id, f"{where}.device_id")
                if len(m.ciphertext) > self._max_chars:
                    raise formats.FormatError(
                        f"{where}.ciphertext", f"must be at most {self._max_chars} characters"
                    )
                if not formats.b64decode(m.ciphertext, f"{where}.ciphertext"):
                    raise formats.FormatError(f"{where}.ciphertext", "must not be empty")
            except formats.FormatError as exc:
                raise ValidationFailed.field(exc.field, exc.message) from None
            if not CLIENT_MSG_ID_PATTERN.fullmatch(m.message_id):
                raise ValidationFailed.field(
                    f"{where}.message_id",
                    "must be 1-64 characters of letters, digits, '.', '_', ':' or '-'",
                )

    async def send(
        self,
        sender_id: str,
        session_id: str,
        messages: Sequence[Outgoing],
        sender_device_id: str | None = None,
    ) -> dict[str, Any]:
        """Store each message in its device's inbox; answer which were ``sent`` (stored now
        or before, with the server id) and which devices are ``missing`` (removed, logged
        out, never registered or not reachable by the sender): the sender drops those."""
        self._check(messages)
        now = utcnow()
        async with self._db.transaction() as conn:
            device = await self._sender_device(conn, sender_id, session_id, sender_device_id)
            reachable = await self._reachable(conn, sender_id, {m.user_id for m in messages})
            active = {
                (row.user_id, row.device_id)
                for row in await conn.execute(
                    ACTIVE_DEVICES.where(e2ee_devices.c.user_id.in_(reachable))
                )
            }
            fresh: dict[tuple[str, str, str], str] = {}
            rows: list[dict[str, Any]] = []
            missing: list[dict[str, str]] = []
            for m in messages:
                if (m.user_id, m.device_id) not in active:
                    missing.append({"user_id": m.user_id, "device_id": m.device_id})
                    continue
                key = (m.user_id, m.device_id, m.message_id)
                if key in fresh:
                    continue  # the same message twice in one request
                fresh[key] = new_id()
                rows.append(
                    {
                        "id": fresh[key],
                        "user_id": m.user_id,
                        "device_id": m.device_id,
                        "sender_id": sender_id,
                        "sender_device_id": device,
                        "message_id": m.message_id,
                        "ciphertext": m.ciphertext,
                        "created_at": now,
                    }
                )
            stored: list[Any] = []
            dropped = 0
            if rows:
                # Each target inbox is locked (its device row, in one order) until commit:
                # concurrent senders to one device count and trim it one after another,
                # never both dropping the same excess.
                targets = sorted({(r["user_id"], r["device_id"]) for r in rows})
                await conn.execute(
                    select(e2ee_devices.c.device_id)
                    .where(
                        or_(
                            *(
                                and_(e2ee_devices.c.user_id == uid, e2ee_devices.c.device_id == did)
                                for uid, did in targets
                            )
                        )
                    )
                    .order_by(e2ee_devices.c.user_id, e2ee_devices.c.device_id)
                    .with_for_update()
                )
                await conn.execute(
                    insert_or_ignore(
                        self._db.dialect,
                        e2ee_to_device,
                        ("user_id", "device_id", "sender_id", "message_id"),
                    ),
                    rows,
                )
                stored = list(
                    await conn.execute(
                        select(e2ee_to_device).where(
                            e2ee_to_device.c.sender_id == sender_id,
                            or_(
                                *(
                                    and_(
                                        e2ee_to_device.c.user_id == uid,
                                        e2ee_to_device.c.device_id == did,
                                        e2ee_to_device.c.message_id == mid,
                                    )
                                    for uid, did, mid in fresh
                                )
                            ),
                        )
                    )
                )
                new_ids = set(fresh.values())
                grown = {(r.user_id, r.device_id) for r in stored if r.id in new_ids}
                for uid, did in sorted(grown):
                    dropped += await self._trim(conn, uid, did)
        created = [r for r in stored if r.id in set(fresh.values())]
        self._metrics.e2ee.to_device_stored.inc(len(created))
        if dropped:
            self._metrics.e2ee.to_device_dropped.inc(dropped)
        await self._push(created)
        return {
            "sent": [
                {"user_id": r.user_id, "device_id": r.device_id, "message_id": r.message_id, "id": r.id}
                for r in stored
            ],
            "missing": missing,
        }

    async def _sender_device(
        self, conn: AsyncConnection, user_id: str, session_id: str, device_id: str | None
    ) -> str:
        """The sending device: the one named (the caller's), else the calling session's."""
        query = ACTIVE_DEVICES.where(e2ee_devices.c.user_id == user_id)
        if device_id is not None:
            query = query.where(e2ee_devices.c.device_id == device_id)
        else:
            query = query.where(e2ee_devices.c.session_id == session_id)
        row = (await conn.execute(query.order_by(e2ee_devices.c.updated_at.desc()))).first()
        if row is None:
            raise ValidationFailed.field("sender_device_id", NO_DEVICE)
        return str(row.device_id)

    @staticmethod
    async def _reachable(conn: AsyncConnection, sender_id: str, user_ids: set[str]) -> list[str]:
        """Those of ``user_ids`` that are the sender or share a conversation with them."""
        mine = select(members.c.conversation_id).where(members.c.user_id == sender_id)
        rows = await conn.execute(
            select(members.c.user_id)
            .distinct()
            .where(members.c.user_id.in_(user_ids), members.c.conversation_id.in_(mine))
        )
        return sorted({row.user_id for row in rows} | ({sender_id} & user_ids))

    async def _trim(self, conn: AsyncConnection, user_id: str, device_id: str) -> int:
        """Drop the oldest messages of an inbox past its bound; returns how many."""
        where = (e2ee_to_device.c.user_id == user_id, e2ee_to_device.c.device_id == device_id)
        held = (
            await conn.execute(select(func.count()).select_from(e2ee_to_device).where(*where))
        ).scalar_one()
        excess = int(held) - self._inbox_max
        if excess <= 0:
            return 0
        oldest = select(e2ee_to_device.c.id).where(*where).order_by(e2ee_to_device.c.id).limit(excess)
        result = await conn.execute(
            delete(e2ee_to_device).where(e2ee_to_device.c.id.in_(oldest.scalar_subquery()))
        )
        return int(result.rowcount or 0)

    async def _push(self, created: Sequence[Any]) -> None:
        by_device: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in created:
            by_device.setdefault((row.user_id, row.device_id), []).append(message_view(row))
        await self._events.emit(
            [
                Event(EventType.TO_DEVICE, {"device_id": did, "messages": batch}, user_ids=(uid,))
                for (uid, did), batch in sorted(by_device.items())
            ]
        )

    async def pending(
        self, user_id: str, device_id: str, *, after_id: str | None = None, limit: int = MAX_PAGE
    ) -> dict[str, Any]:
        """The device's unacknowledged messages, oldest first (after a reconnect)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed.field("limit", f"must be between 1 and {MAX_PAGE}")
        async with self._db.read() as conn:
            owner = (
                await conn.execute(
                    select(e2ee_devices.c.device_id).where(
                        e2ee_devices.c.user_id == user_id, e2ee_devices.c.device_id == device_id
                    )
                )
            ).first()
            if owner is None:
                raise NotFound("No such device")
            query = select(e2ee_to_device).where(
                e2ee_to_device.c.user_id == user_id, e2ee_to_device.c.device_id == device_id
            )
            if after_id is not None:
                query = query.where(e2ee_to_device.c.id > after_id)
            rows = list(await conn.execute(query.order_by(e2ee_to_device.c.id).limit(limit + 1)))
        return {
            "device_id": device_id,
            "messages": [message_view(r) for r in rows[:limit]],
            "has_more": len(rows) > limit,
        }

    async def ack(self, user_id: str, ids: Sequence[str]) -> dict[str, Any]:
        """Delete acknowledged messages of the caller's devices (unknown ids: ignored, so
        an ack can be retried)."""
        if not ids:
            return {"deleted": 0}
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(e2ee_to_device).where(
                    e2ee_to_device.c.user_id == user_id, e2ee_to_device.c.id.in_(list(set(ids)))
                )
            )
        return {"deleted": int(result.rowcount or 0)}
