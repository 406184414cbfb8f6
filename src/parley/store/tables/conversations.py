"""Conversations, their members and their invite links (DESIGN §2, §6.3).

Sequence numbers are per conversation (DESIGN §2 "Persistence"): ``conversations.last_seq``
is the high-water mark each new message takes the next value of (``parley.store.tables.messages``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    false,
    text,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

conversations = Table(
    "conversations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("type", String(8), nullable=False),
    Column("name", String(100), nullable=True),
    Column("slug", String(64), nullable=True, unique=True),
    Column("topic", String(500), nullable=False, default=""),
    # "lowid:highid" for direct conversations: the unique index makes one DM per pair.
    Column("direct_key", String(53), nullable=True, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("last_activity_at", UTCDateTime, nullable=False),
    # Retention (DESIGN §6.4, migration 0012; parley.lifecycle.retention): days messages
    # are kept (NULL: the site policy), a legal hold that suspends deletion, and the seq up
    # to which every message was removed — what clients drop.
    Column("retention_days", Integer, nullable=True),
    Column("legal_hold", Boolean, nullable=False, default=False, server_default=text("false")),
    Column("expired_through_seq", BigInteger, nullable=False, default=0, server_default="0"),
    # 'private' or 'public': a public group is listed in the directory and anyone may join
    # it (DESIGN §6.3; migration 0010).
    Column("visibility", String(8), nullable=False, server_default="private"),
    # End-to-end encrypted (DESIGN §6.1, migration 0014): switched on, never off.
    Column("encrypted", Boolean, nullable=False, default=False, server_default=false()),
    # Archived by a site admin (migration 0016): read-only until unarchived; NULL: active.
    Column("archived_at", UTCDateTime, nullable=True),
    # A group's picture (services.avatars, migration 0016); NULL: the initial is shown.
    Column("avatar_key", String(32), nullable=True),
    CheckConstraint("type IN ('direct', 'group')", name="type"),
    Index(
        "ix_conversations_public",
        "last_activity_at",
        sqlite_where=text("visibility = 'public'"),
        postgresql_where=text("visibility = 'public'"),
    ),
)


members = Table(
    "members",
    metadata,
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), nullable=False, default="member"),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("last_read_seq", BigInteger, nullable=False, default=0),
    Column("last_delivered_seq", BigInteger, nullable=False, default=0),
    # Notification level here (DESIGN §6.2): 'all' | 'mentions' | 'none'; NULL follows the
    # user's default. Muted until this time (far future: muted for good); migration 0005.
    Column("notify", String(8), nullable=True),
    Column("muted_until", UTCDateTime, nullable=True),
    CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
    Index("ix_members_user_id", "user_id"),
)


# Invite links to a group (DESIGN §6.3; services.invites). Only the SHA-256 of the token
# is kept; ``uses`` counts joins, bounded by ``max_uses`` with a conditional UPDATE.
conversation_invites = Table(
    "conversation_invites",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0),
    Column("revoked_at", UTCDateTime, nullable=True),
)
