"""What keeping messages searchable costs each send, on SQLite.

Every new message is indexed by two FTS5 tables in its own transaction (a word index and a
trigram index, kept by triggers — see the search migration), so search never lags behind
what was acknowledged. This measures CPU per inserted message on Parley's real schema, in
transactions of 1, 3 and 30 messages (the group commit's batches at low, moderate and high
load), with the search triggers in place and with them dropped — same run, same data, so
the ratio is the cost of the index.

    python bench/search_write_cost_bench.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import string
import tempfile
import time
from pathlib import Path
from typing import Any

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


def cpu_per_message(template: Path, per_transaction: int, messages: int, *, searchable: bool) -> float:
    """Microseconds of this process's CPU per message inserted ``per_transaction`` at a time."""
    path = template.with_name(f"run-{per_transaction}-{searchable}.db")
    shutil.copy(template, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")  # the rows name no real conversation or user
    if not searchable:
        conn.execute("DROP TRIGGER messages_search_insert")
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
        started = time.process_time()
        for _ in range(messages // per_transaction):
            insert(per_transaction)
        return 1e6 * (time.process_time() - started) / (messages // per_transaction * per_transaction)
    finally:
        conn.close()


async def main(messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        template = await migrated_template(Path(directory))
        results = {}
        for size in BATCH_SIZES:
            indexed = cpu_per_message(template, size, messages, searchable=True)
            plain = cpu_per_message(template, size, messages, searchable=False)
            results[f"{size} per transaction"] = {
                "searchable_us_per_message": round(indexed),
                "not_indexed_us_per_message": round(plain),
                "ratio": round(indexed / plain, 2),
            }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000)
    print(json.dumps(asyncio.run(main(parser.parse_args().messages)), indent=2))
