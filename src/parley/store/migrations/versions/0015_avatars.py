"""profile pictures: users.avatar_key

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:20:00

DESIGN §6.3 (``parley.services.avatars``): ``users.avatar_key`` names the current profile
picture's version (its blobs are ``avatars/{user}/{key}/{size}.webp``); NULL: none, initials are
shown. A new picture is a new key, so its public URLs can be cached for good.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("avatar_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Plain drop_column (SQLite >= 3.35 drops a column in place): a batch rebuild of
    # ``users`` drops and recreates the table, and with foreign keys on that cascades into
    # every table that refers to it (memberships, sessions) — as 0014 does for its columns.
    op.drop_column("users", "avatar_key")
