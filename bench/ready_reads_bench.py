"""What a connection's ``identify`` costs the database: the token checked with the
conversations to subscribe to (``Auth.identify``: one hand-off), then everything ``ready``
carries (``RealtimeReads.ready``: one more), as a ratio to a primary-key lookup through the
same hand-off, measured in the same run on the same data.

Each user is in a team of ten (a group with a few messages, one with a reaction and a
reply) and has three direct conversations with a message each, and one accepted contact: a
small team's ``ready``. Calls run one at a time, so the process CPU a call used is its
cost (a reconnect storm pays it once per client).

    python bench/ready_reads_bench.py [--database sqlite|postgres|both] [--users 60]
                                      [--repeat 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import bench_container, database_kinds, run_each, write_results  # noqa: E402

from parley.services.auth import ClientInfo, Principal
from parley.services.realtime_reads import RealtimeReads, member_conversation_ids_of
from parley.store.tables.accounts import users as users_table

TEAM = 10
DIRECTS = 3
PASSWORD = "bench passphrase 1"


async def _claimed(_: Principal) -> None:
    return None


def _lookup(conn: Connection, user_id: str) -> str:
    return str(conn.execute(select(users_table.c.id).where(users_table.c.id == user_id)).scalar_one())


async def _laps(call: Callable[[str], Awaitable[Any]], keys: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Wall and process-CPU milliseconds of each call, every key ``rounds`` times, after a
    warm-up round (statement caches)."""
    for key in keys:
        await call(key)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for key in keys:
            began, began_cpu = time.perf_counter(), time.process_time()
            await call(key)
            wall.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
    return wall, cpu


async def bench(kind: str, count: int, rounds: int, directory: Path) -> dict[str, Any]:
    name = f"parley_ready_bench_{kind}_{os.getpid()}"
    async with bench_container(kind, directory, name, database_pool_size=4) as container:
        people = [await container.accounts.register(f"ready{n}", PASSWORD) for n in range(count)]
        tokens: dict[str, str] = {}
        for user in people:
            pair, _ = await container.auth.login(user.username, PASSWORD, ClientInfo())
            tokens[user.id] = pair.access_token
        for first in range(0, count, TEAM):
            team = people[first : first + TEAM]
            group = await container.conversations.create_group(team[0].id, f"team {first}", [u.id for u in team[1:]])
            sent = [await container.messages.send(u.id, group.id, f"hello from {u.username}") for u in team[:3]]
            await container.reactions.add(team[1].id, sent[0].message.id, "👍")
            await container.messages.send(team[2].id, group.id, "a reply", reply_to_id=sent[0].message.id)
        for index, user in enumerate(people):
            for step in range(1, DIRECTS + 1):
                other = people[(index + step * 7) % count]
                direct, _ = await container.conversations.create_direct(user.id, other.id)
                await container.messages.send(user.id, direct.id, "a direct word")
        for index, user in enumerate(people):
            other = people[(index + 1) % count]
            await container.contacts.request(user.id, other.id)
            await container.contacts.accept(other.id, user.id)
        reads = RealtimeReads(container.db, container.attachments.urls)
        ids = [user.id for user in people]

        async def identify(user_id: str) -> None:
            await container.auth.identify(tokens[user_id], _claimed, member_conversation_ids_of)

        async def ready(user_id: str) -> None:
            await reads.ready(user_id)

        async def lookup(user_id: str) -> None:
            await container.db.read_sync(_lookup, user_id)

        base_wall, base_cpu = await _laps(lookup, ids, rounds)
        rows = []
        steps = (("identify: token, session, conversation ids", identify), ("ready: everything it carries", ready))
        for label, call in steps:
            wall, cpu = await _laps(call, ids, rounds)
            rows.append({
                "step": label,
                "wall_ms": round(statistics.median(wall), 3),
                "cpu_ms": round(statistics.median(cpu), 3),
                "ratio": round(statistics.median(cpu) / statistics.median(base_cpu), 2),
            })
        if not rows or any(row["cpu_ms"] <= 0 for row in rows):
            raise SystemExit("measured nothing")
        return {
            "database": kind,
            "users": count,
            "calls_per_step": len(ids) * rounds,
            "baseline_wall_ms": round(statistics.median(base_wall), 3),
            "baseline_cpu_ms": round(statistics.median(base_cpu), 3),
            "steps": rows,
        }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"\n### identify and ready reads: {result['database']}, {result['users']} users, "
        f"{result['calls_per_step']} calls a step\n",
        f"Baseline, a primary-key lookup through the same hand-off: {result['baseline_cpu_ms']:.3f} ms CPU "
        f"({result['baseline_wall_ms']:.3f} ms wall)\n",
        "| step | median ms wall | median ms CPU | CPU × baseline |",
        "|---|---|---|---|",
    ]
    for row in result["steps"]:
        lines.append(f"| {row['step']} | {row['wall_ms']:.3f} | {row['cpu_ms']:.3f} | {row['ratio']:g}× |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every user")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    benches = [
        functools.partial(bench, kind, args.users, args.repeat) for kind in database_kinds(args.database)
    ]
    write_results(args.json, "ready_reads", asyncio.run(run_each(benches, table)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
