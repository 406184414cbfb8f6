"""archived conversations and group pictures: conversations.archived_at, avatar_key

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 04:45:00

DESIGN §6.3: ``conversations.archived_at`` — set by a site admin, the conversation is
read-only (history readable, nothing sent) until unarchived; NULL: active.
``conversations.avatar_key`` — a group's picture, like ``users.avatar_key``
(``parley.services.avatars``); NULL: the initial is shown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("archived_at", WHEN, nullable=True))
    op.add_column("conversations", sa.Column("avatar_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Plain drop_column (SQLite >= 3.35 drops a column in place), as 0014 does: a batch
    # rebuild cannot drop ``conversations`` while other tables refer to it.
    op.drop_column("conversations", "avatar_key")
    op.drop_column("conversations", "archived_at")
