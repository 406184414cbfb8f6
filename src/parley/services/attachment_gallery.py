"""A conversation's files and media, newest first: what the gallery of the details panel and
the image viewer's next / previous read (``GET /api/v1/conversations/{id}/attachments``).

Only members see it (anyone else gets the same 404 as for a conversation that does not
exist), and only attachments that belong to a live message: uploads not sent yet, files of
deleted messages and files being removed are never listed. Each item is the attachment's
payload (signed URLs, as in messages) plus where it was sent: ``message_id``, ``seq``,
``sender_id`` and ``sent_at``.

Pages: ``before`` is the id of the last item of the previous page (ids grow with upload
time); the query walks the ``(conversation_id, id)`` index of migration 0007 backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from parley.clock import isoformat
from parley.errors import ValidationFailed
from parley.ids import looks_like_id
from parley.services.access import membership
from parley.services.attachment_records import record_from_row
from parley.services.attachment_urls import AttachmentUrls
from parley.store.db import Database
from parley.store.tables.media import attachments
from parley.store.tables.messages import messages

DEFAULT_LIMIT = 30
MAX_LIMIT = 100


class GalleryKind(StrEnum):
    """``image``: pictures and videos (the media grid); ``file``: documents and audio."""

    IMAGE = "image"
    FILE = "file"


_KINDS = {GalleryKind.IMAGE: ("image", "video"), GalleryKind.FILE: ("document", "audio")}


@dataclass(frozen=True, slots=True)
class GalleryPage:
    items: list[dict[str, Any]]
    next_before: str | None

    def to_public(self) -> dict[str, Any]:
        return {
            "attachments": self.items,
            "next_before": self.next_before,
            "has_more": self.next_before is not None,
        }


def check_kind(kind: str | None) -> GalleryKind | None:
    if kind is None or kind == "":
        return None
    try:
        return GalleryKind(kind)
    except ValueError:
        raise ValidationFailed.field("kind", "must be image or file") from None


async def list_gallery(
    db: Database,
    urls: AttachmentUrls,
    user_id: str,
    conversation_id: str,
    *,
    kind: str | None = None,
    before: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> GalleryPage:
    wanted = check_kind(kind)
    if before is not None and not looks_like_id(before):
        raise ValidationFailed.field("before", "must be an attachment id")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.field("limit", f"must be between 1 and {MAX_LIMIT}")
    statement = (
        select(attachments, messages.c.seq, messages.c.sender_id, messages.c.created_at.label("sent_at"))
        .join(messages, messages.c.id == attachments.c.message_id)
        .where(
            attachments.c.conversation_id == conversation_id,
            attachments.c.deleted_at.is_(None),
            messages.c.deleted_at.is_(None),
        )
        .order_by(attachments.c.id.desc())
        .limit(limit + 1)
    )
    if wanted is not None:
        statement = statement.where(attachments.c.kind.in_(_KINDS[wanted]))
    if before is not None:
        statement = statement.where(attachments.c.id < before)
    async with db.read() as conn:
        await membership(conn, conversation_id, user_id)
        rows = list(await conn.execute(statement))
    items = [
        record_from_row(row).to_public(urls)
        | {
            "message_id": row.message_id,
            "seq": row.seq,
            "sender_id": row.sender_id,
            "sent_at": isoformat(row.sent_at),
        }
        for row in rows[:limit]
    ]
    next_before = items[-1]["id"] if len(rows) > limit else None
    return GalleryPage(items, next_before)
