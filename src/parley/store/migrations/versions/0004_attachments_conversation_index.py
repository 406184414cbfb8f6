"""index attachments by conversation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:30:00

``attachments.conversation_id`` references ``conversations`` with ON DELETE SET NULL, so
deleting a conversation makes the database find its attachments by that column: without
an index, SQLite (foreign key action) and PostgreSQL (referential trigger) both read every
attachment of every conversation to do it, and on SQLite under the one write lock.

A plain CREATE INDEX on both databases: no table is rebuilt, so the search triggers of
0002 on ``messages`` are untouched.
"""

from __future__ import annotations

from alembic import op


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attachments_conversation_id", "attachments", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_attachments_conversation_id", table_name="attachments")
