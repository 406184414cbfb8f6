"""Integrations (DESIGN §6.6, migration 0013; ``parley.integrations``): bots, webhooks and
their deliveries, slash commands."""

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

# A bot is a user (``users.is_bot``) with an owner. Its one current token is kept only as a
# SHA-256 hash, with the session it opens: revoking that session (rotation, deletion)
# stops the token and closes its sockets on every node, like any logout. Bots made for a
# webhook (``kind`` 'webhook') have no token.
bots = Table(
    "bots",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("owner_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("session_id", ID, ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("token_issued_at", UTCDateTime, nullable=True),
    CheckConstraint("kind IN ('bot', 'webhook')", name="kind"),
    Index("ix_bots_owner_id", "owner_id"),
)


# Incoming webhooks keep only the hash of the secret in their URL; outgoing ones keep
# their signing secret (HMAC needs it) and count consecutive failed deliveries: at
# PARLEY_WEBHOOK_MAX_FAILURES the webhook is disabled.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(8), nullable=False),
    Column("bot_user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("secret", String(64), nullable=True),
    Column("triggers", Text, nullable=False, default="[]"),  # JSON list of words
    Column("failures", Integer, nullable=False, default=0),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('incoming', 'outgoing')", name="kind"),
    Index("ix_webhooks_conversation_id", "conversation_id"),
    Index("ix_webhooks_bot_user_id", "bot_user_id"),
)


# The delivery log of outgoing webhooks: one row per (webhook, message), so a message event
# seen twice (at-least-once) is delivered once.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("webhook_id", ID, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", ID, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("response_status", Integer, nullable=True),
    Column("error", String(300), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'sending', 'retrying', 'delivered', 'failed')", name="status"),
    UniqueConstraint("webhook_id", "message_id", name="uq_webhook_deliveries_webhook_id"),
    Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"),
)


# Custom slash commands: ``scope_key`` is '' for site-wide ones and the conversation id
# otherwise, so one unique index covers both (NULLs would never collide).
commands = Table(
    "commands",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(32), nullable=False),
    Column("scope_key", String(26), nullable=False),
    Column(
        "conversation_id", ID, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    ),
    Column("url", Text, nullable=False),
    Column("secret", String(64), nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("created_by", ID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope_key", "name", name="uq_commands_scope_key"),
    Index("ix_commands_conversation_id", "conversation_id"),
)
