"""attachment indexes that find the rows asked for instead of reading the table

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:30:00

Three indexes of ``attachments`` (``parley.store.tables.media``), each a whole-table read before:

- ``ix_attachments_conversation_id`` (new). ``conversation_id`` references ``conversations``
  with ON DELETE SET NULL, so deleting a conversation makes the database find its
  attachments by that column: without an index SQLite (foreign key action) and PostgreSQL
  (referential trigger) read every attachment for it — on SQLite under the one write lock.
- ``ix_attachments_deleted_at``, now only of the rows being removed (``deleted_at IS NOT
  NULL``), which is all the sweep reads by it. Over every row (nearly all NULL), SQLite
  without ANALYZE statistics — Parley never runs ANALYZE — took ``deleted_at IS NULL`` for
  a selective lookup, and every message read (``attachment_records.load_public_for_messages``)
  walked all live attachments through it instead of looking them up by ``message_id``.
- ``ix_attachments_created_at``, now only of uploads not yet claimed (``claimed_at IS
  NULL``): the sweep looks for those older than a day. Over every row, "created more than
  a day ago" read nearly every attachment, at each sweep (every deleted message queues one).

Plain CREATE / DROP INDEX on both databases: no table is rebuilt, so the search triggers of
0002 on ``messages`` are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (index, column, the rows it keeps)
_PARTIAL = [
    ("ix_attachments_deleted_at", "deleted_at", "deleted_at IS NOT NULL"),
    ("ix_attachments_created_at", "created_at", "claimed_at IS NULL"),
]


def upgrade() -> None:
    op.create_index("ix_attachments_conversation_id", "attachments", ["conversation_id"])
    for name, column, rows in _PARTIAL:
        op.drop_index(name, table_name="attachments")
        op.create_index(
            name,
            "attachments",
            [column],
            sqlite_where=sa.text(rows),
            postgresql_where=sa.text(rows),
        )


def downgrade() -> None:
    for name, column, _rows in _PARTIAL:
        op.drop_index(name, table_name="attachments")
        op.create_index(name, "attachments", [column])
    op.drop_index("ix_attachments_conversation_id", table_name="attachments")
