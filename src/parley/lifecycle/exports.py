"""Exports (DESIGN §6.4): a job builds a ZIP into the BlobStore; its owner downloads it.

- ``POST /users/me/export`` (anyone, ``exports_per_day`` per user per day) and
  ``POST /conversations/{id}/export`` (a group's owner and admins) create a ``queued`` row
  and queue job ``exports.build``; ``export.updated`` events (to the requesting user's
  sessions) report ``running`` with a percentage, then ``ready`` or ``failed``.
- The archive is written to a temporary file piece by piece (``zip_sink``) and stored with
  ``put_file``: nothing holds a whole export in memory, and S3 works like a local directory.
- ``GET /users/me/exports/{id}`` answers the export with a ``download_url``: signed
  (HMAC, like attachment URLs but under its own key) and short-lived, so a plain link
  downloads it. Exports and their archives are deleted ``export_ttl_days`` after the
  request (job ``exports.sweep``, hourly).
- Audited (``export.requested`` with who asked, ``export.finished`` with the outcome), in
  the transaction of the change each records; never the archive's content.
- The build job is idempotent: a retry rebuilds the archive under the same key. A build
  that fails for good marks the export ``failed``.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, insert, select, update

from parley.clock import isoformat, utcnow
from parley.errors import NotFound, RateLimited
from parley.ids import new_id
from parley.jobs.queue import MAX_ATTEMPTS, Job, JobQueue
from parley.jobs.scheduler import Scheduler
from parley.lifecycle.export_content import ExportWriter
from parley.lifecycle.zip_sink import ZipSink
from parley.media.blobstore import BlobStore
from parley.observability.metrics import Metrics
from parley.services.access import membership, require_admin
from parley.services.attachment_urls import AttachmentUrls
from parley.services.audit import Action, write_entry
from parley.services.events import Event, EventSink
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.lifecycle import data_exports
from parley.wire.events import EventType

log = logging.getLogger(__name__)

BUILD_JOB = "exports.build"
SWEEP_JOB = "exports.sweep"
EXPORT_EVENT = EventType.EXPORT_UPDATED
EXPORT_NOT_FOUND = "No such export"
DOWNLOAD_PREFIX = "/api/v1/exports"
# The signed download link lives between one and two of these.
DOWNLOAD_TTL_SECONDS = 3600
SWEEP_EVERY_SECONDS = 3600.0
RATE_WINDOW = timedelta(days=1)


def export_key(export_id: str) -> str:
    return f"exports/{export_id}.zip"


class Exports:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        events: EventSink,
        jobs: JobQueue,
        metrics: Metrics,
        *,
        secret: str,
        ttl: timedelta,
        per_day: int,
        temp_dir: Path,
        public_url: str | None,
    ) -> None:
        self._db = db
        self.blobs = blobs
        self._events = events
        self._jobs = jobs
        self._metrics = metrics
        # Its own key: an attachment URL can never stand in for an export link.
        self._signer = AttachmentUrls(f"{secret}\x00exports", ttl_seconds=DOWNLOAD_TTL_SECONDS)
        self._ttl = ttl
        self._per_day = per_day
        self._temp_dir = temp_dir
        self._public_url = public_url or ""
        self._writer = ExportWriter(db, blobs)

    # --- requests

    async def request(self, user_id: str, conversation_id: str | None = None) -> dict[str, Any]:
        """Queue an export; ``RateLimited`` past ``per_day`` requests in a day."""
        now = utcnow()
        export_id = new_id()
        async with self._db.transaction() as conn:
            if conversation_id is not None:
                require_admin(await membership(conn, conversation_id, user_id))
            # The user's row lock (PostgreSQL; SQLite writers are serialised anyway): a burst
            # of requests counts one after another, so the limit holds under concurrency.
            await conn.execute(
                select(users.c.id).where(users.c.id == user_id).with_for_update()
            )
            recent = list(
                await conn.execute(
                    select(data_exports.c.created_at)
                    .where(
                        data_exports.c.user_id == user_id,
                        data_exports.c.created_at > now - RATE_WINDOW,
                    )
                    .order_by(data_exports.c.created_at)
                )
            )
            if len(recent) >= self._per_day:
                retry = recent[0].created_at + RATE_WINDOW - now
                raise RateLimited(retry.total_seconds(), "Too many exports today; try again later")
            await conn.execute(
                insert(data_exports).values(
                    id=export_id,
                    user_id=user_id,
                    conversation_id=conversation_id,
                    status="queued",
                    progress=0,
                    created_at=now,
                    expires_at=now + self._ttl,
                )
            )
            await write_entry(
                conn,
                Action.EXPORT_REQUESTED,
                actor_id=user_id,
                target_user_id=user_id,
                target_id=export_id,
                details={"kind": "conversation" if conversation_id else "personal", "conversation_id": conversation_id},
            )
            # Read back before the job can start: the answer always says "queued".
            created = (
                await conn.execute(select(data_exports).where(data_exports.c.id == export_id))
            ).one()
        await self._jobs.enqueue(BUILD_JOB, {"export_id": export_id})
        return self._public(created)

    async def get(self, user_id: str, export_id: str) -> dict[str, Any]:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(data_exports).where(
                        data_exports.c.id == export_id, data_exports.c.user_id == user_id
                    )
                )
            ).first()
        if row is None or row.expires_at <= utcnow():
            raise NotFound(EXPORT_NOT_FOUND)
        return self._public(row)

    async def list_for(self, user_id: str) -> list[dict[str, Any]]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(data_exports)
                .where(data_exports.c.user_id == user_id, data_exports.c.expires_at > utcnow())
                .order_by(data_exports.c.created_at.desc())
            )
            return [self._public(row) for row in rows]

    def _public(self, row: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": row.id,
            "kind": "conversation" if row.conversation_id else "personal",
            "conversation_id": row.conversation_id,
            "status": row.status,
            "progress": 100 if row.status == "ready" else row.progress,
            "size": row.size,
            "created_at": isoformat(row.created_at),
            "finished_at": isoformat(row.finished_at) if row.finished_at else None,
            "expires_at": isoformat(row.expires_at),
            "download_url": None,
        }
        if row.status == "ready":
            expires = self._signer.expiry()
            query = urlencode({"exp": expires, "sig": self._signer.signature(row.id, "zip", expires)})
            payload["download_url"] = f"{self._public_url}{DOWNLOAD_PREFIX}/{row.id}/download?{query}"
        return payload

    async def open_download(self, export_id: str, exp: str, sig: str) -> tuple[str, str]:
        """Check a signed link; the archive's blob key and a file name."""
        self._signer.verify(export_id, "zip", exp, sig)
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(data_exports).where(data_exports.c.id == export_id))
            ).first()
        if row is None or row.status != "ready" or row.blob_key is None or row.expires_at <= utcnow():
            raise NotFound(EXPORT_NOT_FOUND)
        day = row.created_at.strftime("%Y-%m-%d")
        return row.blob_key, f"parley-export-{day}-{row.id[-6:].lower()}.zip"

    # --- the build job

    async def run_build_job(self, job: Job) -> None:
        export_id = str(job.payload.get("export_id", ""))
        try:
            await self.build(export_id)
        except Exception:
            if job.attempt < MAX_ATTEMPTS:
                raise  # retried with backoff
            log.exception("export failed", extra={"export_id": export_id})
            await self._finish(export_id, status="failed", error="the export could not be built")
            self._metrics.lifecycle.exports.labels("failed").inc()

    async def build(self, export_id: str) -> None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(data_exports).where(data_exports.c.id == export_id))
            ).first()
        if row is None or row.status in ("ready", "failed"):
            return  # deleted, or a duplicate delivery of a finished job
        user_id = row.user_id
        last = -1

        async def progress(percent: int) -> None:
            nonlocal last
            percent = max(0, min(99, percent))
            if percent < last + 10 and percent != 0:
                return  # a few events per export, not one per page
            last = percent
            await self._update(export_id, user_id, status="running", progress=percent)

        await progress(0)
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._temp_dir) as folder:
            path = Path(folder) / "export.zip"
            sink = ZipSink(path)
            try:
                if row.conversation_id is None:
                    await self._writer.personal(sink, user_id, progress)
                else:
                    await self._writer.conversation(sink, row.conversation_id, progress)
            finally:
                await sink.close()
            key = export_key(export_id)
            await self.blobs.put_file(key, path, content_type="application/zip")
            size = path.stat().st_size
        if not await self._finish(export_id, status="ready", blob_key=key, size=size):
            # The export went while it was being built (its user was erased): so does
            # the archive, which no row would ever lead a sweep to.
            await self.blobs.delete(key)
            return
        self._metrics.lifecycle.exports.labels("ready").inc()

    async def _update(self, export_id: str, user_id: str, **values: Any) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(data_exports).where(data_exports.c.id == export_id).values(**values)
            )
        await self._announce(export_id, user_id)

    async def _finish(self, export_id: str, **values: Any) -> bool:
        """Record the outcome; False when the export no longer exists."""
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(data_exports)
                    .where(data_exports.c.id == export_id)
                    .values(finished_at=utcnow(), **values)
                    .returning(data_exports.c.user_id, data_exports.c.conversation_id)
                )
            ).first()
            if row is not None:
                await write_entry(
                    conn,
                    Action.EXPORT_FINISHED,
                    target_user_id=row.user_id,
                    target_id=export_id,
                    details={"status": values.get("status"), "conversation_id": row.conversation_id},
                )
        if row is None:
            return False
        await self._announce(export_id, row.user_id)
        return True

    async def _announce(self, export_id: str, user_id: str) -> None:
        try:
            payload = await self.get(user_id, export_id)
        except NotFound:
            return
        await self._events.emit([Event(EXPORT_EVENT, {"export": payload}, user_ids=(user_id,))])

    # --- removal

    async def delete_for_user(self, user_id: str) -> int:
        """Every export of a user, archives first (erasure)."""
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(
                    select(data_exports.c.id, data_exports.c.blob_key).where(
                        data_exports.c.user_id == user_id
                    )
                )
            )
        return await self._remove(rows)

    async def sweep(self, *, now: datetime | None = None) -> int:
        now = now or utcnow()
        async with self._db.read() as conn:
            rows = list(
                await conn.execute(
                    select(data_exports.c.id, data_exports.c.blob_key)
                    .where(data_exports.c.expires_at <= now)
                    .limit(500)
                )
            )
        return await self._remove(rows)

    async def _remove(self, rows: list[Any]) -> int:
        for row in rows:
            # The blob key is derived from the id: a build still running when the row went
            # may store it afterwards, and the next sweep of that key finds no row — so
            # delete by the derived key, whatever the row says.
            await self.blobs.delete(row.blob_key or export_key(row.id))
        if rows:
            async with self._db.transaction() as conn:
                await conn.execute(
                    delete(data_exports).where(data_exports.c.id.in_([r.id for r in rows]))
                )
        return len(rows)


def register_export_jobs(jobs: JobQueue, scheduler: Scheduler, exports: Exports) -> None:
    async def sweep(job: Job) -> None:
        removed = await exports.sweep()
        if removed:
            log.info("expired exports removed", extra={"removed": removed})

    jobs.register(BUILD_JOB, exports.run_build_job)
    jobs.register(SWEEP_JOB, sweep)
    scheduler.every(SWEEP_EVERY_SECONDS, SWEEP_JOB)
