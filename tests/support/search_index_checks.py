"""The SQLite search index checked against the messages it indexes (FTS5 tables
``messages_fts``, ``messages_fts_trigram`` and ``messages_fts_bigram``, rows in
``message_search`` and ``message_search_bigrams``)."""

from __future__ import annotations

from parley.services.search_bigrams import bigram_rows
from parley.store.db import Database

FTS5_TABLES = ("messages_fts", "messages_fts_trigram", "messages_fts_bigram")


async def check_sqlite_index(db: Database) -> None:
    """FTS5's own check against the content, one index row per visible message, and the
    bigram keys of every indexed message: exactly those of its current text."""
    async with db.read() as conn:
        for table in FTS5_TABLES:
            await conn.exec_driver_sql(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        indexed = (await conn.exec_driver_sql("SELECT count(*) FROM message_search")).scalar_one()
        visible = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM messages WHERE kind = 'text' AND deleted_at IS NULL"
            )
        ).scalar_one()
        texts = await conn.exec_driver_sql(
            "SELECT s.doc_id, m.content FROM message_search AS s JOIN messages AS m ON m.id = s.message_id"
        )
        expected = bigram_rows((row.doc_id, row.content) for row in texts)
        stored = await conn.exec_driver_sql("SELECT doc_id, bigrams FROM message_search_bigrams ORDER BY doc_id")
        stored_rows = [{"doc_id": row.doc_id, "bigrams": row.bigrams} for row in stored]
    assert indexed == visible
    assert stored_rows == sorted(expected, key=lambda row: row["doc_id"])
