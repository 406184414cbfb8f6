"""Group commit: acknowledged, durable sends per second with batching vs without.

The baseline is the same service with batches of one (a transaction per message), measured
in the same run on the same database, so the ratio survives a noisy shared machine.
Every send is committed before it is acknowledged in both modes.

    python bench/group_commit_bench.py [--database sqlite|postgres] [--senders 64] [--messages 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import bench_settings, make_database  # noqa: E402
from parley.container import build_container
from parley.services.auth import ClientInfo
from parley.store import migrate





async def run_mode(kind: str, batching: bool, senders: int, per_sender: int, directory: Path) -> dict[str, Any]:
    name = f"parley_bench_{'batch' if batching else 'single'}_{os.getpid()}"
    url, drop = await make_database(kind, directory, name)
    settings = bench_settings(
        directory / "data",
        url,
        message_rate_per_second=1e9,
        message_burst=10**9,
        conversation_message_rate_per_second=1e9,
        conversation_message_burst=10**9,
        group_commit_max_batch=256 if batching else 1,
        group_commit_window_ms=2.0 if batching else 0.0,
        database_pool_size=20,
    )
    container = build_container(settings)
    try:
        await migrate.upgrade(container.db)
        owner = await container.accounts.register("owner", "bench passphrase 1")
        users = [await container.accounts.register(f"user{i}", "bench passphrase 1") for i in range(senders)]
        await container.auth.open_session(owner.id, ClientInfo())
        group = await container.conversations.create_group(owner.id, "bench", [u.id for u in users])
        latencies: list[float] = []

        async def sender(user_id: str) -> None:
            for n in range(per_sender):
                started = time.perf_counter()
                await container.messages.send(user_id, group.id, f"message {n} from {user_id}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(sender(u.id) for u in users))
        elapsed = time.perf_counter() - started
        total = senders * per_sender
        histogram = container.metrics.group_commit_batch
        batches = sum(b.get() for b in histogram._buckets)  # type: ignore[attr-defined]
        latencies.sort()
        return {
            "mode": "group commit" if batching else "one transaction per message",
            "messages": total,
            "seconds": round(elapsed, 3),
            "messages_per_second": round(total / elapsed, 1),
            "mean_batch": round(total / batches, 1) if batches else 0,
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        }
    finally:
        await container.close()
        if drop is not None:
            await drop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--messages", type=int, default=20, help="messages per sender")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        baseline = await run_mode(args.database, False, args.senders, args.messages, directory)
        batched = await run_mode(args.database, True, args.senders, args.messages, directory)
    ratio = batched["messages_per_second"] / baseline["messages_per_second"]
    result = {
        "benchmark": "group_commit",
        "database": args.database,
        "senders": args.senders,
        "baseline": baseline,
        "parley": batched,
        "ratio": round(ratio, 2),
    }
    print(f"\n## Group commit on {args.database}: {args.senders} concurrent senders\n")
    print("| mode | msgs/s | mean batch | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for row in (baseline, batched):
        print(f"| {row['mode']} | {row['messages_per_second']} | {row['mean_batch']} | {row['p50_ms']} | {row['p99_ms']} |")
    print(f"\n**group commit / one-per-transaction = {ratio:.2f}x**")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
