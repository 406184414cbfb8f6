"""integrations: bot accounts, webhooks and their delivery log, slash commands

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-06 03:20:00

DESIGN §6.6 (``parley.integrations``):

- ``users.is_bot``: bots are users (they are members, they send), marked everywhere.
- ``bots``: who owns a bot, and its one current token (SHA-256 hash) with the session the
  token opens — revoking that session stops the token and closes its sockets at once.
  ``kind`` 'webhook' marks the bots made for webhooks (no token of their own).
- ``webhooks``: incoming (a secret in the URL, stored hashed) and outgoing (a URL and the
  HMAC signing secret, which must be kept readable to sign).
- ``webhook_deliveries``: one row per (outgoing webhook, message): the delivery log.
- ``commands``: custom slash commands, site-wide (``scope_key`` '') or per conversation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.String(length=26)
WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("is_bot", sa.Boolean(), nullable=False, server_default=sa.false())
    )

    op.create_table(
        "bots",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("token_issued_at", WHEN, nullable=True),
        sa.CheckConstraint("kind IN ('bot', 'webhook')", name=op.f("ck_bots_kind")),
        _fk("bots", "user_id", "users.id"),
        _fk("bots", "owner_id", "users.id"),
        _fk("bots", "session_id", "sessions.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_bots")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_bots_token_hash")),
    )
    op.create_index("ix_bots_owner_id", "bots", ["owner_id"])

    op.create_table(
        "webhooks",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("bot_user_id", ID, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(length=64), nullable=True),
        sa.Column("triggers", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("disabled_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('incoming', 'outgoing')", name=op.f("ck_webhooks_kind")),
        _fk("webhooks", "conversation_id", "conversations.id"),
        _fk("webhooks", "bot_user_id", "users.id"),
        _fk("webhooks", "created_by", "users.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_conversation_id", "webhooks", ["conversation_id"])
    op.create_index("ix_webhooks_bot_user_id", "webhooks", ["bot_user_id"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'retrying', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        _fk("webhook_deliveries", "webhook_id", "webhooks.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id", "message_id", name=op.f("uq_webhook_deliveries_webhook_id")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_webhook_created", "webhook_deliveries", ["webhook_id", "created_at"]
    )

    op.create_table(
        "commands",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("scope_key", sa.String(length=26), nullable=False),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        _fk("commands", "conversation_id", "conversations.id"),
        _fk("commands", "created_by", "users.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
        sa.UniqueConstraint("scope_key", "name", name=op.f("uq_commands_scope_key")),
    )
    op.create_index("ix_commands_conversation_id", "commands", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("commands")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("bots")
    # Plain drop_column (SQLite >= 3.35 drops a column in place): a batch rebuild of
    # ``users`` drops and recreates the table, and with foreign keys on that cascades into
    # every table that refers to it (memberships, sessions) — as 0014 does for its columns.
    op.drop_column("users", "is_bot")
