"""Relations between two users: contact requests and blocks (DESIGN §2)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

# One row per pair of users, directed from the one who asked.
contacts = Table(
    "contacts",
    metadata,
    Column("requester_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("addressee_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'accepted')", name="status"),
    Index("ix_contacts_addressee_id", "addressee_id"),
)


blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("blocked_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_blocks_blocked_id", "blocked_id"),
)
