"""What the BlobStore holds for messages: uploaded files and link previews (issue #6,
DESIGN §6.5; migrations 0003, 0008)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

# Uploaded files (issue #6). An upload belongs to its uploader until a message claims it
# (``message_id`` set, ``claimed_at`` stamped, in the message's own transaction). The
# files live in the BlobStore under the keys listed in ``variants`` (JSON: variant name ->
# key, content type, size, dimensions, sha256). ``deleted_at`` marks a row whose files are
# being removed: its message was deleted, or it was never used (see services.attachments).
# A hard-deleted message (its conversation deleted) sets ``message_id`` NULL and leaves
# ``claimed_at``: the sweep recognises that pair as orphaned.
attachments = Table(
    "attachments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("uploader_id", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("message_id", ID, ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True
    ),
    Column("position", SmallInteger, nullable=False, default=0),
    Column("name", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("variants", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("deleted_at", UTCDateTime, nullable=True),
    # A forwarded file (services.forwarding) is a new row sharing the blobs of another:
    # the id of the row that stored them. The sweep deletes blobs only when no live row
    # still shares them (migration 0010).
    Column("blob_owner_id", ID, nullable=True),
    # An opaque client-encrypted blob (DESIGN §6.1): stored as sent, never sniffed or
    # thumbnailed; only encrypted uploads go into encrypted conversations (migration 0014).
    Column("encrypted", Boolean, nullable=False, default=False, server_default=false()),
    CheckConstraint("kind IN ('image', 'document', 'audio', 'video')", name="kind"),
    Index("ix_attachments_message_id", "message_id"),
    # A conversation's files and media, newest first (the gallery), and deleting a
    # conversation, which sets its attachments' conversation_id NULL (migrations 0004, 0007).
    Index("ix_attachments_conversation_gallery", "conversation_id", "id"),
    Index("ix_attachments_uploader_id", "uploader_id"),
    Index(
        "ix_attachments_blob_owner_id",
        "blob_owner_id",
        sqlite_where=text("blob_owner_id IS NOT NULL"),
        postgresql_where=text("blob_owner_id IS NOT NULL"),
    ),
    # Partial, for the sweep (migration 0004): over every row, "created a day ago" matched
    # nearly all attachments, and "deleted_at IS NULL" looked selective to SQLite without
    # statistics, so message reads walked all live attachments by it.
    Index(
        "ix_attachments_created_at",
        "created_at",
        sqlite_where=text("claimed_at IS NULL"),
        postgresql_where=text("claimed_at IS NULL"),
    ),
    Index(
        "ix_attachments_deleted_at",
        "deleted_at",
        sqlite_where=text("deleted_at IS NOT NULL"),
        postgresql_where=text("deleted_at IS NOT NULL"),
    ),
)


# Link previews (services/link_previews.py): one row per URL fetched (a cache shared by
# every message linking there), keyed by the SHA-256 of the URL; ``status`` "ok" or
# "failed" (failures are cached too, so a dead link is not fetched for every message).
# ``image_key`` is the preview picture, re-encoded by Parley, in the BlobStore.
link_previews = Table(
    "link_previews",
    metadata,
    Column("id", ID, primary_key=True),
    Column("url_hash", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("title", String(300), nullable=True),
    Column("description", String(600), nullable=True),
    Column("site_name", String(100), nullable=True),
    Column("image_key", String(200), nullable=True),
    Column("image_width", Integer, nullable=True),
    Column("image_height", Integer, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False),
)


# The preview a message shows (its first link), set after the message commits.
message_link_previews = Table(
    "message_link_previews",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "preview_id", ID, ForeignKey("link_previews.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)
