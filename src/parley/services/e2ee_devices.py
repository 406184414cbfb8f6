"""E2EE devices and their public keys: upload, list, claim, count, remove (DESIGN §6.1).

The server keeps public material only: per device an Ed25519 signing key, an X25519
identity key signed by it, a signed prekey (rotated by re-upload) and one-time prekeys.
Signatures are verified on upload (``parley.e2ee.formats``), so a bundle handed out is at
least self-consistent; whether it belongs to the person is for users to verify (safety
numbers, ``docs/e2ee.md``).

Claiming is X3DH's "fetch a prekey bundle": each bundle consumes one one-time prekey, and a
prekey is never handed out twice — the claim deletes the row it returns and checks that its
own delete took it (on PostgreSQL a concurrent claim skips the row locked by another with
``SKIP LOCKED``; on SQLite writes are serialised). Once a device has none left, its bundle
has the signed prekey alone, which X3DH allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.e2ee import formats
from parley.errors import (
    DeviceKeysChanged,
    E2eeDisabled,
    InvalidSignature,
    NotFound,
    ValidationFailed,
)
from parley.observability.metrics import Metrics
from parley.services.e2ee_audience import ACTIVE_DEVICES, sharing_users
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.e2ee import e2ee_devices, e2ee_one_time_prekeys
from parley.wire.events import EventType

DEVICE_NOT_FOUND = "No such device"
# A claim names at most this many devices (a group of 1,000 members with a few devices
# each is claimed in a few requests).
MAX_CLAIM = 1000
# Attempts to take a one-time prekey before a bundle goes out with the signed prekey only:
# only a burst of claims for one device, racing row by row, ever needs a second.
CLAIM_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    signing_key: str
    identity_key: str
    signature: str


@dataclass(frozen=True, slots=True)
class SignedPrekey:
    key_id: int
    public_key: str
    signature: str


@dataclass(frozen=True, slots=True)
class OneTimePrekey:
    key_id: int
    public_key: str


def _problem(error: formats.FormatError) -> ValidationFailed:
    return ValidationFailed.field(error.field, error.message)


def device_view(row: Any) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "device_id": row.device_id,
        "display_name": row.display_name,
        "identity_keys": {
            "signing_key": row.signing_key,
            "identity_key": row.identity_key,
            "signature": row.identity_signature,
        },
        "signed_prekey": {
            "key_id": row.signed_prekey_id,
            "public_key": row.signed_prekey,
            "signature": row.signed_prekey_signature,
        },
        "created_at": isoformat(row.created_at),
        "updated_at": isoformat(row.updated_at),
    }


class E2eeDevices:
    def __init__(
        self,
        db: Database,
        events: EventSink,
        metrics: Metrics,
        *,
        enabled: bool,
        max_one_time_prekeys: int,
    ) -> None:
        self._db = db
        self._events = events
        self._metrics = metrics
        self._enabled = enabled
        self._max_prekeys = max_one_time_prekeys

    def _require_enabled(self) -> None:
        if not self._enabled:
            raise E2eeDisabled()

    # --- upload

    async def upload(
        self,
        user_id: str,
        session_id: str,
        device_id: str,
        *,
        identity_keys: IdentityKeys | None,
        signed_prekey: SignedPrekey | None,
        one_time_prekeys: Sequence[OneTimePrekey],
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """Register the device (identity keys and a signed prekey are required the first
        time), rotate its signed prekey, add one-time prekeys. The identity keys of a
        device id never change: a client with new keys registers a new device."""
        self._require_enabled()
        try:
            formats.check_device_id(device_id)
        except formats.FormatError as exc:
            raise _problem(exc) from None
        new_prekeys = self._check_prekeys(one_time_prekeys)
        args = (user_id, session_id, device_id, identity_keys, signed_prekey, new_prekeys)
        try:
            stored, count, change = await self._upload(*args, display_name)
        except IntegrityError:
            # Two first uploads of one device raced (PostgreSQL: no row to lock yet); the
            # other one registered it, and this one is now an update of it.
            stored, count, change = await self._upload(*args, display_name)
        if change is not None:
            await self._announce(user_id, device_id, change)
        return {"device": device_view(stored), "one_time_prekey_count": count}

    async def _upload(
        self,
        user_id: str,
        session_id: str,
        device_id: str,
        identity_keys: IdentityKeys | None,
        signed_prekey: SignedPrekey | None,
        new_prekeys: dict[int, str],
        display_name: str | None,
    ) -> tuple[Any, int, str | None]:
        now = utcnow()
        change: str | None = None
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    select(e2ee_devices)
                    .where(e2ee_devices.c.user_id == user_id, e2ee_devices.c.device_id == device_id)
                    .with_for_update()
                )
            ).first()
            if identity_keys is not None:
                self._check_identity(user_id, device_id, identity_keys)
                if row is not None and (
                    row.signing_key != identity_keys.signing_key
                    or row.identity_key != identity_keys.identity_key
                ):
                    raise DeviceKeysChanged()
            elif row is None:
                raise ValidationFailed.field("identity_keys", "is required to register a device")
            signing_key = identity_keys.signing_key if identity_keys else row.signing_key  # type: ignore[union-attr]
            if signed_prekey is not None:
                self._check_signed_prekey(signing_key, signed_prekey)
            elif row is None:
                raise ValidationFailed.field("signed_prekey", "is required to register a device")
            name = display_name if display_name is not None else (row.display_name if row else "")
            if row is None:
                assert identity_keys is not None and signed_prekey is not None
                await conn.execute(
                    insert(e2ee_devices).values(
                        user_id=user_id,
                        device_id=device_id,
                        session_id=session_id,
                        display_name=name,
                        signing_key=identity_keys.signing_key,
                        identity_key=identity_keys.identity_key,
                        identity_signature=identity_keys.signature,
                        signed_prekey_id=signed_prekey.key_id,
                        signed_prekey=signed_prekey.public_key,
                        signed_prekey_signature=signed_prekey.signature,
                        created_at=now,
                        updated_at=now,
                    )
                )
                change = "added"
            else:
                values: dict[str, Any] = {"session_id": session_id, "display_name": name}
                if signed_prekey is not None and (
                    signed_prekey.key_id != row.signed_prekey_id
                    or signed_prekey.public_key != row.signed_prekey
                ):
                    values |= {
                        "signed_prekey_id": signed_prekey.key_id,
                        "signed_prekey": signed_prekey.public_key,
                        "signed_prekey_signature": signed_prekey.signature,
                    }
                    change = "updated"
                if row.session_id != session_id or name != row.display_name:
                    change = change or "updated"  # back in lists (a new session), or renamed
                values["updated_at"] = now
                await conn.execute(
                    update(e2ee_devices)
                    .where(e2ee_devices.c.user_id == user_id, e2ee_devices.c.device_id == device_id)
                    .values(**values)
                )
            count = await self._add_prekeys(conn, user_id, device_id, new_prekeys, now)
            stored = (
                await conn.execute(
                    select(e2ee_devices).where(
                        e2ee_devices.c.user_id == user_id, e2ee_devices.c.device_id == device_id
                    )
                )
            ).one()
        return stored, count, change

    def _check_identity(self, user_id: str, device_id: str, keys: IdentityKeys) -> None:
        try:
            signing = formats.decode_key(keys.signing_key, "identity_keys.signing_key")
            identity = formats.decode_key(keys.identity_key, "identity_keys.identity_key")
            signature = formats.decode_signature(keys.signature, "identity_keys.signature")
        except formats.FormatError as exc:
            raise _problem(exc) from None
        payload = formats.identity_payload(user_id, device_id, signing, identity)
        if not formats.verify(signing, signature, payload):
            raise InvalidSignature(
                "identity_keys.signature: does not verify",
                details=[],
            )

    def _check_signed_prekey(self, signing_key: str, prekey: SignedPrekey) -> None:
        try:
            formats.check_key_id(prekey.key_id, "signed_prekey.key_id")
            public = formats.decode_key(prekey.public_key, "signed_prekey.public_key")
            signature = formats.decode_signature(prekey.signature, "signed_prekey.signature")
        except formats.FormatError as exc:
            raise _problem(exc) from None
        payload = formats.signed_prekey_payload(prekey.key_id, public)
        if not formats.verify(formats.b64decode(signing_key), signature, payload):
            raise InvalidSignature("signed_prekey.signature: does not verify")

    def _check_prekeys(self, prekeys: Sequence[OneTimePrekey]) -> dict[int, str]:
        if len(prekeys) > self._max_prekeys:
            raise ValidationFailed.field(
                "one_time_prekeys", f"at most {self._max_prekeys} per device"
            )
        found: dict[int, str] = {}
        for i, prekey in enumerate(prekeys):
            try:
                formats.check_key_id(prekey.key_id, f"one_time_prekeys[{i}].key_id")
                formats.decode_key(prekey.public_key, f"one_time_prekeys[{i}].public_key")
            except formats.FormatError as exc:
                raise _problem(exc) from None
            if prekey.key_id in found:
                raise ValidationFailed.field(
                    f"one_time_prekeys[{i}].key_id", "must not repeat a key id"
                )
            found[prekey.key_id] = prekey.public_key
        return found

    async def _add_prekeys(
        self,
        conn: AsyncConnection,
        user_id: str,
        device_id: str,
        prekeys: dict[int, str],
        now: Any,
    ) -> int:
        """Add the prekeys not stored yet (a retried upload is harmless); returns how many
        the device has. The device row is locked: two uploads never pass the cap together."""
        where = (
            e2ee_one_time_prekeys.c.user_id == user_id,
            e2ee_one_time_prekeys.c.device_id == device_id,
        )
        if prekeys:
            stored = {
                row.key_id: row.public_key
                for row in await conn.execute(
                    select(e2ee_one_time_prekeys.c.key_id, e2ee_one_time_prekeys.c.public_key).where(
                        *where, e2ee_one_time_prekeys.c.key_id.in_(list(prekeys))
                    )
                )
            }
            for key_id, public_key in stored.items():
                if prekeys[key_id] != public_key:
                    raise ValidationFailed.field(
                        "one_time_prekeys", f"key id {key_id} is already used by another key"
                    )
            fresh = [k for k in prekeys if k not in stored]
            held = await self._count(conn, user_id, device_id)
            if held + len(fresh) > self._max_prekeys:
                raise ValidationFailed.field(
                    "one_time_prekeys",
                    f"a device holds at most {self._max_prekeys} ({held} stored)",
                )
            if fresh:
                await conn.execute(
                    insert(e2ee_one_time_prekeys),
                    [
                        {
                            "user_id": user_id,
                            "device_id": device_id,
                            "key_id": k,
                            "public_key": prekeys[k],
                            "created_at": now,
                        }
                        for k in fresh
                    ],
                )
        return await self._count(conn, user_id, device_id)

    @staticmethod
    async def _count(conn: AsyncConnection, user_id: str, device_id: str) -> int:
        return int(
            (
                await conn.execute(
                    select(func.count())
                    .select_from(e2ee_one_time_prekeys)
                    .where(
                        e2ee_one_time_prekeys.c.user_id == user_id,
                        e2ee_one_time_prekeys.c.device_id == device_id,
                    )
                )
            ).scalar_one()
        )

    # --- reading

    async def list_for(self, user_id: str) -> list[dict[str, Any]]:
        """A user's active devices with their public keys (for verification and claims)."""
        async with self._db.read() as conn:
            exists = (await conn.execute(select(users.c.id).where(users.c.id == user_id))).first()
            if exists is None:
                raise NotFound("No such user")
            rows = await conn.execute(
                ACTIVE_DEVICES.where(e2ee_devices.c.user_id == user_id).order_by(
                    e2ee_devices.c.created_at, e2ee_devices.c.device_id
                )
            )
            return [device_view(row) for row in rows]

    async def list_many(self, user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Active devices of many users in one read (a sender's view of a conversation's
        devices before each encrypted send); unknown users map to an empty list."""
        wanted = list(dict.fromkeys(user_ids))
        if len(wanted) > MAX_CLAIM:
            raise ValidationFailed.field("user_ids", f"at most {MAX_CLAIM} users per query")
        found: dict[str, list[dict[str, Any]]] = {uid: [] for uid in wanted}
        if not wanted:
            return found
        async with self._db.read() as conn:
            rows = await conn.execute(
                ACTIVE_DEVICES.where(e2ee_devices.c.user_id.in_(wanted)).order_by(
                    e2ee_devices.c.user_id, e2ee_devices.c.created_at, e2ee_devices.c.device_id
                )
            )
            for row in rows:
                found[row.user_id].append(device_view(row))
        return found

    async def count(self, user_id: str, session_id: str, device_id: str | None) -> dict[str, Any]:
        """How many one-time prekeys the device has left (the client replenishes when low);
        without ``device_id``, the device of the calling session."""
        async with self._db.read() as conn:
            query = select(e2ee_devices.c.device_id, e2ee_devices.c.signed_prekey_id).where(
                e2ee_devices.c.user_id == user_id
            )
            if device_id is not None:
                query = query.where(e2ee_devices.c.device_id == device_id)
            else:
                query = query.where(e2ee_devices.c.session_id == session_id)
            row = (await conn.execute(query.order_by(e2ee_devices.c.updated_at.desc()))).first()
            if row is None:
                raise NotFound(DEVICE_NOT_FOUND)
            count = await self._count(conn, user_id, row.device_id)
        return {
            "device_id": row.device_id,
            "one_time_prekeys": count,
            "signed_prekey_id": row.signed_prekey_id,
        }

    # --- claiming

    async def claim(
        self, devices: Sequence[tuple[str, str]], user_ids: Sequence[str]
    ) -> dict[str, Any]:
        """One bundle per active device named (or of the users named), each with a one-time
        prekey when one is left. Devices that do not exist (or are inactive) are listed in
        ``missing``; users without any device in ``users_without_devices``."""
        self._require_enabled()
        wanted = list(dict.fromkeys(devices))
        if len(wanted) + len(user_ids) > MAX_CLAIM:
            raise ValidationFailed.field("devices", f"at most {MAX_CLAIM} devices per claim")
        bundles: list[dict[str, Any]] = []
        async with self._db.transaction() as conn:
            rows: list[Any] = []
            if wanted:
                by_user: dict[str, list[str]] = {}
                for uid, did in wanted:
                    by_user.setdefault(uid, []).append(did)
                for uid, dids in by_user.items():
                    rows.extend(
                        await conn.execute(
                            ACTIVE_DEVICES.where(
                                e2ee_devices.c.user_id == uid, e2ee_devices.c.device_id.in_(dids)
                            )
                        )
                    )
            without: list[str] = []
            for uid in dict.fromkeys(user_ids):
                found = list(
                    await conn.execute(
                        ACTIVE_DEVICES.where(e2ee_devices.c.user_id == uid).order_by(
                            e2ee_devices.c.device_id
                        )
                    )
                )
                if not found:
                    without.append(uid)
                rows.extend(r for r in found if (r.user_id, r.device_id) not in wanted)
            for row in rows:
                prekey = await self._take_prekey(conn, row.user_id, row.device_id)
                bundles.append(
                    device_view(row)
                    | {
                        "one_time_prekey": {"key_id": prekey[0], "public_key": prekey[1]}
                        if prekey
                        else None
                    }
                )
        for bundle in bundles:
            kind = "one_time" if bundle["one_time_prekey"] else "signed_only"
            self._metrics.e2ee.prekeys_claimed.labels(kind).inc()
        found_pairs = {(b["user_id"], b["device_id"]) for b in bundles}
        missing = [{"user_id": u, "device_id": d} for u, d in wanted if (u, d) not in found_pairs]
        return {"bundles": bundles, "missing": missing, "users_without_devices": without}

    async def _take_prekey(
        self, conn: AsyncConnection, user_id: str, device_id: str
    ) -> tuple[int, str] | None:
        where = (
            e2ee_one_time_prekeys.c.user_id == user_id,
            e2ee_one_time_prekeys.c.device_id == device_id,
        )
        for _ in range(CLAIM_ATTEMPTS):
            row = (
                await conn.execute(
                    select(e2ee_one_time_prekeys.c.key_id, e2ee_one_time_prekeys.c.public_key)
                    .where(*where)
                    .order_by(e2ee_one_time_prekeys.c.key_id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            taken = await conn.execute(
                delete(e2ee_one_time_prekeys).where(
                    *where, e2ee_one_time_prekeys.c.key_id == row.key_id
                )
            )
            if taken.rowcount == 1:  # our delete took it: nobody else can have it
                return int(row.key_id), str(row.public_key)
        return None

    # --- removing

    async def remove(self, user_id: str, device_id: str) -> None:
        """Delete one of the caller's devices: its keys, prekeys and inbox go with it."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(e2ee_devices).where(
                    e2ee_devices.c.user_id == user_id, e2ee_devices.c.device_id == device_id
                )
            )
        if result.rowcount != 1:
            raise NotFound(DEVICE_NOT_FOUND)
        await self._announce(user_id, device_id, "removed")

    async def _announce(self, user_id: str, device_id: str, change: str) -> None:
        async with self._db.read() as conn:
            audience = await sharing_users(conn, user_id)
        await self._events.emit(
            [
                Event(
                    EventType.DEVICE_UPDATED,
                    {"user_id": user_id, "device_id": device_id, "change": change},
                    user_ids=tuple(audience),
                )
            ]
        )


__all__ = [
    "E2eeDevices",
    "IdentityKeys",
    "OneTimePrekey",
    "SignedPrekey",
]
