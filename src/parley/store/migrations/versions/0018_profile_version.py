"""profile versions: users.profile_version

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 09:40:00

Every change of what others see of a user — display name, profile picture, erasure — raises
``users.profile_version`` by one, and every user or member object carries it. A client keeps
the highest version it has seen of each profile, so an answer read before a rename but
delivered after its ``user.updated`` event cannot put the old name back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("profile_version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # Plain drop_column, as 0015 does: a batch rebuild of ``users`` would cascade into every
    # table that refers to it.
    op.drop_column("users", "profile_version")
