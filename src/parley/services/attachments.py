"""Attachments after upload: who may download what, and removing files nobody needs.

Download access (DESIGN §2 REST, issue #6): a request is allowed by either
- a valid signed URL (``attachment_urls``: HMAC + expiry) — what ``<img src>`` uses; or
- a bearer token of a member of the attachment's conversation — or, for an upload no
  message has claimed yet, of its uploader.
Everything else is ``NotFound``, the same answer as for an id that does not exist.

Removal: one idempotent sweep (job ``attachments.sweep``) marks and then deletes
- uploads never claimed within ``unclaimed_ttl`` (24 h by default),
- attachments of deleted messages (marked in the deleting transaction),
- attachments whose message row is gone (a deleted conversation: ``message_id`` was set
  NULL by the foreign key while ``claimed_at`` stays),
then deletes their blobs and rows. Blobs go first: a crash in between leaves a marked row,
and the next sweep deletes its (maybe already missing) blobs again. The scheduler runs it
periodically; a ``message.deleted`` event queues one at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import NotFound
from parley.jobs.queue import Job, JobQueue
from parley.jobs.scheduler import Scheduler
from parley.media.blobstore import BlobStore
from parley.services import attachment_records
from parley.services.access import membership
from parley.services.attachment_gallery import DEFAULT_LIMIT as DEFAULT_GALLERY_LIMIT
from parley.services.attachment_gallery import GalleryPage, list_gallery
from parley.services.attachment_records import (
    AttachmentRecord,
    VariantRecord,
    load_record,
    record_from_row,
)
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import Event
from parley.services.uploads import Uploads
from parley.store.db import Database
from parley.store.tables.media import attachments
from parley.wire.events import EventType

log = logging.getLogger(__name__)

SWEEP_JOB = "attachments.sweep"
ATTACHMENT_NOT_FOUND = "No such attachment"
# Rows handled per sweep step, and steps per sweep: a backlog is worked off over several
# runs instead of one job holding the queue.
SWEEP_BATCH = 200
SWEEP_MAX_BATCHES = 25
# Temporary upload files older than this were left by a crashed process.
STALE_TEMP_SECONDS = 6 * 3600


@dataclass(frozen=True, slots=True)
class Download:
    record: AttachmentRecord
    variant: VariantRecord

    @property
    def inline(self) -> bool:
        """Raster images, audio and video display in the page; anything else downloads."""
        return self.record.kind != "document"


@dataclass(frozen=True, slots=True)
class SweepResult:
    marked: int
    removed: int


class Attachments:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        urls: AttachmentUrls,
        jobs: JobQueue,
        *,
        unclaimed_ttl: timedelta,
    ) -> None:
        self._db = db
        self.store = store
        self.urls = urls
        self._jobs = jobs
        self._unclaimed_ttl = unclaimed_ttl
        self._sweep_queued = False

    # --- access

    async def describe(self, user_id: str, attachment_id: str) -> dict[str, Any]:
        """The attachment's payload with fresh signed URLs, for someone allowed to see it."""
        async with self._db.read() as conn:
            record = await load_record(conn, attachment_id)
            await self._check_reader(conn, record, user_id)
        assert record is not None
        return record.to_public(self.urls)

    async def open_download(
        self,
        attachment_id: str,
        variant: str,
        *,
        user_id: str | None = None,
        expires: str | None = None,
        signature: str | None = None,
    ) -> Download:
        """Authorise one download (signed URL, else ``user_id`` membership)."""
        if signature is not None or expires is not None:
            self.urls.verify(attachment_id, variant, expires or "", signature or "")
        elif user_id is None:
            raise NotFound(ATTACHMENT_NOT_FOUND)
        async with self._db.read() as conn:
            record = await load_record(conn, attachment_id)
            if user_id is not None and signature is None:
                await self._check_reader(conn, record, user_id)
        if record is None or not _live(record) or variant not in record.variants:
            raise NotFound(ATTACHMENT_NOT_FOUND)
        return Download(record, record.variants[variant])

    async def _check_reader(
        self, conn: AsyncConnection, record: AttachmentRecord | None, user_id: str
    ) -> None:
        if record is None or not _live(record):
            raise NotFound(ATTACHMENT_NOT_FOUND)
        if not record.claimed:
            if record.uploader_id != user_id:
                raise NotFound(ATTACHMENT_NOT_FOUND)
            return
        if record.conversation_id is None:
            raise NotFound(ATTACHMENT_NOT_FOUND)
        try:
            await membership(conn, record.conversation_id, user_id)
        except NotFound:
            raise NotFound(ATTACHMENT_NOT_FOUND) from None

    async def gallery(
        self,
        user_id: str,
        conversation_id: str,
        *,
        kind: str | None = None,
        before: str | None = None,
        limit: int = DEFAULT_GALLERY_LIMIT,
    ) -> GalleryPage:
        """The conversation's files and media, newest first (``attachment_gallery``)."""
        return await list_gallery(
            self._db, self.urls, user_id, conversation_id, kind=kind, before=before, limit=limit
        )

    # --- removal

    async def sweep(self, *, now: datetime | None = None) -> SweepResult:
        """Remove what nobody needs any more (see the module docstring). Idempotent; safe
        to run on several nodes at once."""
        now = now or utcnow()
        cutoff = now - self._unclaimed_ttl
        async with self._db.transaction() as conn:
            # The same conditions a claim checks, negated: a claim and this mark cannot
            # both succeed on one row, so an upload is never attached and removed.
            marked = await conn.execute(
                update(attachments)
                .where(
                    attachments.c.deleted_at.is_(None),
                    or_(
                        and_(attachments.c.claimed_at.is_(None), attachments.c.created_at < cutoff),
                        and_(attachments.c.claimed_at.is_not(None), attachments.c.message_id.is_(None)),
                    ),
                )
                .values(deleted_at=now)
            )
        removed = 0
        for _ in range(SWEEP_MAX_BATCHES):
            async with self._db.read() as conn:
                rows = list(
                    await conn.execute(
                        select(attachments)
                        .where(attachments.c.deleted_at.is_not(None))
                        .order_by(attachments.c.deleted_at, attachments.c.id)
                        .limit(SWEEP_BATCH)
                    )
                )
            if not rows:
                break
            records = [record_from_row(row) for row in rows]
            async with self._db.read() as conn:
                # Forwarded files share blobs (blob_owner_id): keep those still in use.
                shared = await attachment_records.still_shared(conn, records)
            await self._delete_blobs(
                [
                    key
                    for record in records
                    if (record.blob_owner_id or record.id) not in shared
                    for key in record.blob_keys()
                ]
            )
            async with self._db.transaction() as conn:
                await conn.execute(
                    delete(attachments).where(attachments.c.id.in_([r.id for r in records]))
                )
            removed += len(records)
            if len(rows) < SWEEP_BATCH:
                break
        return SweepResult(int(marked.rowcount or 0), removed)

    async def _delete_blobs(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 16):  # a few at a time: S3 connections are shared
            await asyncio.gather(*(self.store.delete(key) for key in keys[start : start + 16]))

    async def on_events(self, events: Sequence[Event]) -> None:
        """Event listener: a deleted message's files go now, not at the next periodic run."""
        if self._sweep_queued or not any(e.type is EventType.MESSAGE_DELETED for e in events):
            return
        self._sweep_queued = True
        try:
            await self._jobs.enqueue(SWEEP_JOB)
        except Exception:  # the periodic sweep will get to it
            self._sweep_queued = False
            log.exception("could not queue an attachment sweep")

    async def run_sweep_job(self, job: Job) -> None:
        self._sweep_queued = False
        result = await self.sweep()
        if result.marked or result.removed:
            log.info("attachment sweep", extra={"marked": result.marked, "removed": result.removed})


def _live(record: AttachmentRecord) -> bool:
    """Not being removed, and — once claimed — still attached to a message."""
    return record.deleted_at is None and (not record.claimed or record.message_id is not None)


def register_attachment_jobs(
    jobs: JobQueue,
    scheduler: Scheduler,
    attachments_service: Attachments,
    uploads: Uploads,
    *,
    every_seconds: float,
) -> None:
    """The sweep job (also clearing stale temporary files) and its periodic tick."""

    async def sweep(job: Job) -> None:
        await attachments_service.run_sweep_job(job)
        await uploads.remove_stale_temp_files(older_than_seconds=STALE_TEMP_SECONDS)

    jobs.register(SWEEP_JOB, sweep)
    scheduler.every(every_seconds, SWEEP_JOB)
