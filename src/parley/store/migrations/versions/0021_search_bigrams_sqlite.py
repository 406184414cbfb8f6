"""search: SQLite's bigram index for short substrings in scripts without spaces

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 05:20:00

SQLite's counterpart of 0020. A search term of two characters in a script written without
spaces (CJK, Thai, ...) or with emoji — "東京", "👍🏽" — is a substring the trigram index
cannot hold, so it was matched by LIKE on every message of the caller's conversations: p95
203–643 ms at a million messages (docs/benchmarks.md, round three).

``message_search_bigrams`` holds, per indexed message (``message_search.doc_id``) that has
any, its keys (``parley.services.search_bigrams``: each two-character substring of the
ASCII-folded text that holds such a character, as twelve hex digits), and the FTS5
table ``messages_fts_bigram`` indexes them (``ascii`` tokenizer: a key is one token;
``detail=none``: only which documents hold a key is ever asked). Search finds the documents
holding every key of a term, then LIKE checks each (when few enough documents hold them:
``parley.services.search_sqlite``). The keys are computed in Python — by the
indexer for new messages, here for the old ones — since SQLite has no function for them
that every connection (a ``sqlite3`` shell, a backup tool) would know.

Forgetting needs no function either: a trigger on ``message_search`` removes a document's
keys when its row goes, which every path that forgets a message takes (the triggers of
0017 on edits, deletes and cascades; erasure).

Nothing to do on PostgreSQL (0020).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from parley.services.search_bigrams import bigram_rows

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SQLITE_CREATE = [
    """
    CREATE TABLE message_search_bigrams (
        doc_id INTEGER PRIMARY KEY,
        bigrams TEXT NOT NULL
    )
    """,
    """
    CREATE VIRTUAL TABLE messages_fts_bigram USING fts5(
        bigrams,
        content='message_search_bigrams',
        content_rowid='doc_id',
        tokenize='ascii',
        detail='none'
    )
    """,
    """
    CREATE TRIGGER message_search_forget_bigrams AFTER DELETE ON message_search
    BEGIN
        INSERT INTO messages_fts_bigram (messages_fts_bigram, rowid, bigrams)
            SELECT 'delete', doc_id, bigrams FROM message_search_bigrams WHERE doc_id = old.doc_id;
        DELETE FROM message_search_bigrams WHERE doc_id = old.doc_id;
    END
    """,
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS message_search_forget_bigrams",
    "DROP TABLE IF EXISTS messages_fts_bigram",
    "DROP TABLE IF EXISTS message_search_bigrams",
]

# Text outside ASCII (more UTF-8 bytes than characters): only such text can have keys.
_INDEXED_TEXT = text(
    """
    SELECT s.doc_id, m.content FROM message_search AS s JOIN messages AS m ON m.id = s.message_id
    WHERE s.doc_id > :after AND length(CAST(m.content AS BLOB)) > length(m.content)
    ORDER BY s.doc_id LIMIT :n
    """
)
_PAGE = 10_000
_INSERT_KEYS = text("INSERT INTO message_search_bigrams (doc_id, bigrams) VALUES (:doc_id, :bigrams)")
_REBUILD = "INSERT INTO messages_fts_bigram (messages_fts_bigram) VALUES ('rebuild')"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for statement in SQLITE_CREATE:
        op.execute(statement)
    after = 0
    while True:  # a page at a time: a large history never sits in memory whole
        page = bind.execute(_INDEXED_TEXT, {"after": after, "n": _PAGE}).all()
        if not page:
            break
        after = page[-1].doc_id
        rows = bigram_rows((doc_id, content) for doc_id, content in page)
        if rows:
            bind.execute(_INSERT_KEYS, rows)
    op.execute(_REBUILD)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in SQLITE_DROP:
        op.execute(statement)
