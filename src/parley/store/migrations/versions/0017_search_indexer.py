"""search indexing after the commit: a durable queue, a batched indexer

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 06:20:00

Until now the word and trigram indexes of migration 0002 were written by the transaction that
stores a message, so every send paid for them. From here a send only records that the
message waits to be indexed, in the same transaction (so an acknowledged message is never
forgotten, even if the process dies at once); ``parley.services.search_indexer`` indexes the
waiting messages in batches, off the send path, and search catches up on the backlog before it
reads. Forgetting stays immediate: an edit or a delete removes the old text from the indexes in
its own transaction, and a message is only ever indexed from its current row, so a deleted,
expired or erased message can never become searchable by a late batch.

SQLite: ``message_search_queue`` (message id, when it was queued) is filled by the triggers on
``messages`` instead of the FTS5 tables; the delete trigger and the "forget" half of the update
trigger are unchanged. One writer at a time: batches never overlap.

PostgreSQL: ``messages.search_vector`` is no longer a generated column; the indexer writes it.
A NULL vector on a visible text message is the waiting mark (its partial index
``ix_messages_search_pending`` lists the backlog in order), and both GIN indexes are partial
on ``search_vector IS NOT NULL``, so an insert does not touch them. A trigger sets the vector
back to NULL when the text, kind or deletion changes. Several nodes claim batches with
``FOR UPDATE SKIP LOCKED``.

Why a queue and not a durable watermark (the newest indexed message): PostgreSQL commits
concurrent sends in an order unrelated to their ids, so a watermark would skip a message
committed late behind it, and edits and deletes of old messages are not "after" any mark.
The queue row (SQLite) or the NULL vector with its partial-index entry (PostgreSQL) is
what a send pays now (``bench/search_write_cost_bench.py``).
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_INDEXED = "{row}.kind = 'text' AND {row}.deleted_at IS NULL"
# Seconds since the epoch, as the indexer's clock reads them (SQLite has no timestamp type).
_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

SQLITE_QUEUE = [
    """
    CREATE TABLE message_search_queue (
        message_id VARCHAR(26) NOT NULL PRIMARY KEY,
        queued_at REAL NOT NULL
    )
    """,
    "CREATE INDEX ix_message_search_queue_queued_at ON message_search_queue (queued_at)",
]

_FORGET = """
        INSERT INTO messages_fts (messages_fts, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        INSERT INTO messages_fts_trigram (messages_fts_trigram, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        DELETE FROM message_search WHERE message_id = old.id;
"""

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
    WHEN {_INDEXED.format(row="new")}
    BEGIN
        INSERT OR IGNORE INTO message_search_queue (message_id, queued_at)
            VALUES (new.id, {_NOW});
    END
    """,
    f"""
    CREATE TRIGGER messages_search_update AFTER UPDATE OF id, kind, content, deleted_at
    ON messages
    BEGIN {_FORGET}
        DELETE FROM message_search_queue WHERE message_id = old.id;
        INSERT OR IGNORE INTO message_search_queue (message_id, queued_at)
            SELECT new.id, {_NOW} WHERE {_INDEXED.format(row="new")};
    END
    """,
    f"""
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
    BEGIN {_FORGET}
        DELETE FROM message_search_queue WHERE message_id = old.id;
    END
    """,
]

SQLITE_OLD_TRIGGERS = [
    "DROP TRIGGER IF EXISTS messages_search_delete",
    "DROP TRIGGER IF EXISTS messages_search_update",
    "DROP TRIGGER IF EXISTS messages_search_insert",
]

SQLITE_DROP_QUEUE = [
    "DROP INDEX IF EXISTS ix_message_search_queue_queued_at",
    "DROP TABLE IF EXISTS message_search_queue",
]

_PENDING = "search_vector IS NULL AND kind = 'text' AND deleted_at IS NULL"

POSTGRES_UPGRADE = [
    # Keeps every vector already computed; from now on the indexer writes them.
    "ALTER TABLE messages ALTER COLUMN search_vector DROP EXPRESSION",
    # Tombstones kept an empty vector; NULL is what "not indexed" means from here.
    "UPDATE messages SET search_vector = NULL WHERE NOT (kind = 'text' AND deleted_at IS NULL)",
    f"CREATE INDEX ix_messages_search_pending ON messages (created_at) WHERE {_PENDING}",
    # Indexed messages newest first: a common word's ranking window is found by walking
    # this (parley.services.search), not by reading every match. (Tombstones have no
    # vector; the kind and deletion terms keep the word conditions from picking it.)
    """
    CREATE INDEX ix_messages_search_recent ON messages (created_at, id)
        WHERE search_vector IS NOT NULL AND kind = 'text' AND deleted_at IS NULL
    """,
    "DROP INDEX IF EXISTS ix_messages_search_words",
    "DROP INDEX IF EXISTS ix_messages_search_trigrams",
    """
    CREATE INDEX ix_messages_search_words ON messages USING gin (search_vector)
        WHERE search_vector IS NOT NULL
    """,
    """
    CREATE INDEX ix_messages_search_trigrams ON messages USING gin (content gin_trgm_ops)
        WHERE search_vector IS NOT NULL
    """,
    """
    CREATE FUNCTION parley_search_forget() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := NULL;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER messages_search_forget BEFORE UPDATE OF content, kind, deleted_at
    ON messages FOR EACH ROW
    WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.kind IS DISTINCT FROM NEW.kind
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION parley_search_forget()
    """,
]

POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS messages_search_forget ON messages",
    "DROP FUNCTION IF EXISTS parley_search_forget()",
    "DROP INDEX IF EXISTS ix_messages_search_pending",
    "DROP INDEX IF EXISTS ix_messages_search_recent",
    "DROP INDEX IF EXISTS ix_messages_search_trigrams",
    "DROP INDEX IF EXISTS ix_messages_search_words",
    "ALTER TABLE messages DROP COLUMN search_vector",
    """
    ALTER TABLE messages ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('parley_search', content)) STORED
    """,
    "CREATE INDEX ix_messages_search_words ON messages USING gin (search_vector)",
    "CREATE INDEX ix_messages_search_trigrams ON messages USING gin (content gin_trgm_ops)",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_QUEUE + SQLITE_OLD_TRIGGERS + SQLITE_TRIGGERS)
    elif dialect == "postgresql":
        _run(POSTGRES_UPGRADE)
    else:
        raise RuntimeError(f"Parley supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Back to indexing in the writing transaction: 0002's triggers, and every visible
        # message indexed again (the queue may still hold some that were never indexed).
        search = importlib.import_module("parley.store.migrations.versions.0002_search")
        _run(SQLITE_OLD_TRIGGERS + SQLITE_DROP_QUEUE + ["DELETE FROM message_search"])
        _run(search.SQLITE_TRIGGERS + search.SQLITE_BACKFILL)
    elif dialect == "postgresql":
        _run(POSTGRES_DOWNGRADE)
    else:
        raise RuntimeError(f"Parley supports sqlite and postgresql, not {dialect}")
