"""The SQLite search index checked against the messages it indexes (FTS5 tables
``messages_fts`` and ``messages_fts_trigram``, rows in ``message_search``)."""

from __future__ import annotations

from parley.store.db import Database


async def check_sqlite_index(db: Database) -> None:
    """FTS5's own check against the content, and one index row per visible message."""
    async with db.read() as conn:
        for table in ("messages_fts", "messages_fts_trigram"):
            await conn.exec_driver_sql(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        indexed = (await conn.exec_driver_sql("SELECT count(*) FROM message_search")).scalar_one()
        visible = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM messages WHERE kind = 'text' AND deleted_at IS NULL"
            )
        ).scalar_one()
    assert indexed == visible
