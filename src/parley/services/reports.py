"""Reported messages and their moderation (DESIGN §6.3).

Any member who can see a message may report it once, with a reason (not their own
messages, nor system messages). Moderators and administrators see the queue and resolve a
report by ``dismiss``, ``delete_message`` (a tombstone, as a conversation admin's delete) or
``deactivate_sender`` (through ``Administration``: sessions revoked, sockets closed).
A resolution closes every open report of the same message; each reporter is told the
outcome with a ``report.resolved`` event ``{report}``. Moderators cannot deactivate staff
(another moderator or an administrator): that is an administrator's decision.

Every report and resolution is in the audit log, naming the message, never its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from parley.clock import isoformat, utcnow
from parley.errors import (
    AlreadyReported,
    Conflict,
    Forbidden,
    MessageDeleted,
    NotFound,
    ValidationFailed,
)
from parley.ids import new_id
from parley.services.access import visible_message
from parley.services.administration import Administration
from parley.services.audit import Action, write_entry
from parley.services.events import Event, EventSink
from parley.services.messages import Messages
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.administration import reports
from parley.store.tables.messages import messages
from parley.wire.events import EventType

Resolution = Literal["dismiss", "delete_message", "deactivate_sender"]
RESOLVED_AS = {
    "dismiss": "dismissed",
    "delete_message": "message_deleted",
    "deactivate_sender": "sender_deactivated",
}
MAX_REASON = 1000
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class Report:
    id: str
    message_id: str
    conversation_id: str
    reporter_id: str
    sender_id: str | None
    reason: str
    status: str
    created_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: str | None

    def to_reporter(self) -> dict[str, Any]:
        """What the reporter sees of their report."""
        return {
            "id": self.id,
            "message_id": self.message_id,
            "conversation_id": self.conversation_id,
            "reason": self.reason,
            "status": self.status,
            "resolution": self.resolution,
            "created_at": isoformat(self.created_at),
            "resolved_at": isoformat(self.resolved_at) if self.resolved_at else None,
        }

    def to_staff(self) -> dict[str, Any]:
        return self.to_reporter() | {
            "reporter_id": self.reporter_id,
            "sender_id": self.sender_id,
            "resolved_by": self.resolved_by,
        }


def _report(row: Any) -> Report:
    return Report(
        id=row.id,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        reporter_id=row.reporter_id,
        sender_id=row.sender_id,
        reason=row.reason,
        status=row.status,
        created_at=row.created_at,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
    )


class Reports:
    def __init__(
        self, db: Database, events: EventSink, messages: Messages, administration: Administration
    ) -> None:
        self._db = db
        self._events = events
        self._messages = messages
        self._administration = administration

    async def report(self, user_id: str, message_id: str, reason: str, *, ip_address: str = "") -> Report:
        text = reason.strip()
        if not 1 <= len(text) <= MAX_REASON:
            raise ValidationFailed.field("reason", f"must be 1-{MAX_REASON} characters")
        now = utcnow()
        report_id = new_id()
        try:
            async with self._db.transaction() as conn:
                message = await visible_message(conn, user_id, message_id, urls=None)  # no links kept
                if message.deleted:
                    raise MessageDeleted()
                if message.kind != "text":
                    raise Forbidden("System messages cannot be reported")
                if message.sender_id == user_id:
                    raise Forbidden("You cannot report your own message")
                values = {
                    "id": report_id,
                    "message_id": message_id,
                    "conversation_id": message.conversation_id,
                    "reporter_id": user_id,
                    "sender_id": message.sender_id,
                    "reason": text,
                    "status": "open",
                    "created_at": now,
                }
                await conn.execute(insert(reports).values(**values))
                await write_entry(
                    conn,
                    Action.REPORT_CREATED,
                    actor_id=user_id,
                    target_user_id=message.sender_id,
                    target_id=message_id,
                    ip_address=ip_address,
                    details={"report_id": report_id, "conversation_id": message.conversation_id},
                )
        except IntegrityError:
            raise AlreadyReported() from None
        return Report(
            id=report_id,
            message_id=message_id,
            conversation_id=message.conversation_id,
            reporter_id=user_id,
            sender_id=message.sender_id,
            reason=text,
            status="open",
            created_at=now,
            resolved_by=None,
            resolved_at=None,
            resolution=None,
        )

    async def list(
        self, *, status: str = "open", before: str | None = None, limit: int = 50
    ) -> tuple[list[dict[str, Any]], bool]:
        """The queue, newest first, each with the message as it is now and both users."""
        if status not in ("open", "resolved"):
            raise ValidationFailed.field("status", "must be open or resolved")
        reporter = users.alias("reporter")
        sender = users.alias("sender")
        query = (
            select(
                reports,
                messages.c.content,
                messages.c.deleted_at.label("message_deleted_at"),
                reporter.c.username.label("reporter_username"),
                sender.c.username.label("sender_username"),
                sender.c.deactivated_at.label("sender_deactivated_at"),
            )
            .join(messages, messages.c.id == reports.c.message_id)
            .join(reporter, reporter.c.id == reports.c.reporter_id)
            .outerjoin(sender, sender.c.id == reports.c.sender_id)
            .where(reports.c.status == status)
        )
        if before:
            query = query.where(reports.c.id < before)
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.read() as conn:
            rows = list(await conn.execute(query.order_by(reports.c.id.desc()).limit(limit + 1)))
        found = [
            _report(r).to_staff()
            | {
                "message": {
                    "content": r.content,
                    "deleted": r.message_deleted_at is not None,
                },
                "reporter_username": r.reporter_username,
                "sender_username": r.sender_username,
                "sender_deactivated": r.sender_deactivated_at is not None,
            }
            for r in rows[:limit]
        ]
        return found, len(rows) > limit

    async def resolve(
        self,
        actor_id: str,
        actor_role: str,
        report_id: str,
        action: str,
        *,
        ip_address: str = "",
    ) -> Report:
        if action not in RESOLVED_AS:
            raise ValidationFailed.field("action", "must be dismiss, delete_message or deactivate_sender")
        async with self._db.read() as conn:
            row = (await conn.execute(select(reports).where(reports.c.id == report_id))).first()
            sender_role = None
            if row is not None and row.sender_id is not None:
                sender_role = (
                    await conn.execute(select(users.c.role).where(users.c.id == row.sender_id))
                ).scalar()
        if row is None:
            raise NotFound("No such report")
        if row.status != "open":
            raise Conflict("This report is already resolved", code="ALREADY_RESOLVED")
        if action == "deactivate_sender":
            if row.sender_id is None:
                raise ValidationFailed.field("action", "the sender's account no longer exists")
            if sender_role in ("moderator", "admin") and actor_role != "admin":
                raise Forbidden("Only an administrator can deactivate a moderator or administrator")
        # The action first: a report is closed only once what it says was done is done.
        if action == "delete_message":
            await self._messages.delete_for_moderation(row.message_id)
        elif action == "deactivate_sender":
            assert row.sender_id is not None
            await self._administration.update_user(
                actor_id, row.sender_id, deactivated=True, ip_address=ip_address
            )
        now = utcnow()
        resolution = RESOLVED_AS[action]
        async with self._db.transaction() as conn:
            closed = list(
                await conn.execute(
                    update(reports)
                    .where(reports.c.message_id == row.message_id, reports.c.status == "open")
                    .values(status="resolved", resolved_by=actor_id, resolved_at=now, resolution=resolution)
                    .returning(reports.c.id)
                )
            )
            if not closed:
                raise Conflict("This report is already resolved", code="ALREADY_RESOLVED")
            await write_entry(
                conn,
                Action.REPORT_RESOLVED,
                actor_id=actor_id,
                target_user_id=row.sender_id,
                target_id=row.message_id,
                ip_address=ip_address,
                details={"report_ids": sorted(r.id for r in closed), "resolution": resolution},
            )
            resolved = [
                _report(r)
                for r in await conn.execute(
                    select(reports).where(reports.c.id.in_([r.id for r in closed]))
                )
            ]
        await self._events.emit(
            [
                Event(EventType.REPORT_RESOLVED, {"report": report.to_reporter()}, user_ids=(report.reporter_id,))
                for report in resolved
            ]
        )
        mine = [r for r in resolved if r.id == report_id]
        return mine[0] if mine else resolved[0]
