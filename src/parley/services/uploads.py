"""Uploads: turn a received file into a stored, unclaimed attachment (issue #6).

Pipeline, in order, each step refusing with a stable code (``attachment_errors``):
1. empty files are refused;
2. the type is sniffed from the bytes (``media.sniff``); refused types get 415, and a
   declared type of another family (says image, is a PDF) gets 415 MEDIA_TYPE_MISMATCH;
3. the byte limit of the kind is checked (already enforced while streaming, see
   ``upload_sink``);
4. images are decoded, checked for pixels, re-encoded without metadata and thumbnailed
   (``media.images``) in a worker process with a memory cap and a time limit
   (``media.image_workers``), as many at a time as there are workers;
5. the row is inserted, then the blobs written; if storing fails both are undone.

The upload belongs to its uploader until a message claims it
(``attachment_records.claim``); unclaimed uploads are swept after a day
(``services.attachments``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert

from parley.clock import utcnow
from parley.errors import PayloadTooLarge, Unavailable, UnsupportedMediaType
from parley.ids import new_id
from parley.media import images
from parley.media.blobstore import BlobStore
from parley.media.image_workers import ImageWorkers
from parley.media.names import safe_name
from parley.media.sniff import MediaKind, MediaType, sniff_file
from parley.services.attachment_errors import (
    EmptyFile,
    ImageTooLarge,
    ImageUnreadable,
    MediaTypeMismatch,
)
from parley.services.attachment_records import (
    ORIGINAL,
    AttachmentRecord,
    VariantRecord,
    variants_to_json,
)
from parley.services.attachment_urls import AttachmentUrls
from parley.services.upload_sink import ReceivedFile, UploadLimits, UploadSink
from parley.store.db import Database
from parley.store.tables.media import attachments

log = logging.getLogger(__name__)

# Declared types that say nothing (browsers send these for unknown extensions).
# What the server knows of an encrypted upload: nothing but its size and hash.
OPAQUE_CONTENT_TYPE = "application/octet-stream"
OPAQUE_NAME = "encrypted.bin"
_UNINFORMATIVE_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}


def blob_key(attachment_id: str, variant: str) -> str:
    """Where a variant lives. The last two id characters (random) spread files over 1,024
    directories; the name the user gave is never part of a key."""
    return f"attachments/{attachment_id[-2:]}/{attachment_id}/{variant}"


def declared_family(declared: str) -> str | None:
    """image / media / document for a declared Content-Type; None when it says nothing.
    Audio and video are one family: the same container (MP4, WebM) is either."""
    if declared in _UNINFORMATIVE_TYPES or "/" not in declared:
        return None
    major = declared.split("/", 1)[0]
    if major == "image":
        return "image"
    if major in {"audio", "video"}:
        return "media"
    return "document"


def sniffed_family(media_type: MediaType) -> str:
    if media_type.kind is MediaKind.IMAGE:
        return "image"
    if media_type.kind in {MediaKind.AUDIO, MediaKind.VIDEO}:
        return "media"
    return "document"


class Uploads:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        urls: AttachmentUrls,
        limits: UploadLimits,
        *,
        temp_dir: Path,
        image_workers: ImageWorkers,
    ) -> None:
        self._db = db
        self._store = store
        self._urls = urls
        self.limits = limits
        self._temp_dir = temp_dir
        self.image_workers = image_workers

    def open_sink(self) -> UploadSink:
        """A sink for one incoming file, limits applied while it streams."""
        return UploadSink(self._temp_dir, self.limits)

    async def create(
        self,
        uploader_id: str,
        received: ReceivedFile,
        *,
        filename: str | None,
        declared_type: str = "",
        encrypted: bool = False,
    ) -> dict[str, Any]:
        """Store the file as an unclaimed attachment of ``uploader_id``; its payload.
        ``encrypted``: an opaque client-encrypted blob (DESIGN §6.1), stored as sent —
        never sniffed, decoded or thumbnailed; its real name and type are inside the
        encrypted message, so the server keeps neither."""
        if received.size == 0:
            raise EmptyFile()
        if encrypted:
            return await self._create_opaque(uploader_id, received)
        media_type = await self.identify(received, filename=filename, declared_type=declared_type)
        attachment_id = new_id()
        workdir = await asyncio.to_thread(self.make_workdir)
        try:
            variants, sources, width, height = await self._variants(
                attachment_id, received, media_type, workdir
            )
            record = AttachmentRecord(
                id=attachment_id,
                uploader_id=uploader_id,
                message_id=None,
                conversation_id=None,
                name=safe_name(filename, media_type),
                content_type=media_type.content_type,
                kind=media_type.kind.value,
                size=variants[0].size,
                width=width,
                height=height,
                sha256=variants[0].sha256,
                variants={v.name: v for v in variants},
                created_at=utcnow(),
                claimed_at=None,
                deleted_at=None,
            )
            await self._store_record(record, sources)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
        return record.to_public(self._urls)

    async def _create_opaque(self, uploader_id: str, received: ReceivedFile) -> dict[str, Any]:
        attachment_id = new_id()
        original = VariantRecord(
            ORIGINAL,
            blob_key(attachment_id, ORIGINAL),
            OPAQUE_CONTENT_TYPE,
            received.size,
            received.sha256,
        )
        record = AttachmentRecord(
            id=attachment_id,
            uploader_id=uploader_id,
            message_id=None,
            conversation_id=None,
            name=OPAQUE_NAME,
            content_type=OPAQUE_CONTENT_TYPE,
            kind="document",
            size=received.size,
            width=None,
            height=None,
            sha256=received.sha256,
            variants={ORIGINAL: original},
            created_at=utcnow(),
            claimed_at=None,
            deleted_at=None,
            encrypted=True,
        )
        await self._store_record(record, {ORIGINAL: received.path})
        return record.to_public(self._urls)

    async def identify(
        self, received: ReceivedFile, *, filename: str | None, declared_type: str = ""
    ) -> MediaType:
        """The sniffed type of a received file, or the refusal: empty, not a type Parley
        accepts, not what it was declared as, an image over the image size limit."""
        if received.size == 0:
            raise EmptyFile()
        sniffed = await asyncio.to_thread(sniff_file, received.path, name_hint=filename or "")
        media_type = sniffed.media_type
        if media_type is None:
            reason = sniffed.refusal.value if sniffed.refusal else "an unsupported file type"
            raise UnsupportedMediaType(
                f"This file is {reason}. Accepted: JPEG, PNG, GIF and WebP images; PDF, text, "
                "CSV, ZIP and office documents; Ogg, MP3, M4A and WebM audio; MP4 and WebM video"
            )
        family = declared_family(declared_type)
        if family is not None and family != sniffed_family(media_type):
            raise MediaTypeMismatch(
                f"The file was sent as {declared_type} but its content is {media_type.content_type}"
            )
        if media_type.kind is MediaKind.IMAGE and received.size > self.limits.max_image_bytes:
            raise PayloadTooLarge("The image is larger than the image size limit")
        return media_type

    async def decode_image(
        self, source: Path, media_type: MediaType, workdir: Path
    ) -> images.ProcessedImage:
        """The clean original and thumbnails of an image, made in a worker process under
        the pixel, memory and time limits; refusals as ``IMAGE_TOO_LARGE`` /
        ``IMAGE_UNREADABLE``."""
        try:
            return await self.image_workers.process(
                source,
                media_type,
                workdir,
                max_pixels=self.limits.max_image_pixels,
                max_total_pixels=self.limits.max_image_total_pixels,
            )
        except images.ImageTooLarge as exc:
            raise ImageTooLarge(
                f"Images can have at most {self.limits.max_image_pixels:,} pixels, "
                f"{self.limits.max_image_total_pixels:,} over all frames ({exc})"
            ) from None
        except images.ImageUnreadable as exc:
            raise ImageUnreadable(
                f"The image could not be decoded as {media_type.content_type}: {exc}"
            ) from None

    def make_workdir(self) -> Path:
        """A fresh private directory for one file's processing (the caller removes it)."""
        self._temp_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self._temp_dir, prefix="work-"))

    async def remove_stale_temp_files(self, *, older_than_seconds: float) -> int:
        """Temporary files a crashed process left behind (live ones are minutes old)."""
        return await asyncio.to_thread(self._remove_stale, older_than_seconds)

    def _remove_stale(self, older_than_seconds: float) -> int:
        if not self._temp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in self._temp_dir.iterdir():
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
            except FileNotFoundError:
                continue
        return removed

    async def _variants(
        self, attachment_id: str, received: ReceivedFile, media_type: MediaType, workdir: Path
    ) -> tuple[list[VariantRecord], dict[str, Path], int | None, int | None]:
        """The variants to store (original first) and the local file of each."""
        if media_type.kind is not MediaKind.IMAGE:
            original = VariantRecord(
                ORIGINAL,
                blob_key(attachment_id, ORIGINAL),
                media_type.content_type,
                received.size,
                received.sha256,
            )
            return [original], {ORIGINAL: received.path}, None, None
        processed = await self.decode_image(received.path, media_type, workdir)
        variants = [
            VariantRecord(
                v.name, blob_key(attachment_id, v.name), v.content_type, v.size, v.sha256,
                v.width, v.height,
            )
            for v in processed.variants
        ]  # fmt: skip
        sources = {v.name: v.path for v in processed.variants}
        return variants, sources, processed.width, processed.height

    async def _store_record(self, record: AttachmentRecord, sources: dict[str, Path]) -> None:
        """Row first, then blobs: every blob ever written has a row, so the sweep can always
        find it; a crash in between leaves an unclaimed row that the sweep removes."""
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(attachments).values(
                    id=record.id,
                    uploader_id=record.uploader_id,
                    name=record.name,
                    content_type=record.content_type,
                    kind=record.kind,
                    size=record.size,
                    width=record.width,
                    height=record.height,
                    sha256=record.sha256,
                    variants=variants_to_json(record.variants.values()),
                    created_at=record.created_at,
                    position=0,
                    encrypted=record.encrypted,
                )
            )
        try:
            await asyncio.gather(
                *(
                    self._store.put_file(v.key, sources[name], content_type=v.content_type)
                    for name, v in record.variants.items()
                )
            )
        except Exception:
            log.exception("storing an upload failed", extra={"attachment_id": record.id})
            await asyncio.gather(
                *(self._store.delete(key) for key in record.blob_keys()), return_exceptions=True
            )
            async with self._db.transaction() as conn:
                await conn.execute(delete(attachments).where(attachments.c.id == record.id))
            raise Unavailable("The file could not be stored; try again") from None
