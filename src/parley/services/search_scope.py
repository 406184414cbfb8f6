"""What a search may return besides its terms (DESIGN §2 "Full-text search"): the filters
that read more than the message row, shared by both databases' statements
(``search_sqlite``, ``search_postgres``)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from parley.store.tables.media import attachments
from parley.store.tables.messages import messages


def has_attachment_condition() -> ColumnElement[bool]:
    """Messages that carry at least one live attachment (``has=attachment``): an indexed
    EXISTS on ``attachments.message_id`` (files of deleted messages are being removed)."""
    return (
        select(attachments.c.id)
        .where(attachments.c.message_id == messages.c.id, attachments.c.deleted_at.is_(None))
        .exists()
    )
