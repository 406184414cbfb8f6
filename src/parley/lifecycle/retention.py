"""Retention: deleting messages older than a conversation's retention period.

Policy (DESIGN §6.4): the site keeps messages ``PARLEY_RETENTION_DAYS`` days (unset: for
ever); a group's admins may set the conversation's own period (``retention_days``), and a
site administrator may put a conversation under legal hold, which suspends every deletion
there until it is lifted.

The sweep (job ``retention.sweep``, daily; ``parley retention run [--as-of DATE]``) removes
each conversation's expired messages as a *prefix* of its seq order: starting after
``conversations.expired_through_seq`` it reads the next ``batch_size`` messages by seq (one
bounded index range) and deletes the leading run older than the cutoff, then advances
``expired_through_seq`` to the last seq deleted, in the same transaction. So "every message
at or below ``expired_through_seq`` is gone" always holds, and that one number is all a
client needs: the ``changes`` feed carries it and the ``messages.expired`` event announces
it, and the client drops what it holds at or below it.

Each batch, in one transaction that first re-checks the hold under the conversation's row
lock (a hold set meanwhile wins): the messages' attachments are marked for the attachment
sweep (which removes their files), their notification rows, reactions and link previews
go, and the rows are deleted — the search triggers remove their index entries. With
``PARLEY_RETENTION_ARCHIVE`` the batch is first written as gzip'd JSON Lines to the media
store (``archive``). Safe to run on several nodes at once: the advance of
``expired_through_seq`` is conditional, so a batch is deleted once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import isoformat, utcnow
from parley.errors import Forbidden, NotFound, ValidationFailed
from parley.jobs.queue import Job, JobQueue
from parley.jobs.scheduler import Scheduler
from parley.lifecycle.archive import archive_key, write_archive
from parley.media.blobstore import BlobStore
from parley.observability.metrics import Metrics
from parley.services.access import insert_system_message, membership, require_admin
from parley.services.conversations import Conversations
from parley.services.events import Event, EventSink
from parley.services.message_records import load_messages
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations
from parley.store.tables.media import attachments, message_link_previews
from parley.store.tables.messages import messages, reactions
from parley.store.tables.notifications import notifications
from parley.wire.events import EventType

log = logging.getLogger(__name__)

SWEEP_JOB = "retention.sweep"
ATTACHMENT_SWEEP_JOB = "attachments.sweep"
EXPIRED_EVENT = EventType.MESSAGES_EXPIRED
MAX_RETENTION_DAYS = 36_500
# Conversations read per page while looking for work: the sweep never loads them all.
CONVERSATION_PAGE = 200


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    site_days: int | None
    archive: bool
    batch_size: int


@dataclass(slots=True)
class RetentionReport:
    conversations: int = 0
    messages_deleted: int = 0
    attachments_released: int = 0
    archives_written: int = 0
    held: int = 0
    expired_through: dict[str, int] = field(default_factory=dict)

    def to_public(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "messages_deleted": self.messages_deleted,
            "attachments_released": self.attachments_released,
            "archives_written": self.archives_written,
            "held": self.held,
        }


def check_days(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_RETENTION_DAYS:
        raise ValidationFailed.field("retention_days", f"must be 1-{MAX_RETENTION_DAYS} or null")
    return value


async def require_site_admin(conn: AsyncConnection, user_id: str) -> None:
    row = (await conn.execute(select(users.c.is_admin).where(users.c.id == user_id))).first()
    if row is None or not row.is_admin:
        raise Forbidden("Only a site administrator can do this")


class Retention:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        events: EventSink,
        jobs: JobQueue,
        metrics: Metrics,
        policy: RetentionPolicy,
        conversations_service: Conversations,
        *,
        temp_dir: Path,
    ) -> None:
        self._db = db
        self._conversations = conversations_service
        self._blobs = blobs
        self._events = events
        self._jobs = jobs
        self._metrics = metrics
        self.policy = policy
        self._temp_dir = temp_dir

    # --- settings

    async def set_conversation_days(
        self, user_id: str, conversation_id: str, days: int | None
    ) -> None:
        """A group's admins set its period (None: the site policy). Recorded in the
        timeline like any settings change, so every member sees it."""
        check_days(days)
        now = utcnow()
        async with self._db.transaction() as conn:
            require_admin(await membership(conn, conversation_id, user_id))
            current = (
                await conn.execute(
                    select(conversations.c.retention_days).where(
                        conversations.c.id == conversation_id
                    )
                )
            ).scalar_one()
            if current == days:
                return
            await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(retention_days=days, updated_at=now)
            )
            changes = {"retention_days": days}
            message_id = await insert_system_message(
                conn,
                conversation_id,
                {"type": "conversation.updated", "actor_id": user_id, "changes": changes},
                now,
            )
        await self._conversations.announce_change(conversation_id, message_id, changes)

    async def set_legal_hold(self, actor_id: str | None, conversation_id: str, hold: bool) -> None:
        """Site administrators (``actor_id`` None: an operator at the command line)."""
        async with self._db.transaction() as conn:
            if actor_id is not None:
                await require_site_admin(conn, actor_id)
            result = await conn.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(legal_hold=hold)
            )
            if not result.rowcount:
                raise NotFound("No such conversation")
        log.info("legal hold", extra={"conversation_id": conversation_id, "hold": hold})

    # --- the sweep

    async def run(self, *, as_of: datetime | None = None) -> RetentionReport:
        """Delete every expired message (see the module docstring). Idempotent."""
        as_of = as_of or utcnow()
        report = RetentionReport()
        after = ""
        while True:
            async with self._db.read() as conn:
                rows = list(
                    await conn.execute(self._candidates(after).limit(CONVERSATION_PAGE))
                )
            for row in rows:
                if row.legal_hold:
                    report.held += 1
                    continue
                days = row.retention_days if row.retention_days is not None else self.policy.site_days
                if days is None:
                    continue
                deleted = await self._expire(row.id, as_of - timedelta(days=days), report)
                if deleted:
                    report.conversations += 1
            if len(rows) < CONVERSATION_PAGE:
                break
            after = rows[-1].id
        if report.attachments_released:
            try:
                await self._jobs.enqueue(ATTACHMENT_SWEEP_JOB)
            except Exception:  # the periodic attachment sweep gets there too
                log.exception("could not queue an attachment sweep")
        self._metrics.lifecycle.retention_runs.inc()
        log.info("retention sweep", extra={"as_of": isoformat(as_of), **report.to_public()})
        return report

    def _candidates(self, after: str) -> Any:
        query = select(
            conversations.c.id, conversations.c.retention_days, conversations.c.legal_hold
        ).where(conversations.c.id > after)
        if self.policy.site_days is None:
            # Without a site policy only conversations with their own period have work.
            query = query.where(
                or_(conversations.c.retention_days.is_not(None), conversations.c.legal_hold)
            )
        return query.order_by(conversations.c.id)

    async def _expire(self, conversation_id: str, cutoff: datetime, report: RetentionReport) -> int:
        deleted = 0
        while True:
            async with self._db.read() as conn:
                through = (
                    await conn.execute(
                        select(conversations.c.expired_through_seq).where(
                            conversations.c.id == conversation_id
                        )
                    )
                ).scalar_one_or_none()
                if through is None:
                    return deleted  # the conversation was deleted meanwhile
                batch = list(
                    await conn.execute(
                        select(messages.c.id, messages.c.seq, messages.c.created_at)
                        .where(
                            messages.c.conversation_id == conversation_id,
                            messages.c.seq > through,
                        )
                        .order_by(messages.c.seq)
                        .limit(self.policy.batch_size)
                    )
                )
            expired = []
            for row in batch:
                if row.created_at >= cutoff:
                    break
                expired.append(row)
            if not expired:
                return deleted
            first_seq, last_seq = expired[0].seq, expired[-1].seq
            if self.policy.archive:
                await self._archive(conversation_id, through, last_seq, first_seq)
                report.archives_written += 1
            done = await self._delete_batch(conversation_id, through, last_seq, report)
            if not done:
                return deleted  # held meanwhile, or another node took this batch
            deleted += done
            if len(expired) < len(batch) or len(batch) < self.policy.batch_size:
                return deleted

    async def _archive(self, conversation_id: str, through: int, last_seq: int, first_seq: int) -> None:
        async with self._db.read() as conn:
            records = await load_messages(
                conn,
                select(messages)
                .where(
                    messages.c.conversation_id == conversation_id,
                    messages.c.seq > through,
                    messages.c.seq <= last_seq,
                )
                .order_by(messages.c.seq),
                urls=None,  # the archive keeps no expiring links
            )
        await write_archive(
            self._blobs,
            self._temp_dir,
            archive_key(conversation_id, first_seq, last_seq),
            [record.to_public() for record in records],
        )

    async def _delete_batch(
        self, conversation_id: str, through: int, last_seq: int, report: RetentionReport
    ) -> int:
        now = utcnow()
        in_batch = (
            messages.c.conversation_id == conversation_id,
            messages.c.seq > through,
            messages.c.seq <= last_seq,
        )
        async with self._db.transaction() as conn:
            # The conditional advance takes the conversation's row lock first: a hold set
            # meanwhile, or another node's sweep of the same batch, makes it match nothing.
            advanced = await conn.execute(
                update(conversations)
                .where(
                    conversations.c.id == conversation_id,
                    conversations.c.expired_through_seq == through,
                    conversations.c.legal_hold.is_(False),
                )
                .values(expired_through_seq=last_seq)
                .returning(conversations.c.last_seq)
            )
            position = advanced.scalar_one_or_none()
            if position is None:
                return 0
            ids = select(messages.c.id).where(*in_batch).scalar_subquery()
            released = await conn.execute(
                update(attachments)
                .where(attachments.c.message_id.in_(ids), attachments.c.deleted_at.is_(None))
                .values(deleted_at=now)
            )
            await conn.execute(delete(reactions).where(reactions.c.message_id.in_(ids)))
            await conn.execute(
                delete(message_link_previews).where(message_link_previews.c.message_id.in_(ids))
            )
            await conn.execute(
                delete(notifications).where(
                    notifications.c.conversation_id == conversation_id,
                    notifications.c.message_id.in_(ids),
                )
            )
            removed = await conn.execute(delete(messages).where(*in_batch))
        count = int(removed.rowcount or 0)
        report.messages_deleted += count
        report.attachments_released += int(released.rowcount or 0)
        report.expired_through[conversation_id] = last_seq
        self._metrics.lifecycle.retention_deleted.inc(count)
        await self._events.emit(
            [
                Event(
                    EXPIRED_EVENT,
                    {
                        "conversation_id": conversation_id,
                        "seq": int(position),
                        "expired_through_seq": last_seq,
                    },
                    conversation_id=conversation_id,
                )
            ]
        )
        return count

    async def run_sweep_job(self, job: Job) -> None:
        await self.run()


def register_retention_jobs(
    jobs: JobQueue, scheduler: Scheduler, retention: Retention, *, every_seconds: float
) -> None:
    jobs.register(SWEEP_JOB, retention.run_sweep_job)
    scheduler.every(every_seconds, SWEEP_JOB)
