"""team chat: threads, pins, forwarding, public groups and invite links

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-06 03:20:00

DESIGN §6.5 and §6.3 (``services.threads``, ``services.pins``, ``services.forwarding``,
``services.invites``):

- ``messages``: ``thread_root_id`` (a reply in a thread), ``thread_broadcast`` (the reply is
  also shown in the conversation), the root's summary ``thread_reply_count`` and
  ``thread_last_reply_at``, ``forwarded_from`` (JSON attribution) and the pin
  (``pinned_at``, ``pinned_by``). Added in place (``op.add_column``), so the search
  triggers of 0002 stay.
- ``thread_follows``: per (root, user) whether they follow and how far they read.
- ``attachments.blob_owner_id``: a forwarded file's row shares the blobs of this one.
- ``conversations.visibility``: 'private' (default) or 'public' (listed, joinable).
- ``conversation_invites``: invite links (hashed token, expiry, use limit, revocation).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0011"
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
    op.add_column("messages", sa.Column("thread_root_id", ID, nullable=True))
    op.add_column(
        "messages",
        sa.Column("thread_broadcast", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "messages",
        sa.Column("thread_reply_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("messages", sa.Column("thread_last_reply_at", WHEN, nullable=True))
    op.add_column("messages", sa.Column("forwarded_from", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("pinned_at", WHEN, nullable=True))
    op.add_column("messages", sa.Column("pinned_by", ID, nullable=True))
    op.create_index(
        "ix_messages_thread",
        "messages",
        ["thread_root_id", "seq"],
        sqlite_where=sa.text("thread_root_id IS NOT NULL"),
        postgresql_where=sa.text("thread_root_id IS NOT NULL"),
    )
    op.create_index(
        "ix_messages_pinned",
        "messages",
        ["conversation_id", "pinned_at"],
        sqlite_where=sa.text("pinned_at IS NOT NULL"),
        postgresql_where=sa.text("pinned_at IS NOT NULL"),
    )

    op.create_table(
        "thread_follows",
        sa.Column("root_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("last_read_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("thread_follows", "root_id", "messages.id"),
        _fk("thread_follows", "user_id", "users.id"),
        _fk("thread_follows", "conversation_id", "conversations.id"),
        sa.PrimaryKeyConstraint("root_id", "user_id", name=op.f("pk_thread_follows")),
    )
    op.create_index("ix_thread_follows_user", "thread_follows", ["user_id", "following"])
    op.create_index("ix_thread_follows_conversation_id", "thread_follows", ["conversation_id"])

    op.add_column("attachments", sa.Column("blob_owner_id", ID, nullable=True))
    op.create_index(
        "ix_attachments_blob_owner_id",
        "attachments",
        ["blob_owner_id"],
        sqlite_where=sa.text("blob_owner_id IS NOT NULL"),
        postgresql_where=sa.text("blob_owner_id IS NOT NULL"),
    )

    op.add_column(
        "conversations",
        sa.Column("visibility", sa.String(length=8), nullable=False, server_default="private"),
    )
    op.create_index(
        "ix_conversations_public",
        "conversations",
        ["last_activity_at"],
        sqlite_where=sa.text("visibility = 'public'"),
        postgresql_where=sa.text("visibility = 'public'"),
    )

    op.create_table(
        "conversation_invites",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
        _fk("conversation_invites", "conversation_id", "conversations.id"),
        _fk("conversation_invites", "created_by", "users.id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_conversation_invites_token_hash")),
    )
    op.create_index(
        "ix_conversation_invites_conversation_id", "conversation_invites", ["conversation_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_invites_conversation_id", table_name="conversation_invites")
    op.drop_table("conversation_invites")
    op.drop_index("ix_conversations_public", table_name="conversations")
    op.drop_index("ix_attachments_blob_owner_id", table_name="attachments")
    op.drop_index("ix_thread_follows_conversation_id", table_name="thread_follows")
    op.drop_index("ix_thread_follows_user", table_name="thread_follows")
    op.drop_table("thread_follows")
    op.drop_index("ix_messages_pinned", table_name="messages")
    op.drop_index("ix_messages_thread", table_name="messages")
    op.drop_column("conversations", "visibility")
    op.drop_column("attachments", "blob_owner_id")
    # In place on both databases (SQLite >= 3.35 has ALTER TABLE DROP COLUMN), so the
    # search triggers of 0002 on messages stay.
    for column in (
        "pinned_by",
        "pinned_at",
        "forwarded_from",
        "thread_last_reply_at",
        "thread_reply_count",
        "thread_broadcast",
        "thread_root_id",
    ):
        op.drop_column("messages", column)
