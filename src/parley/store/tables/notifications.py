"""Notifications (DESIGN §6.2, migration 0005; ``parley.notifications``): settings, email
addresses, Web Push subscriptions and the ledger of what was sent."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    text,
)

from parley.store.tables.metadata import ID, metadata
from parley.store.types import UTCDateTime

# A user's notification defaults; no row means the defaults below.
notification_settings = Table(
    "notification_settings",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("notify_default", String(8), nullable=False, default="all"),
    # Digest emails of missed DMs and mentions (the one-click unsubscribe turns this off).
    Column("email_digest", Boolean, nullable=False, default=True),
    # When the last digest went out: one digest per user per window.
    Column("last_digest_at", UTCDateTime, nullable=True),
    CheckConstraint("notify_default IN ('all', 'mentions', 'none')", name="notify_default"),
)


# One email address per user (services.email_addresses). ``address_key`` is the lower-cased
# address; a verified address belongs to one user only (a partial unique index), an
# unverified one may be claimed by several until one of them verifies it.
email_addresses = Table(
    "email_addresses",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("address", String(254), nullable=False),
    Column("address_key", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("verified_at", UTCDateTime, nullable=True),
    Index(
        "uq_email_addresses_verified_key",
        "address_key",
        unique=True,
        sqlite_where=text("verified_at IS NOT NULL"),
        postgresql_where=text("verified_at IS NOT NULL"),
    ),
)


# A browser's Web Push subscription (RFC 8030 endpoint + RFC 8291 keys), one per device.
# The session that registered it owns it: logging that session out stops its pushes.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("endpoint", String(1024), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("user_agent", String(400), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_success_at", UTCDateTime, nullable=True),
)


# Per device and conversation: what was last pushed (idempotency and coalescing, see
# notifications.push_delivery). ``claimed_seq``/``job_id`` mark a push being sent: a
# retry of the same job resends it, any other job waits for it.
push_states = Table(
    "push_states",
    metadata,
    Column(
        "subscription_id",
        ID,
        ForeignKey("push_subscriptions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "conversation_id",
        ID,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("pushed_seq", BigInteger, nullable=False, default=0),
    Column("claimed_seq", BigInteger, nullable=False, default=0),
    Column("job_id", String(32), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    # A follow-up push is queued for this time (coalesced messages); NULL: none queued.
    Column("flush_at", UTCDateTime, nullable=True),
    Index("ix_push_states_conversation_id", "conversation_id"),
)


# The ledger: one row per (user, message, channel) that qualified for a notification —
# idempotency of the planning job, and the queue of the email digests. ``status``:
# 'pending' → 'sent' (or 'skipped': read, muted, left or deleted before it went out).
notifications = Table(
    "notifications",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("message_id", ID, primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("digest_id", String(32), nullable=True),
    CheckConstraint("channel IN ('push', 'email')", name="channel"),
    CheckConstraint("status IN ('pending', 'claimed', 'sent', 'skipped')", name="status"),
    Index("ix_notifications_conversation", "conversation_id", "user_id", "seq"),
    # The digest sweep's "pending and due" (only the pending rows, a small part).
    Index(
        "ix_notifications_due",
        "due_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_notifications_digest_id",
        "digest_id",
        sqlite_where=text("digest_id IS NOT NULL"),
        postgresql_where=text("digest_id IS NOT NULL"),
    ),
    # The daily clean-up of old rows.
    Index("ix_notifications_created_at", "created_at"),
)
