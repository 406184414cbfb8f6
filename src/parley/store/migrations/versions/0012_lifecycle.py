"""data lifecycle: retention, legal hold, erasure, exports

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-06 03:20:00

DESIGN §6.4 (``parley.lifecycle``):

- ``conversations.retention_days`` (NULL: the site policy), ``conversations.legal_hold``
  (suspends every deletion by retention) and ``conversations.expired_through_seq``: every
  message at or below this seq was removed by retention — the ``changes`` feed and the
  ``messages.expired`` event tell clients to drop them.
- ``users.erased_at``: an erased account keeps its row (the username stays reserved), with
  nothing of its profile left.
- ``data_exports``: personal and conversation exports, built by a job into the media store.

Columns are added in place on both databases (constant defaults) and dropped in place when
downgrading (SQLite 3.35+).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(length=26)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column(
        "conversations",
        sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "conversations",
        sa.Column("expired_through_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column("users", sa.Column("erased_at", WHEN, nullable=True))
    op.create_table(
        "data_exports",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("progress", sa.SmallInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'ready', 'failed')",
            name=op.f("ck_data_exports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_data_exports_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    op.create_index("ix_data_exports_user_id", "data_exports", ["user_id", "created_at"])
    op.create_index("ix_data_exports_expires_at", "data_exports", ["expires_at"])
    # Deleting a conversation looks its exports up (ON DELETE CASCADE).
    op.create_index("ix_data_exports_conversation_id", "data_exports", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_data_exports_conversation_id", table_name="data_exports")
    op.drop_index("ix_data_exports_expires_at", table_name="data_exports")
    op.drop_index("ix_data_exports_user_id", table_name="data_exports")
    op.drop_table("data_exports")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch would copy ``conversations``
    # and ``users``, and dropping the originals with foreign keys on cascades into every
    # table that refers to them.
    op.drop_column("users", "erased_at")
    op.drop_column("conversations", "expired_through_seq")
    op.drop_column("conversations", "legal_hold")
    op.drop_column("conversations", "retention_days")
