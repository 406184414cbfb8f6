"""search: SQLite lists visible text messages newest first, for a walk

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 08:30:00

SQLite's counterpart of PostgreSQL's ``ix_messages_search_recent`` (0017, 0019). A search
term that no index can answer — one character, or two characters of CJK or emoji held by
too many messages for the bigram index of 0021 to pay — was matched by LIKE on every
message of the caller's conversations, then sorted: about 250 ms at a million messages in a
CJK-heavy history (docs/benchmarks.md, round nine). Search now reads the newest entries of
this index first and checks the caller's messages among them, and the rest of the history
only if they hold too few hits (``parley.services.search_sqlite``): a common term costs
20,000 index entries and the rows of the caller's among them.

``conversation_id`` is a column of the index so that the walk decides membership on the
index entry and reads the rows of the caller's conversations only. The index lists what
search may return (text, not deleted): the statements that walk it repeat those terms
literally, as a partial index requires.

Nothing to do on PostgreSQL (0017, 0019).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE INDEX ix_messages_search_recent ON messages (created_at, id, conversation_id)"
        " WHERE kind = 'text' AND deleted_at IS NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search_recent")
