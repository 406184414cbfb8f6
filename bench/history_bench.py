"""History paging and the ``changes`` feed at 10k / 100k (/ 1M) messages in one
conversation, as a ratio to a primary-key lookup.

The baseline — fetching one message by id through the same ``Database`` — is measured in
the same run on the same data, so the ratio survives a noisy shared machine. Messages are
bulk-inserted through the table (index upkeep and the search triggers run as in
production); pages are read through the service, as the API reads them:

- history: the latest page, a page from the middle (``before_seq``), the oldest page,
  a forward page (``after_seq``) and ``around_id`` — 50 messages each;
- changes: a client 50 behind (one short page), and full pages of 500 from the middle
  and from the start (a client resuming from far behind).

    python bench/history_bench.py [--database sqlite|postgres|both] [--sizes 10000,100000]
                                  [--repeat 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import bench_container, database_kinds, run_each, timed, write_results  # noqa: E402

from parley.ids import new_id
from parley.store.tables.conversations import conversations
from parley.store.tables.messages import messages

INSERT_BATCH = 5000
WORDS = "ship review deploy lunch meeting notes ticket merge build release design fix bug call".split()




async def bench(kind: str, total: int, repeat: int, directory: Path) -> dict[str, Any]:
    name = f"parley_history_bench_{total}_{os.getpid()}"
    async with bench_container(kind, directory, name, database_pool_size=4) as container:
        alice = await container.accounts.register("alice", "bench passphrase 1")
        bob = await container.accounts.register("bob", "bench passphrase 1")
        group = await container.conversations.create_group(alice.id, "history", [bob.id])
        cid = group.id
        first = group.shared.last_seq + 1
        rng = random.Random(5)
        start = datetime.now(UTC) - timedelta(days=100)
        began = time.perf_counter()
        seq = first - 1
        ids: list[str] = []
        while seq < first - 1 + total:
            rows = []
            for _ in range(min(INSERT_BATCH, first - 1 + total - seq)):
                seq += 1
                message_id = new_id()
                ids.append(message_id)
                rows.append({
                    "id": message_id, "conversation_id": cid, "seq": seq, "version_seq": seq,
                    "sender_id": rng.choice((alice.id, bob.id)), "kind": "text",
                    "content": " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
                    "client_msg_id": None, "reply_to_id": None, "mentions": "[]",
                    "system_event": None, "created_at": start + timedelta(seconds=seq),
                    "edited_at": None, "deleted_at": None,
                })
            async with container.db.transaction() as conn:
                await conn.execute(messages.insert(), rows)
        async with container.db.transaction() as conn:
            await conn.execute(update(conversations).where(conversations.c.id == cid).values(last_seq=seq))
        inserted = time.perf_counter() - began
        if not container.db.is_sqlite:
            async with container.db.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
        last = seq
        middle_id = ids[len(ids) // 2]

        async def lookup() -> None:
            async with container.db.read() as conn:
                (await conn.execute(select(messages).where(messages.c.id == middle_id))).one()

        history = container.messages.history
        changes = container.messages.changes
        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "history: latest page": lambda: history(bob.id, cid),
            "history: middle page (before_seq)": lambda: history(bob.id, cid, before_seq=last - total // 2),
            "history: oldest page": lambda: history(bob.id, cid, before_seq=first + 50),
            "history: forward page (after_seq)": lambda: history(bob.id, cid, after_seq=last - total // 2),
            "history: around_id": lambda: history(bob.id, cid, around_id=middle_id),
            "changes: 50 behind": lambda: changes(bob.id, cid, after_seq=last - 50),
            "changes: page of 500 from the middle": lambda: changes(bob.id, cid, after_seq=last - total // 2),
            "changes: page of 500 from the start": lambda: changes(bob.id, cid, after_seq=0),
        }
        base = statistics.median(await timed(lookup, repeat * 5))
        rows_out = []
        for label, call in cases.items():
            laps = await timed(call, repeat)
            median = statistics.median(laps)
            p95 = sorted(laps)[max(0, int(len(laps) * 0.95) - 1)]
            rows_out.append({"query": label, "median_ms": round(median, 3), "p95_ms": round(p95, 3),
                             "ratio": round(median / base, 1)})
        return {
            "database": kind,
            "messages": total,
            "insert_per_second": round(total / inserted),
            "baseline_ms": round(base, 3),
            "queries": rows_out,
        }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"\n### History and changes: {result['database']}, {result['messages']:,} messages in one conversation\n",
        f"Baseline, primary-key lookup: median {result['baseline_ms']:.3f} ms "
        f"(bulk insert: {result['insert_per_second']:,} messages/s)\n",
        "| query | median ms | p95 ms | × baseline |",
        "|---|---|---|---|",
    ]
    for row in result["queries"]:
        lines.append(f"| {row['query']} | {row['median_ms']:.2f} | {row['p95_ms']:.2f} | {row['ratio']:g}× |")
    return lines


async def run(kinds: list[str], sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    """Every size on every database (``bench/run.py`` runs it too)."""
    benches = [functools.partial(bench, kind, size, repeat) for kind in kinds for size in sizes]
    return await run_each(benches, table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    write_results(args.json, "history", asyncio.run(run(database_kinds(args.database), sizes, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
