"""The audit log: security events, kept ``PARLEY_AUDIT_RETENTION_DAYS`` (DESIGN §6.3).

What is recorded: logins and failed logins (with the client address), password changes and
resets, two-factor changes and recovery codes used, session revocations, role changes,
deactivations, and every administrator's or moderator's action. Never message content: a
report's entry names the message, not its text. Entries have no foreign keys, so they
outlive the users and things they name.

An entry is written in the same transaction as the change it records when there is one
(:func:`write_entry` takes the connection), so no change goes unrecorded and no entry
records a change that was rolled back. Events with no transaction of their own (a failed
login) use :meth:`AuditLog.record`.

Reading pages newest first by id (ids are time-ordered): ``before`` is the last id seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.ids import new_id
from parley.jobs.queue import Job, JobQueue
from parley.jobs.scheduler import Scheduler
from parley.store.db import Database
from parley.store.tables.administration import audit_log

PRUNE_JOB = "audit.prune"
PRUNE_EVERY_SECONDS = 24 * 3600
MAX_PAGE = 200


class Action:
    """The actions recorded; stable strings (filters in the console and the API)."""

    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_2FA_FAILED = "login.2fa_failed"
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_REQUESTED = "password.reset_requested"
    PASSWORD_RESET = "password.reset"
    PASSWORD_RESET_LINK = "password.reset_link_issued"
    TOTP_ENABLED = "2fa.enabled"
    TOTP_DISABLED = "2fa.disabled"
    RECOVERY_CODE_USED = "2fa.recovery_code_used"
    RECOVERY_CODES_RENEWED = "2fa.recovery_codes_renewed"
    SESSIONS_REVOKED = "sessions.revoked"
    ROLE_CHANGED = "user.role_changed"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    SETTINGS_CHANGED = "settings.changed"
    INVITE_CREATED = "invite.created"
    INVITE_REVOKED = "invite.revoked"
    REGISTERED = "user.registered"
    REPORT_CREATED = "report.created"
    REPORT_RESOLVED = "report.resolved"
    CONVERSATION_DELETED = "conversation.deleted"
    CONVERSATION_ARCHIVED = "conversation.archived"
    CONVERSATION_UNARCHIVED = "conversation.unarchived"
    # End-to-end encryption switched on for an existing conversation (never off again).
    CONVERSATION_ENCRYPTED = "conversation.encrypted"
    # Exports and erasures: who asked, and when the work ended; never what was in them.
    EXPORT_REQUESTED = "export.requested"
    EXPORT_FINISHED = "export.finished"
    ERASURE_REQUESTED = "erasure.requested"
    ERASURE_FINISHED = "erasure.finished"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: datetime
    action: str
    actor_id: str | None
    target_user_id: str | None
    target_id: str | None
    ip_address: str
    details: dict[str, Any]

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": isoformat(self.at),
            "action": self.action,
            "actor_id": self.actor_id,
            "target_user_id": self.target_user_id,
            "target_id": self.target_id,
            "ip_address": self.ip_address,
            "details": self.details,
        }


async def write_entry(
    conn: AsyncConnection,
    action: str,
    *,
    actor_id: str | None = None,
    target_user_id: str | None = None,
    target_id: str | None = None,
    ip_address: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` inside the caller's transaction."""
    await conn.execute(
        insert(audit_log).values(
            id=new_id(),
            at=utcnow(),
            action=action,
            actor_id=actor_id,
            target_user_id=target_user_id,
            target_id=target_id,
            ip_address=ip_address[:64],
            details=json.dumps(details or {}, ensure_ascii=False, sort_keys=True),
        )
    )


class AuditLog:
    def __init__(
        self, db: Database, jobs: JobQueue, scheduler: Scheduler, *, retention: timedelta
    ) -> None:
        self._db = db
        self._retention = retention
        jobs.register(PRUNE_JOB, self._prune_job)
        scheduler.every(PRUNE_EVERY_SECONDS, PRUNE_JOB)

    async def record(self, action: str, **fields: Any) -> None:
        """Record ``action`` in a transaction of its own (see :func:`write_entry`)."""
        async with self._db.transaction() as conn:
            await write_entry(conn, action, **fields)

    async def list(
        self,
        *,
        action: str | None = None,
        actor_id: str | None = None,
        target_user_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> tuple[list[AuditEntry], bool]:
        """Entries newest first, filtered; ``(entries, has_more)``."""
        query = select(audit_log)
        if action:
            query = query.where(audit_log.c.action == action)
        if actor_id:
            query = query.where(audit_log.c.actor_id == actor_id)
        if target_user_id:
            query = query.where(audit_log.c.target_user_id == target_user_id)
        if before:
            query = query.where(audit_log.c.id < before)
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.read() as conn:
            rows = list(await conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit + 1)))
        entries = [
            AuditEntry(
                id=r.id,
                at=r.at,
                action=r.action,
                actor_id=r.actor_id,
                target_user_id=r.target_user_id,
                target_id=r.target_id,
                ip_address=r.ip_address,
                details=json.loads(r.details),
            )
            for r in rows[:limit]
        ]
        return entries, len(rows) > limit

    async def prune(self, now: datetime | None = None) -> int:
        """Delete entries older than the retention; how many went."""
        cutoff = (now or utcnow()) - self._retention
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(audit_log).where(audit_log.c.at < cutoff))
        return int(result.rowcount or 0)

    async def _prune_job(self, job: Job) -> None:
        await self.prune()
