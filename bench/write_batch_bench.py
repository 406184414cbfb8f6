"""CPU of one group-commit transaction on SQLite: ``write_batch`` for a batch of direct
messages (one per conversation, as at saturation), run on this thread.

The figure is the thread's own CPU time per batch (``time.thread_time``: neither the fsync's
wait nor other processes count), min / p25 / median over ``--batches``. On a shared machine
the minimum moves least. To compare two versions, run the same command with
``PYTHONPATH=<checkout>/src`` for each, alternately, minutes apart.

    python bench/write_batch_bench.py [--pairs 100] [--batches 50] [--synchronous FULL]
                                      [--varied] [--profile]

``--varied``: batches of 1 to ``--pairs`` messages (the same sizes, in the same order, on
every run), as under load, where each size is a statement text of its own wherever a list
is rendered into the SQL; the figure is then per message.

``--database postgres`` (a database created for the run on ``PARLEY_TEST_DATABASE_URL``'s
server, dropped after it): each batch through ``Database.write`` as the group commit runs
it, and the figures are this process's CPU time and the wall time per message (the driver
is asynchronous: the work is not on one thread); always with ``--varied``'s sizes.

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from databases import bench_settings, make_database  # noqa: E402

from parley.clock import utcnow  # noqa: E402
from parley.container import build_container  # noqa: E402
from parley.services.message_batch import write_batch  # noqa: E402
from parley.services.send_admission import SendRequest  # noqa: E402
from parley.store import migrate  # noqa: E402
from parley.store.db import Database  # noqa: E402

WARMUP_BATCHES = 3


async def run(pairs: int, batches: int, synchronous: str, profile: bool, varied: bool, database: str) -> None:
    with tempfile.TemporaryDirectory(prefix="parley-write-batch-") as tmp:
        directory = Path(tmp)
        url, drop = await make_database(database, directory, "write_batch")
        container = build_container(bench_settings(directory / "data", url, sqlite_synchronous=synchronous))
        varied = varied or database != "sqlite"
        try:
            await migrate.upgrade(container.db)
            users = [await container.accounts.register(f"user{i}", "bench passphrase 1") for i in range(2 * pairs)]
            conversations = [
                (await container.conversations.create_direct(users[2 * i].id, users[2 * i + 1].id))[0].shared.id
                for i in range(pairs)
            ]

            sizes = random.Random(23)

            def batch(number: int) -> list[SendRequest]:
                size = sizes.randint(1, pairs) if varied else pairs
                return [
                    SendRequest(sender_id=users[2 * i].id, conversation_id=conversations[i],
                                content=f"message {number} " + "x" * 80, client_msg_id=f"b{number}.{i}")
                    for i in range(size)
                ]

            if database != "sqlite":
                await write_through_database(container.db, batch, batches)
                return
            # On a SQLite file: the writer thread's engine (store/db.py), run here instead.
            writer = container.db.sync_engines()[1]

            def write(requests: list[SendRequest], now: datetime) -> None:
                with writer.begin() as conn:
                    write_batch(conn, requests, now, None)

            for number in range(WARMUP_BATCHES):
                write(batch(number), utcnow())
            profiler = cProfile.Profile() if profile else None
            laps = []
            written = 0
            for number in range(WARMUP_BATCHES, WARMUP_BATCHES + batches):
                requests, now = batch(number), utcnow()
                written += len(requests)
                if profiler is not None:
                    profiler.enable()
                started = time.thread_time()
                write(requests, now)
                laps.append(time.thread_time() - started)
                if profiler is not None:
                    profiler.disable()
            laps.sort()
            if varied:
                print(f"write_batch, 1 to {pairs} direct messages per batch, synchronous={synchronous}: thread "
                      f"CPU per message {sum(laps) / written * 1e6:.1f} us ({written} messages in {batches} batches)")
            else:
                print(f"write_batch, {pairs} direct messages per batch, synchronous={synchronous}: thread CPU per "
                      f"batch min {laps[0] * 1000:.2f} / p25 {laps[len(laps) // 4] * 1000:.2f} / median "
                      f"{laps[len(laps) // 2] * 1000:.2f} ms over {batches} batches")
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        finally:
            await container.close()
            if drop is not None:
                await drop()


async def write_through_database(db: Database, batch: Callable[[int], list[SendRequest]], batches: int) -> None:
    for number in range(WARMUP_BATCHES):
        await db.write(write_batch, batch(number), utcnow(), None)
    written, wall, cpu = 0, time.perf_counter(), time.process_time()
    for number in range(WARMUP_BATCHES, WARMUP_BATCHES + batches):
        requests = batch(number)
        written += len(requests)
        await db.write(write_batch, requests, utcnow(), None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"write_batch through Database.write on {db.dialect}, 1 to N direct messages per batch: per message "
          f"{cpu / written * 1e6:.1f} us of this process's CPU, {wall / written * 1e6:.1f} us of wall time "
          f"({written} messages in {batches} batches)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100, help="direct conversations, one message each per batch")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured batches")
    parser.add_argument("--varied", action="store_true", help="batches of 1 to --pairs messages")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.pairs, args.batches, args.synchronous, args.profile, args.varied, args.database))
    return 0


if __name__ == "__main__":
    sys.exit(main())
