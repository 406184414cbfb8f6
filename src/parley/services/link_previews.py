"""Link previews: the title, description and picture of the page a message links to.

Flow (issue #20; DESIGN §6.0 for outbound HTTP):
1. After a message commits (``message.created``, or an edit that changed its first link),
   ``on_events`` queues a job — the sender's acknowledgement never waits for a web page.
2. The job finds the message's first ``http(s)`` link outside code and its preview: from
   the cache (``link_previews``, one row per URL, failures included, for
   ``PARLEY_LINK_PREVIEW_TTL_SECONDS``) or fetched now, through :mod:`parley.outbound`
   (no private, loopback or link-local addresses unless ``PARLEY_OUTBOUND_ALLOW_PRIVATE``;
   no cookies; redirects re-checked; time and size limits).
3. The page's head is read for Open Graph / Twitter / ``<title>`` data; its picture is
   fetched the same way, decoded under the image pixel limit and re-encoded as a small WebP
   kept in the BlobStore. Readers' browsers never load it from the other site (that would
   tell the site who reads the message): they load it from Parley with a signed URL.
4. The message gets the preview and a new ``version_seq``, like an edit, and a
   ``message.updated`` event: clients render it, and resume / the changes feed carry it.

Never for encrypted conversations (a message whose payload carries ciphertext), and not
at all with ``PARLEY_LINK_PREVIEWS=false``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import Row, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.clock import utcnow
from parley.errors import NotFound
from parley.ids import new_id
from parley.jobs.queue import Job, JobQueue
from parley.media.blobstore import BlobStore
from parley.media.sniff import sniff_head
from parley.outbound import OutboundClient, OutboundError
from parley.services.access import bump_version
from parley.services.attachment_urls import AttachmentUrls
from parley.services.events import Event, EventSink
from parley.services.link_preview_html import PageSummary, first_link, summarise
from parley.services.link_preview_records import IMAGE_VARIANT, OK, url_hash
from parley.services.message_records import load_message
from parley.services.message_sending import changed_event
from parley.store.db import Database
from parley.store.tables.conversations import members
from parley.store.tables.media import link_previews, message_link_previews
from parley.store.tables.messages import messages
from parley.wire.events import EventType

log = logging.getLogger(__name__)

JOB = "link_previews.refresh"
# Only the head of a page matters; a megabyte of HTML would be read for nothing.
MAX_HTML_BYTES = 512 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Preview pictures are shown at most about 400 px wide (twice that for sharp screens).
IMAGE_BOX = 800
IMAGE_QUALITY = 80
FAILED = "failed"
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True, slots=True)
class PreviewImage:
    data: bytes
    width: int
    height: int


def make_preview_image(data: bytes, max_pixels: int) -> PreviewImage | None:
    """A WebP of at most IMAGE_BOX pixels a side, or None for anything that is not a
    raster image Parley accepts or is larger than ``max_pixels`` (checked before decoding)."""
    media_type = sniff_head(data[:4096])
    if media_type is None or media_type.pillow_format is None:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[media_type.pillow_format]) as image:
            if image.width * image.height > max_pixels:
                return None
            image.seek(0)
            frame = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            frame.thumbnail((IMAGE_BOX, IMAGE_BOX))
            out = io.BytesIO()
            frame.save(out, format="WEBP", quality=IMAGE_QUALITY)
            return PreviewImage(out.getvalue(), frame.width, frame.height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None


class LinkPreviews:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        outbound: OutboundClient,
        jobs: JobQueue,
        events: EventSink,
        *,
        enabled: bool,
        ttl_seconds: int,
        max_image_pixels: int,
        urls: AttachmentUrls | None,
    ) -> None:
        self._db = db
        self._urls = urls  # signs the URLs of the updated message's event
        self._store = store
        self._outbound = outbound
        self._jobs = jobs
        self._events = events
        self.enabled = enabled
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max_pixels = max_image_pixels
        self._fetching: dict[str, asyncio.Future[Row[Any] | None]] = {}

    # --- after a commit

    async def on_events(self, events: Sequence[Event]) -> None:
        """Event listener: queue a refresh for each message whose first link changed."""
        if not self.enabled:
            return
        for event in events:
            if event.type not in (EventType.MESSAGE_CREATED, EventType.MESSAGE_UPDATED):
                continue
            message = event.data.get("message")
            if not isinstance(message, dict) or not _wants_preview(message):
                continue
            link = first_link(str(message.get("content") or ""))
            shown = (message.get("link_preview") or {}).get("url")
            if link == shown:
                continue  # unchanged (a reaction, an edit elsewhere, this service's own update)
            try:
                await self._jobs.enqueue(JOB, {"message_id": message["id"]})
            except Exception:  # the message is fine; it only misses its preview
                log.exception("could not queue a link preview", extra={"message_id": message["id"]})

    async def run_job(self, job: Job) -> None:
        message_id = job.payload.get("message_id")
        if isinstance(message_id, str):
            await self.refresh(message_id)

    # --- the work

    async def refresh(self, message_id: str) -> None:
        """Give the message the preview of its first link (or none), and announce it."""
        async with self._db.read() as conn:
            row = await _message_state(conn, message_id)
            current = await _current_preview(conn, message_id)
        if row is None or row.deleted_at is not None or row.kind != "text":
            return
        link = first_link(row.content)
        preview = await self.preview_for(link) if link else None
        wanted = preview.id if preview is not None and preview.status == OK else None
        if wanted == current:
            return
        await self._attach(message_id, link, wanted)

    async def _attach(self, message_id: str, link: str | None, preview_id: str | None) -> None:
        now = utcnow()
        async with self._db.transaction() as conn:
            row = await _message_state(conn, message_id)
            # Edited or deleted while the page was fetched: that change's own job decides.
            if row is None or row.deleted_at is not None or first_link(row.content) != link:
                return
            await conn.execute(delete(message_link_previews).where(message_link_previews.c.message_id == message_id))
            if preview_id is not None:
                await conn.execute(insert(message_link_previews).values(message_id=message_id, preview_id=preview_id))
            await bump_version(conn, row.conversation_id, message_id, now)
            message = await load_message(conn, message_id, urls=self._urls)
        assert message is not None
        await self._events.emit([changed_event(EventType.MESSAGE_UPDATED, message)])

    async def preview_for(self, url: str) -> Row[Any] | None:
        """The cached row for ``url`` if fresh, else fetched now (one fetch per URL at a
        time in this process: a link pasted into many conversations is read once)."""
        key = url_hash(url)
        async with self._db.read() as conn:
            cached = (await conn.execute(select(link_previews).where(link_previews.c.url_hash == key))).first()
        if cached is not None and cached.fetched_at > utcnow() - self._ttl:
            return cached
        running = self._fetching.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Row[Any] | None] = asyncio.get_running_loop().create_future()
        self._fetching[key] = future
        try:
            found = await self._fetch_and_store(url, key, cached)
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._fetching[key]

    async def _fetch_and_store(self, url: str, key: str, cached: Row[Any] | None) -> Row[Any] | None:
        summary = await self._fetch_page(url)
        values: dict[str, Any] = {"url": url, "fetched_at": utcnow(), "status": FAILED}
        values.update(title=None, description=None, site_name=None, image_key=None, image_width=None, image_height=None)
        preview_id = cached.id if cached is not None else new_id()
        if summary is not None and not summary.empty:
            values.update(status=OK, title=summary.title, description=summary.description, site_name=summary.site_name)
            image = await self._fetch_image(summary.image_url) if summary.image_url else None
            if image is not None:
                values.update(
                    image_key=await self._keep_image(preview_id, image),
                    image_width=image.width,
                    image_height=image.height,
                )
        try:
            async with self._db.transaction() as conn:
                if cached is not None:
                    await conn.execute(update(link_previews).where(link_previews.c.id == preview_id).values(**values))
                else:
                    await conn.execute(insert(link_previews).values(id=preview_id, url_hash=key, **values))
        except IntegrityError:  # another node stored this URL meanwhile: theirs is as good
            pass
        async with self._db.read() as conn:
            return (await conn.execute(select(link_previews).where(link_previews.c.url_hash == key))).first()

    async def _fetch_page(self, url: str) -> PageSummary | None:
        try:
            response = await self._outbound.request(
                "GET",
                url,
                headers={"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"},
                follow_redirects=True,
                max_response_bytes=MAX_HTML_BYTES,
            )
        except OutboundError as exc:
            log.info("link preview not fetched", extra={"url": url, "error": str(exc)})
            return None
        content_type = response.headers.get("content-type", "").lower()
        if response.status != 200 or not content_type.startswith(_HTML_TYPES):
            return None
        charset = "utf-8"
        for part in content_type.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name == "charset" and value:
                charset = value.strip("\"' ")
        try:
            text = response.body.decode(charset, errors="replace")
        except LookupError:
            text = response.body.decode("utf-8", errors="replace")
        return summarise(text, response.url)

    async def _fetch_image(self, url: str) -> PreviewImage | None:
        try:
            response = await self._outbound.request(
                "GET", url, headers={"accept": "image/*"}, follow_redirects=True, max_response_bytes=MAX_IMAGE_BYTES
            )
        except OutboundError as exc:
            log.info("link preview image not fetched", extra={"url": url, "error": str(exc)})
            return None
        if response.status != 200:
            return None
        return await asyncio.to_thread(make_preview_image, response.body, self._max_pixels)

    async def _keep_image(self, preview_id: str, image: PreviewImage) -> str:
        key = f"link-previews/{preview_id}-{hashlib.sha256(image.data).hexdigest()[:16]}.webp"
        with tempfile.NamedTemporaryFile(suffix=".webp") as handle:
            handle.write(image.data)
            handle.flush()
            await self._store.put_file(key, Path(handle.name), content_type="image/webp")
        return key

    async def open_image(
        self,
        preview_id: str,
        *,
        urls: AttachmentUrls,
        expires: str | None = None,
        signature: str | None = None,
        user_id: str | None = None,
    ) -> Row[Any]:
        """The preview row whose picture is asked for: by a signed URL, or by a member of a
        conversation where a message shows it (``NotFound`` otherwise, as for no picture)."""
        if expires is not None or signature is not None:
            urls.verify(preview_id, IMAGE_VARIANT, expires or "", signature or "")
        elif user_id is None:
            raise NotFound("No such preview image")
        async with self._db.read() as conn:
            row = (await conn.execute(select(link_previews).where(link_previews.c.id == preview_id))).first()
            if row is not None and user_id is not None and signature is None:
                shown_to_caller = (
                    select(message_link_previews.c.message_id)
                    .join(messages, messages.c.id == message_link_previews.c.message_id)
                    .join(
                        members,
                        (members.c.conversation_id == messages.c.conversation_id)
                        & (members.c.user_id == user_id),
                    )
                    .where(message_link_previews.c.preview_id == preview_id)
                    .limit(1)
                )
                if (await conn.execute(shown_to_caller)).first() is None:
                    row = None
        if row is None or not row.image_key:
            raise NotFound("No such preview image")
        return row


def _wants_preview(message: dict[str, Any]) -> bool:
    """Visible plain-text messages only: never tombstones, system lines or ciphertext."""
    if message.get("deleted") or message.get("kind") != "text":
        return False
    return not (message.get("e2ee") or message.get("ciphertext"))


async def _message_state(conn: AsyncConnection, message_id: str) -> Row[Any] | None:
    statement: Select[Any] = select(
        messages.c.conversation_id, messages.c.kind, messages.c.content, messages.c.deleted_at
    ).where(messages.c.id == message_id)
    row: Row[Any] | None = (await conn.execute(statement)).first()
    return row


async def _current_preview(conn: AsyncConnection, message_id: str) -> str | None:
    return (
        await conn.execute(
            select(message_link_previews.c.preview_id).where(message_link_previews.c.message_id == message_id)
        )
    ).scalar()


def register_link_preview_jobs(jobs: JobQueue, previews: LinkPreviews) -> None:
    jobs.register(JOB, previews.run_job)

