"""Notification preferences (DESIGN §6.2): a level and a mute per conversation, a default
per user, and the digest opt-in.

Levels: ``all`` (every message), ``mentions`` (direct messages and messages that mention
you), ``none``. A member's level is NULL until they choose one, and then follows their
default (``notification_settings.notify_default``, ``all`` without a row). A mute holds
until ``muted_until``; "forever" is stored as the last representable day, so every reader
compares one timestamp. Muting silences every channel, mentions included; the conversation
list still counts a muted conversation's unread messages and mentions (quietly, in the
client).

Changes are events for the user's own sessions only: ``conversation.settings.updated``
and ``user.settings.updated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import ValidationFailed
from parley.services.access import membership
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.tables.conversations import members
from parley.store.tables.notifications import notification_settings
from parley.store.upsert import insert_or_ignore
from parley.wire.events import EventType


class NotifyLevel(StrEnum):
    ALL = "all"
    MENTIONS = "mentions"
    NONE = "none"


DEFAULT_LEVEL = NotifyLevel.ALL
# "Muted forever": the last day every database and Python represent.
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
FOREVER_WORD = "forever"
UNCHANGED: Any = object()  # a PATCH field that was not sent
# RFC 3339: a date, a time, an offset — nothing else (fromisoformat alone is lenient).
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})", re.ASCII)


@dataclass(frozen=True, slots=True)
class UserDefaults:
    notify_default: NotifyLevel
    email_digest: bool

    def to_public(self) -> dict[str, Any]:
        return {"notify_default": self.notify_default.value, "email_digest": self.email_digest}


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    conversation_id: str
    notify: NotifyLevel | None  # None: the user's default
    muted_until: datetime | None

    def to_public(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "notify": self.notify.value if self.notify else None,
            "muted_until": isoformat(self.muted_until) if self.muted_until else None,
        }


def parse_level(raw: object, field: str) -> NotifyLevel:
    if not isinstance(raw, str) or raw not in NotifyLevel.__members__.values():
        raise ValidationFailed.field(field, "must be one of all, mentions, none")
    return NotifyLevel(raw)


def parse_muted_until(raw: object, now: datetime) -> datetime | None:
    """``null`` (unmute), ``"forever"``, or an ISO 8601 time with its UTC offset. A time
    already past unmutes."""
    if raw is None:
        return None
    if raw == FOREVER_WORD:
        return FOREVER
    problem = "must be an ISO 8601 time with its offset (2030-01-31T08:00:00Z), 'forever' or null"
    if not isinstance(raw, str) or not _TIMESTAMP.fullmatch(raw):
        raise ValidationFailed.field("muted_until", problem)
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError:
        raise ValidationFailed.field("muted_until", problem) from None
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # past year 9999 in UTC: as good as forever
        return FOREVER
    return None if value <= now else min(value, FOREVER)


def is_muted(muted_until: datetime | None, now: datetime) -> bool:
    return muted_until is not None and muted_until > now


def read_defaults(conn: Connection, user_ids: list[str]) -> dict[str, UserDefaults]:
    """Every listed user's defaults (the built-in ones for users without a row)."""
    found = {
        row.user_id: UserDefaults(NotifyLevel(row.notify_default), bool(row.email_digest))
        for row in conn.execute(
            select(notification_settings).where(notification_settings.c.user_id.in_(user_ids))
        )
    } if user_ids else {}
    return {uid: found.get(uid, UserDefaults(DEFAULT_LEVEL, True)) for uid in user_ids}


async def ensure_settings_row(conn: AsyncConnection, user_id: str) -> None:
    """The user's ``notification_settings`` row, created with the defaults if missing."""
    await conn.execute(
        insert_or_ignore(conn.dialect.name, notification_settings, ["user_id"]).values(
            user_id=user_id,
            notify_default=DEFAULT_LEVEL.value,
            email_digest=True,
            last_digest_at=None,
        )
    )


class NotificationSettings:
    def __init__(self, db: Database, events: EventSink) -> None:
        self._db = db
        self._events = events

    async def defaults(self, user_id: str) -> UserDefaults:
        async with self._db.read() as conn:
            found = await conn.run_sync(read_defaults, [user_id])
        return found[user_id]

    async def update_defaults(
        self, user_id: str, *, notify_default: object = UNCHANGED, email_digest: object = UNCHANGED
    ) -> UserDefaults:
        values: dict[str, Any] = {}
        if notify_default is not UNCHANGED:
            values["notify_default"] = parse_level(notify_default, "notify_default").value
        if email_digest is not UNCHANGED:
            if not isinstance(email_digest, bool):
                raise ValidationFailed.field("email_digest", "must be true or false")
            values["email_digest"] = email_digest
        if values:
            async with self._db.transaction() as conn:
                await ensure_settings_row(conn, user_id)
                await conn.execute(
                    update(notification_settings)
                    .where(notification_settings.c.user_id == user_id)
                    .values(**values)
                )
        result = await self.defaults(user_id)
        if values:
            await self._events.emit(
                [Event(EventType.USER_SETTINGS_UPDATED, result.to_public(), user_ids=(user_id,))]
            )
        return result

    async def update_conversation(
        self,
        user_id: str,
        conversation_id: str,
        *,
        notify: object = UNCHANGED,
        muted_until: object = UNCHANGED,
    ) -> ConversationSettings:
        """Set the caller's level (``None`` returns to the default) and/or mute."""
        now = utcnow()
        values: dict[str, Any] = {}
        if notify is not UNCHANGED:
            values["notify"] = None if notify is None else parse_level(notify, "notify").value
        if muted_until is not UNCHANGED:
            values["muted_until"] = parse_muted_until(muted_until, now)
        where = (members.c.conversation_id == conversation_id, members.c.user_id == user_id)
        async with self._db.transaction() as conn:
            await membership(conn, conversation_id, user_id)  # NotFound for non-members
            if values:
                await conn.execute(update(members).where(*where).values(**values))
            row = (await conn.execute(select(members.c.notify, members.c.muted_until).where(*where))).one()
        result = ConversationSettings(
            conversation_id,
            NotifyLevel(row.notify) if row.notify else None,
            row.muted_until if is_muted(row.muted_until, now) else None,
        )
        if values:
            await self._events.emit(
                [
                    Event(
                        EventType.CONVERSATION_SETTINGS_UPDATED,
                        result.to_public(),
                        user_ids=(user_id,),
                    )
                ]
            )
        return result
