"""full-text search indexes over message text

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:30:00

Two indexes per database, kept in step with ``messages`` inside the transaction that writes
the message (DESIGN §2 "Full-text search"; the queries live in ``parley.services.search``):

- a word index (case- and diacritic-insensitive words, phrases and prefixes), and
- a trigram index (substrings: partial words, CJK and other text without spaces).

SQLite: two external-content FTS5 tables maintained by triggers on ``messages``. FTS5 keys
rows by an integer rowid, and ``messages`` has a text primary key, so its implicit rowid is
not stable (VACUUM and Alembic's batch table rebuilds may renumber it). The FTS rows are
therefore keyed by ``message_search.doc_id``, an INTEGER PRIMARY KEY mapped to the message
id, and read their text through the view ``message_search_content``. Only visible text
messages (``kind = 'text'`` and not tombstoned) are indexed.

PostgreSQL: a generated column ``messages.search_vector`` (``to_tsvector('parley_search',
content)``, computed by the row write itself) with a GIN index, and a GIN ``gin_trgm_ops``
index on ``content``. ``parley_search`` is the language-neutral ``simple`` configuration
with ``unaccent`` in front, so "cafe" finds "café" as it does on SQLite
(``remove_diacritics``). Tombstones and system messages have empty content and add nothing
to either index; queries exclude them anyway. ``search_vector`` is not in
``parley.store.tables.messages`` (it is PostgreSQL-only and never written): Core ``select(messages)``
does not read it.

A later migration that rebuilds ``messages`` on SQLite (``batch_alter_table`` with
``recreate``) drops these triggers with the old table and must create them again
(``SQLITE_TRIGGERS`` below); plain ``op.add_column`` keeps them.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Visible text messages are the only ones indexed (and the only ones search returns).
_INDEXED = "{row}.kind = 'text' AND {row}.deleted_at IS NULL"

SQLITE_TABLES = [
    # The stable integer key FTS5 needs, one row per indexed message.
    """
    CREATE TABLE message_search (
        doc_id INTEGER PRIMARY KEY,
        message_id VARCHAR(26) NOT NULL UNIQUE
    )
    """,
    # What the FTS tables index, by doc_id: their external content ('rebuild' reads it).
    """
    CREATE VIEW message_search_content AS
    SELECT s.doc_id AS doc_id, m.content AS content
    FROM message_search AS s JOIN messages AS m ON m.id = s.message_id
    """,
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content,
        content='message_search_content',
        content_rowid='doc_id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    # Case-insensitive substrings of 3+ characters; any script, punctuation and emoji too.
    """
    CREATE VIRTUAL TABLE messages_fts_trigram USING fts5(
        content,
        content='message_search_content',
        content_rowid='doc_id',
        tokenize='trigram'
    )
    """,
]

# External-content FTS5 tables are told what to forget with the old text ('delete'), so the
# triggers pass exactly what was indexed: a message is indexed iff it has a message_search
# row. Updates of other columns (version_seq on reactions, for instance) do not fire them.
SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
    WHEN {_INDEXED.format(row="new")}
    BEGIN
        INSERT INTO message_search (message_id) VALUES (new.id);
        INSERT INTO messages_fts (rowid, content)
            SELECT doc_id, new.content FROM message_search WHERE message_id = new.id;
        INSERT INTO messages_fts_trigram (rowid, content)
            SELECT doc_id, new.content FROM message_search WHERE message_id = new.id;
    END
    """,
    f"""
    CREATE TRIGGER messages_search_update AFTER UPDATE OF id, kind, content, deleted_at
    ON messages
    BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        INSERT INTO messages_fts_trigram (messages_fts_trigram, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        DELETE FROM message_search WHERE message_id = old.id;
        INSERT INTO message_search (message_id)
            SELECT new.id WHERE {_INDEXED.format(row="new")};
        INSERT INTO messages_fts (rowid, content)
            SELECT doc_id, new.content FROM message_search WHERE message_id = new.id;
        INSERT INTO messages_fts_trigram (rowid, content)
            SELECT doc_id, new.content FROM message_search WHERE message_id = new.id;
    END
    """,
    # Also runs for rows removed by ON DELETE CASCADE (a deleted conversation).
    """
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
    BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        INSERT INTO messages_fts_trigram (messages_fts_trigram, rowid, content)
            SELECT 'delete', doc_id, old.content FROM message_search
            WHERE message_id = old.id;
        DELETE FROM message_search WHERE message_id = old.id;
    END
    """,
]

SQLITE_BACKFILL = [
    f"""
    INSERT INTO message_search (message_id)
    SELECT id FROM messages AS m WHERE {_INDEXED.format(row="m")} ORDER BY m.id
    """,
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
    "INSERT INTO messages_fts_trigram (messages_fts_trigram) VALUES ('rebuild')",
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS messages_search_delete",
    "DROP TRIGGER IF EXISTS messages_search_update",
    "DROP TRIGGER IF EXISTS messages_search_insert",
    "DROP TABLE IF EXISTS messages_fts_trigram",
    "DROP TABLE IF EXISTS messages_fts",
    "DROP VIEW IF EXISTS message_search_content",
    "DROP TABLE IF EXISTS message_search",
]

POSTGRES_CREATE = [
    # Both are trusted extensions (PostgreSQL 13+): a database owner may create them.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION parley_search (COPY = simple)",
    """
    ALTER TEXT SEARCH CONFIGURATION parley_search
        ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple
    """,
    # Stored, not only indexed: ranking and rechecks read the vector of every candidate
    # row, and parsing the text again for each costs ten times more than reading it.
    """
    ALTER TABLE messages ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('parley_search', content)) STORED
    """,
    "CREATE INDEX ix_messages_search_words ON messages USING gin (search_vector)",
    "CREATE INDEX ix_messages_search_trigrams ON messages USING gin (content gin_trgm_ops)",
]

# The extensions stay: other objects may use them, and they cost nothing unused.
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS ix_messages_search_trigrams",
    "DROP INDEX IF EXISTS ix_messages_search_words",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS parley_search",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_TABLES + SQLITE_TRIGGERS + SQLITE_BACKFILL)
    elif dialect == "postgresql":
        _run(POSTGRES_CREATE)
    else:
        raise RuntimeError(f"Parley supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_DROP)
    elif dialect == "postgresql":
        _run(POSTGRES_DROP)
    else:
        raise RuntimeError(f"Parley supports sqlite and postgresql, not {dialect}")
