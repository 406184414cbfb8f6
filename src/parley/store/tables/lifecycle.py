"""Data lifecycle (DESIGN §6.4, migration 0012; ``parley.lifecycle``): exports. Retention
lives on ``conversations`` (``parley.store.tables.conversations``), erasure on ``users``."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Table,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

# A personal export (``conversation_id`` NULL) or a conversation export requested by one of
# its admins. A job builds the ZIP into the BlobStore under ``blob_key``; the row and the
# blob go at ``expires_at``.
data_exports = Table(
    "data_exports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    ),
    Column("status", String(8), nullable=False),
    Column("progress", SmallInteger, nullable=False, default=0),
    Column("blob_key", String(200), nullable=True),
    Column("size", BigInteger, nullable=True),
    Column("error", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
    Index("ix_data_exports_user_id", "user_id", "created_at"),
    Index("ix_data_exports_expires_at", "expires_at"),
    # Deleting a conversation looks its exports up (ON DELETE CASCADE).
    Index("ix_data_exports_conversation_id", "conversation_id"),
)
