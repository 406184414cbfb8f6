"""What keeping messages searchable costs each send, on SQLite.

Until migration 0017 every new message was indexed by two FTS5 tables in its own transaction
(a word index and a trigram index, kept by triggers); since then the send only queues the
message (a row of ``message_search_queue``) and ``parley.services.search_indexer`` indexes the
queue in batches. This measures CPU per inserted message on Parley's real schema, in
transactions of 1, 3 and 30 messages (the group commit's batches at low, moderate and high
load): indexed in the transaction (0002's triggers put back), queued (today), and not
indexed at all (triggers dropped) — same run, same data; and what the batched indexer then
spends per message, off the send path.

    python bench/search_write_cost_bench.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import shutil
import sqlite3
import string
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from parley.services.search_indexer import BATCH_SIZE, _index_sqlite
from parley.store import migrate
from parley.store.db import Database

BATCH_SIZES = (1, 3, 30)
WARM_UP_MESSAGES = 2000
# Named, so columns added by later migrations (nullable ones, like 0014's) change nothing.
_COLUMNS = (
    "id, conversation_id, seq, version_seq, sender_id, kind, content, client_msg_id, "
    "reply_to_id, mentions, system_event, created_at, edited_at, deleted_at"
)


async def migrated_template(directory: Path) -> Path:
    path = directory / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()
    return path


def cpu_per_message(template: Path, per_transaction: int, messages: int, *, mode: str) -> tuple[float, float]:
    """Microseconds of this process's CPU per message inserted ``per_transaction`` at a time,
    and (``mode`` "queued") per message for the indexer to index them afterwards.

    ``mode``: "in_transaction" (0002's triggers), "queued" (0017), "none"."""
    path = template.with_name(f"run-{per_transaction}-{mode}.db")
    shutil.copy(template, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")  # the rows name no real conversation or user
    if mode != "queued":
        conn.execute("DROP TRIGGER messages_search_insert")
    if mode == "in_transaction":
        search_0002 = importlib.import_module("parley.store.migrations.versions.0002_search")
        conn.execute(next(t for t in search_0002.SQLITE_TRIGGERS if "messages_search_insert" in t))
    vocabulary = ["".join(random.choices(string.ascii_lowercase, k=random.randint(2, 9))) for _ in range(3000)]
    seq = 0

    def insert(count: int) -> None:
        nonlocal seq
        rows = []
        for _ in range(count):
            seq += 1
            content = " ".join(random.choices(vocabulary, k=12))  # about 70 characters
            rows.append((f"{seq:026d}", "C" * 26, seq, seq, "U" * 26, "text", content, None, None,
                         "[]", None, "2026-01-01 00:00:00", None, None))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO messages ({_COLUMNS}) VALUES ({', '.join('?' * len(rows[0]))})", rows
        )
        conn.execute("COMMIT")

    try:
        for _ in range(WARM_UP_MESSAGES // 10):
            insert(10)
        conn.execute("DELETE FROM message_search_queue")  # the warm-up's
        started = time.process_time()
        for _ in range(messages // per_transaction):
            insert(per_transaction)
        total = messages // per_transaction * per_transaction
        sending = 1e6 * (time.process_time() - started) / total
    finally:
        conn.close()
    if mode != "queued":
        return sending, 0.0
    engine = create_engine(f"sqlite:///{path}")
    started = time.process_time()
    with engine.connect() as indexing:
        while True:
            with indexing.begin():
                if not _index_sqlite(indexing, BATCH_SIZE):
                    break
    engine.dispose()
    return sending, 1e6 * (time.process_time() - started) / total


async def main(messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        template = await migrated_template(Path(directory))
        results = {}
        for size in BATCH_SIZES:
            inline, _ = cpu_per_message(template, size, messages, mode="in_transaction")
            queued, indexer = cpu_per_message(template, size, messages, mode="queued")
            plain, _ = cpu_per_message(template, size, messages, mode="none")
            results[f"{size} per transaction"] = {
                "indexed_in_transaction_us_per_message": round(inline),
                "queued_us_per_message": round(queued),
                "not_indexed_us_per_message": round(plain),
                "indexer_us_per_message_later": round(indexer),
                "send_path_queued_vs_in_transaction": round(queued / inline, 2),
            }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    print(json.dumps(asyncio.run(main(parser.parse_args().messages)), indent=2))
