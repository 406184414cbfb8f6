"""search: attachment file names; the gallery's index

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-06 00:10:00

A message is also found by the names of its files ("budget" finds the message carrying
``budget-2027.xlsx``). Only names of attachments that belong to a message and are not being
removed are indexed; the queries live in ``parley.services.search``.

SQLite: two FTS5 tables over the names — words (``unicode61``, which splits
``quarterly_report-v2.pdf`` at the punctuation) and trigrams (substrings of 3+ characters) —
keyed by ``attachment_search.doc_id``, a stable INTEGER PRIMARY KEY mapped to the attachment
and its message (``attachments`` has a text primary key; see migration 0002 for why its
implicit rowid cannot be used). Triggers keep them current: an attachment is indexed while
``message_id IS NOT NULL AND deleted_at IS NULL`` (claimed by a sent message; a deleted
message marks its files ``deleted_at``, a deleted conversation sets ``message_id`` NULL).

PostgreSQL: two partial GIN indexes on ``attachments`` over the rows not being removed
(uploads not sent yet are in them too, but have no message a search could return): the
words of the name (with ``.``, ``_`` and ``-`` read as spaces, so ``report.pdf`` is two words and not one
file-name token) in the ``parley_search`` configuration of migration 0002, and ``pg_trgm``
on the name.

Both databases: ``ix_attachments_conversation_gallery`` on ``(conversation_id, id)``, for a
conversation's files and media newest first (``services.attachment_gallery``). It replaces
``ix_attachments_conversation_id`` of migration 0004, whose lookups (deleting a
conversation) it serves as well.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXED = "{row}.message_id IS NOT NULL AND {row}.deleted_at IS NULL"

SQLITE_TABLES = [
    """
    CREATE TABLE attachment_search (
        doc_id INTEGER PRIMARY KEY,
        attachment_id VARCHAR(26) NOT NULL UNIQUE,
        message_id VARCHAR(26) NOT NULL
    )
    """,
    """
    CREATE VIRTUAL TABLE attachment_names_fts USING fts5(
        name, tokenize='unicode61 remove_diacritics 2'
    )
    """,
    "CREATE VIRTUAL TABLE attachment_names_fts_trigram USING fts5(name, tokenize='trigram')",
]

_FORGET = """
        DELETE FROM attachment_names_fts WHERE rowid IN
            (SELECT doc_id FROM attachment_search WHERE attachment_id = old.id);
        DELETE FROM attachment_names_fts_trigram WHERE rowid IN
            (SELECT doc_id FROM attachment_search WHERE attachment_id = old.id);
        DELETE FROM attachment_search WHERE attachment_id = old.id;
"""
_INDEX = f"""
        INSERT INTO attachment_search (attachment_id, message_id)
            SELECT new.id, new.message_id WHERE {_INDEXED.format(row="new")};
        INSERT INTO attachment_names_fts (rowid, name)
            SELECT doc_id, new.name FROM attachment_search WHERE attachment_id = new.id;
        INSERT INTO attachment_names_fts_trigram (rowid, name)
            SELECT doc_id, new.name FROM attachment_search WHERE attachment_id = new.id;
"""

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER attachments_search_insert AFTER INSERT ON attachments
    WHEN {_INDEXED.format(row="new")}
    BEGIN {_INDEX}
    END
    """,
    f"""
    CREATE TRIGGER attachments_search_update
    AFTER UPDATE OF id, name, message_id, deleted_at ON attachments
    BEGIN {_FORGET} {_INDEX}
    END
    """,
    f"""
    CREATE TRIGGER attachments_search_delete AFTER DELETE ON attachments
    BEGIN {_FORGET}
    END
    """,
]

SQLITE_BACKFILL = [
    f"""
    INSERT INTO attachment_search (attachment_id, message_id)
    SELECT id, message_id FROM attachments AS a WHERE {_INDEXED.format(row="a")} ORDER BY a.id
    """,
    """
    INSERT INTO attachment_names_fts (rowid, name)
    SELECT s.doc_id, a.name FROM attachment_search AS s JOIN attachments AS a
        ON a.id = s.attachment_id
    """,
    """
    INSERT INTO attachment_names_fts_trigram (rowid, name)
    SELECT s.doc_id, a.name FROM attachment_search AS s JOIN attachments AS a
        ON a.id = s.attachment_id
    """,
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS attachments_search_delete",
    "DROP TRIGGER IF EXISTS attachments_search_update",
    "DROP TRIGGER IF EXISTS attachments_search_insert",
    "DROP TABLE IF EXISTS attachment_names_fts_trigram",
    "DROP TABLE IF EXISTS attachment_names_fts",
    "DROP TABLE IF EXISTS attachment_search",
]

# The expression parley.services.search matches against: keep the two in step.
POSTGRES_NAME_VECTOR = "to_tsvector('parley_search', translate(name, '._-', '   '))"

# Only "deleted_at IS NULL": a query naming "message_id IS NOT NULL" too would let the
# planner take ix_attachments_message_id (every claimed file) instead of these.
POSTGRES_CREATE = [
    f"""
    CREATE INDEX ix_attachments_name_words ON attachments
        USING gin ({POSTGRES_NAME_VECTOR}) WHERE deleted_at IS NULL
    """,
    """
    CREATE INDEX ix_attachments_name_trigrams ON attachments
        USING gin (name gin_trgm_ops) WHERE deleted_at IS NULL
    """,
]

POSTGRES_DROP = [
    "DROP INDEX IF EXISTS ix_attachments_name_trigrams",
    "DROP INDEX IF EXISTS ix_attachments_name_words",
]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)


GALLERY_INDEX = "ix_attachments_conversation_gallery"
REPLACED_INDEX = "ix_attachments_conversation_id"


def upgrade() -> None:
    op.create_index(GALLERY_INDEX, "attachments", ["conversation_id", "id"])
    op.drop_index(REPLACED_INDEX, table_name="attachments")
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
    op.create_index(REPLACED_INDEX, "attachments", ["conversation_id"])
    op.drop_index(GALLERY_INDEX, table_name="attachments")
