"""The key backup (DESIGN §6.1, seed 001): one opaque blob per user.

The client encrypts its conversation keys with a key derived from a recovery passphrase
(``docs/e2ee.md`` "Key backup") and stores the result here; a new device downloads it and
decrypts it with the passphrase. The server keeps the text as given and its version:
``if_version`` makes a replacement conditional, so two devices backing up at once do not
silently overwrite each other (the loser merges and retries).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from parley.clock import isoformat, utcnow
from parley.errors import Conflict, E2eeDisabled, NotFound, ValidationFailed
from parley.store.db import Database
from parley.store.tables.e2ee import e2ee_key_backups

NO_BACKUP = "No key backup"


class VersionMismatch(Conflict):
    code = "BACKUP_VERSION_MISMATCH"
    default_message = "The key backup changed since you read it: read it again and merge"


def _view(row: Any) -> dict[str, Any]:
    return {"version": row.version, "data": row.data, "updated_at": isoformat(row.updated_at)}


class E2eeBackups:
    def __init__(self, db: Database, *, enabled: bool, max_chars: int) -> None:
        self._db = db
        self._enabled = enabled
        self._max_chars = max_chars

    async def get(self, user_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(e2ee_key_backups).where(e2ee_key_backups.c.user_id == user_id))
            ).first()
        if row is None:
            raise NotFound(NO_BACKUP)
        return _view(row)

    async def put(self, user_id: str, data: str, if_version: int | None) -> dict[str, Any]:
        """Store ``data``; with ``if_version``, only over that version (0: none yet)."""
        if not self._enabled:
            raise E2eeDisabled()
        if not data or len(data) > self._max_chars:
            raise ValidationFailed.field("data", f"must be 1-{self._max_chars} characters")
        now = utcnow()
        try:
            async with self._db.transaction() as conn:
                row = (
                    await conn.execute(
                        select(e2ee_key_backups.c.version)
                        .where(e2ee_key_backups.c.user_id == user_id)
                        .with_for_update()
                    )
                ).first()
                current = int(row.version) if row else 0
                if if_version is not None and if_version != current:
                    raise VersionMismatch()
                values = {"version": current + 1, "data": data, "updated_at": now}
                if row is None:
                    await conn.execute(insert(e2ee_key_backups).values(user_id=user_id, **values))
                else:
                    await conn.execute(
                        update(e2ee_key_backups)
                        .where(
                            e2ee_key_backups.c.user_id == user_id,
                            e2ee_key_backups.c.version == current,
                        )
                        .values(**values)
                    )
        except IntegrityError:  # two first backups raced; the other one is version 1
            raise VersionMismatch() from None
        return {"version": current + 1, "updated_at": isoformat(now)}

    async def delete(self, user_id: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(delete(e2ee_key_backups).where(e2ee_key_backups.c.user_id == user_id))
