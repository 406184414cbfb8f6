"""notifications: levels and mutes, email addresses, push subscriptions, the ledger

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00

DESIGN §6.2 (``parley.notifications``):

- ``members.notify`` ('all' | 'mentions' | 'none', NULL = the user's default) and
  ``members.muted_until``: two nullable columns, added in place on both databases.
- ``notification_settings``: a user's default level, digest opt-in and last digest time.
- ``email_addresses``: one optional address per user, verified by a signed link; a verified
  address belongs to one user (partial unique index).
- ``push_subscriptions``: Web Push endpoints and keys, per device (session).
- ``push_states``: per device and conversation, what was pushed last (coalescing,
  idempotency).
- ``notifications``: the ledger of (user, message, channel) that qualified.

The search triggers of 0002 are on ``messages``, which is untouched. Downgrading drops the
two ``members`` columns through a batch (a table copy on SQLite).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
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
    op.add_column("members", sa.Column("notify", sa.String(length=8), nullable=True))
    op.add_column("members", sa.Column("muted_until", WHEN, nullable=True))

    op.create_table(
        "notification_settings",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("notify_default", sa.String(length=8), nullable=False),
        sa.Column("email_digest", sa.Boolean(), nullable=False),
        sa.Column("last_digest_at", WHEN, nullable=True),
        sa.CheckConstraint(
            "notify_default IN ('all', 'mentions', 'none')",
            name=op.f("ck_notification_settings_notify_default"),
        ),
        _fk("notification_settings", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
    )

    op.create_table(
        "email_addresses",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("address_key", sa.String(length=254), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("verified_at", WHEN, nullable=True),
        _fk("email_addresses", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_email_addresses")),
    )
    op.create_index(
        "uq_email_addresses_verified_key",
        "email_addresses",
        ["address_key"],
        unique=True,
        sqlite_where=sa.text("verified_at IS NOT NULL"),
        postgresql_where=sa.text("verified_at IS NOT NULL"),
    )

    op.create_table(
        "push_subscriptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=True),
        sa.Column("endpoint", sa.String(length=1024), nullable=False),
        sa.Column("p256dh", sa.String(length=128), nullable=False),
        sa.Column("auth", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=400), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_success_at", WHEN, nullable=True),
        _fk("push_subscriptions", "user_id", "users.id"),
        _fk("push_subscriptions", "session_id", "sessions.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
    )
    op.create_index("ix_push_subscriptions_user_id", "push_subscriptions", ["user_id"])
    op.create_index("ix_push_subscriptions_session_id", "push_subscriptions", ["session_id"])

    op.create_table(
        "push_states",
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("pushed_seq", sa.BigInteger(), nullable=False),
        sa.Column("claimed_seq", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("flush_at", WHEN, nullable=True),
        _fk("push_states", "subscription_id", "push_subscriptions.id"),
        _fk("push_states", "conversation_id", "conversations.id"),
        sa.PrimaryKeyConstraint("subscription_id", "conversation_id", name=op.f("pk_push_states")),
    )
    op.create_index("ix_push_states_conversation_id", "push_states", ["conversation_id"])

    op.create_table(
        "notifications",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False),
        sa.Column("digest_id", sa.String(length=32), nullable=True),
        sa.CheckConstraint("channel IN ('push', 'email')", name=op.f("ck_notifications_channel")),
        sa.CheckConstraint(
            "status IN ('pending', 'claimed', 'sent', 'skipped')",
            name=op.f("ck_notifications_status"),
        ),
        _fk("notifications", "user_id", "users.id"),
        _fk("notifications", "conversation_id", "conversations.id"),
        sa.PrimaryKeyConstraint(
            "user_id", "message_id", "channel", name=op.f("pk_notifications")
        ),
    )
    op.create_index(
        "ix_notifications_conversation", "notifications", ["conversation_id", "user_id", "seq"]
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["due_at"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notifications_digest_id",
        "notifications",
        ["digest_id"],
        sqlite_where=sa.text("digest_id IS NOT NULL"),
        postgresql_where=sa.text("digest_id IS NOT NULL"),
    )
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("push_states")
    op.drop_table("push_subscriptions")
    op.drop_table("email_addresses")
    op.drop_table("notification_settings")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("muted_until")
        batch.drop_column("notify")
