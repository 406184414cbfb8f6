"""CPU of one group-commit transaction on SQLite: ``write_batch`` for a batch of direct
messages (one per conversation, as at saturation), run on this thread.

The figure is the thread's own CPU time per batch (``time.thread_time``: neither the fsync's
wait nor other processes count), min / p25 / median over ``--batches``. On a shared machine
the minimum moves least. To compare two versions, run the same command with
``PYTHONPATH=<checkout>/src`` for each, alternately, minutes apart.

    python bench/write_batch_bench.py [--pairs 100] [--batches 50] [--synchronous FULL]
                                      [--profile]

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from databases import bench_settings, make_database  # noqa: E402

from parley.clock import utcnow  # noqa: E402
from parley.container import build_container  # noqa: E402
from parley.services.message_batch import SendRequest, write_batch  # noqa: E402
from parley.store import migrate  # noqa: E402

WARMUP_BATCHES = 3


async def run(pairs: int, batches: int, synchronous: str, profile: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="parley-write-batch-") as tmp:
        directory = Path(tmp)
        url, _ = await make_database("sqlite", directory, "write_batch")
        container = build_container(bench_settings(directory / "data", url, sqlite_synchronous=synchronous))
        try:
            await migrate.upgrade(container.db)
            users = [await container.accounts.register(f"user{i}", "bench passphrase 1") for i in range(2 * pairs)]
            conversations = [
                (await container.conversations.create_direct(users[2 * i].id, users[2 * i + 1].id))[0].shared.id
                for i in range(pairs)
            ]

            def batch(number: int) -> list[SendRequest]:
                return [
                    SendRequest(sender_id=users[2 * i].id, conversation_id=conversations[i],
                                content=f"message {number} " + "x" * 80, client_msg_id=f"b{number}.{i}")
                    for i in range(pairs)
                ]

            # On a SQLite file: the writer thread's engine (store/db.py), run here instead.
            writer = container.db.sync_engines()[1]

            def write(requests: list[SendRequest], now: datetime) -> None:
                with writer.begin() as conn:
                    write_batch(conn, requests, now, None)

            for number in range(WARMUP_BATCHES):
                write(batch(number), utcnow())
            profiler = cProfile.Profile() if profile else None
            laps = []
            for number in range(WARMUP_BATCHES, WARMUP_BATCHES + batches):
                requests, now = batch(number), utcnow()
                if profiler is not None:
                    profiler.enable()
                started = time.thread_time()
                write(requests, now)
                laps.append(time.thread_time() - started)
                if profiler is not None:
                    profiler.disable()
            laps.sort()
            print(f"write_batch, {pairs} direct messages per batch, synchronous={synchronous}: thread CPU per "
                  f"batch min {laps[0] * 1000:.2f} / p25 {laps[len(laps) // 4] * 1000:.2f} / median "
                  f"{laps[len(laps) // 2] * 1000:.2f} ms over {batches} batches")
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        finally:
            await container.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100, help="direct conversations, one message each per batch")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured batches")
    args = parser.parse_args()
    asyncio.run(run(args.pairs, args.batches, args.synchronous, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
