"""One SQLite write transaction two ways: through the async driver, and through
``Database.write`` (the whole transaction on the writer thread in one hand-off).

The transaction is shaped like a group-commit batch: six indexed reads and a two-row
insert. The async driver hands each statement to its thread three or four times (cursor,
execute, fetch, close); ``Database.write`` hands the whole transaction over once. Reported:
CPU and wall time per transaction of this process, each way, and their ratio — measured
alternately in the same run, so the ratio survives a noisy machine.

    python bench/sqlite_handoff_bench.py [--transactions 1500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from parley.store.db import Database

_READS = [text(f"SELECT id, body FROM notes WHERE id = :id /* {n} */") for n in range(6)]
_INSERT = text("INSERT INTO notes (body) VALUES (:body)")
_ROWS = [{"body": "x" * 100}, {"body": "y" * 100}]


def batch_in_place(conn: Connection, key: int) -> None:
    for read in _READS:
        conn.execute(read, {"id": key}).all()
    conn.execute(_INSERT, _ROWS)


async def batch_through_driver(conn: AsyncConnection, key: int) -> None:
    for read in _READS:
        (await conn.execute(read, {"id": key})).all()
    await conn.execute(_INSERT, _ROWS)


async def measure(db: Database, way: str, transactions: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for key in range(transactions):
        if way == "driver":
            async with db.transaction() as conn:
                await batch_through_driver(conn, key)
        else:
            await db.write(batch_in_place, key)
    return {
        "wall_ms": 1e3 * (time.perf_counter() - wall) / transactions,
        "cpu_ms": 1e3 * (time.process_time() - cpu) / transactions,
    }


async def main(transactions: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        db = Database(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        try:
            async with db.transaction() as conn:
                await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
            runs: dict[str, list[dict[str, float]]] = {"driver": [], "write": []}
            for _ in range(rounds):
                for way in runs:
                    runs[way].append(await measure(db, way, transactions))
        finally:
            await db.dispose()
    best = {way: min(r, key=lambda m: m["cpu_ms"]) for way, r in runs.items()}
    return {
        "transactions_per_round": transactions,
        "rounds": rounds,
        "best": best,
        "cpu_ratio_driver_over_write": best["driver"]["cpu_ms"] / best["write"]["cpu_ms"],
        "wall_ratio_driver_over_write": best["driver"]["wall_ms"] / best["write"]["wall_ms"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    print(json.dumps(asyncio.run(main(options.transactions, options.rounds)), indent=2))
