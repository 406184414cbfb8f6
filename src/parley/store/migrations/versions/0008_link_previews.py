"""link previews: a cache per URL and the preview each message shows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:40:00

Two new tables (``parley.store.tables.media.link_previews`` and ``message_link_previews``); no
existing table changes. A message's preview row goes with the message (CASCADE); a cached
URL row is shared by every message linking there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_previews",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("description", sa.String(length=600), nullable=True),
        sa.Column("site_name", sa.String(length=100), nullable=True),
        sa.Column("image_key", sa.String(length=200), nullable=True),
        sa.Column("image_width", sa.Integer(), nullable=True),
        sa.Column("image_height", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_previews")),
        sa.UniqueConstraint("url_hash", name=op.f("uq_link_previews_url_hash")),
    )
    op.create_table(
        "message_link_previews",
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("preview_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_link_previews_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["preview_id"],
            ["link_previews.id"],
            name=op.f("fk_message_link_previews_preview_id_link_previews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_link_previews")),
    )
    op.create_index(
        "ix_message_link_previews_preview_id", "message_link_previews", ["preview_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_link_previews_preview_id", table_name="message_link_previews")
    op.drop_table("message_link_previews")
    op.drop_table("link_previews")
