"""Running the site (DESIGN §6.3, migration 0011): run-time settings, registration links,
reported messages and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

# Settings administrators change at run time (``registration``); absent: the config's.
site_settings = Table(
    "site_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", ID, nullable=True),
)


# Registration links. ``max_uses`` NULL: unlimited until it expires or is revoked; a use is
# counted by a conditional UPDATE inside the registering transaction, so a single-use link
# registers exactly one account however many use it at once.
registration_invites = Table(
    "registration_invites",
    metadata,
    Column("id", ID, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0, server_default="0"),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("note", String(200), nullable=False, default="", server_default=""),
)


# A message reported by a member; moderators resolve it (``resolution``: 'dismissed',
# 'message_deleted', 'sender_deactivated'). One report per reporter and message.
reports = Table(
    "reports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("reporter_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("sender_id", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolution", String(32), nullable=True),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    UniqueConstraint("message_id", "reporter_id", name="uq_reports_message_id"),
    Index("ix_reports_status_id", "status", "id"),
)


# Security events (services.audit). No foreign keys: an entry outlives the user or thing it
# names. ``details`` is JSON and never holds message content. Ids are time-ordered, so
# paging by id is paging by time.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("action", String(48), nullable=False),
    Column("actor_id", ID, nullable=True),
    Column("target_user_id", ID, nullable=True),
    Column("target_id", ID, nullable=True),
    Column("ip_address", String(64), nullable=False, default="", server_default=""),
    Column("details", Text, nullable=False, default="{}", server_default="{}"),
    Index("ix_audit_log_actor_id", "actor_id", "id"),
    Index("ix_audit_log_target_user_id", "target_user_id", "id"),
    Index("ix_audit_log_action", "action", "id"),
)
