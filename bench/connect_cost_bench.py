"""What one connect + identify costs the server, Parley against the floor, split by thread.

1,000 users (on Parley in teams of ten, as the connections scenario has them) connect at
once, 128 at a time, and close; that is repeated ``--rounds`` times on each server. Only
the connect phases are counted: the server's CPU over them per connection, and on Parley
which thread spent it — the event loop, or the database threads reading the identifies
and the ``ready``s in batches. Each run measures the floor and Parley one after the other,
so each run's ratio (floor CPU per connect ÷ Parley's) is of the same machine state;
reported as min / median / max over ``--runs``.

    python bench/connect_cost_bench.py [--runs 3] [--rounds 4] [--users 1000] [--json PATH]

Not a test: nothing here asserts a time. Every run is bounded and stops its servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_targets import FloorTarget, ParleyTarget  # noqa: E402
from loadgen import LoadGenerator  # noqa: E402
from measured import NothingMeasured, ratio, spread  # noqa: E402
from procs import Server, floor_server, parley_server, plan_pinning, thread_cpu_seconds  # noqa: E402

TEAM = 10
CONCURRENCY = 128


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id."""
    found: dict[int, float] = {}
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        try:
            found[tid] = thread_cpu_seconds(pid, tid)
        except OSError:  # the thread ended meanwhile
            continue
    return found


@dataclass(frozen=True, slots=True)
class ConnectCost:
    connects: int
    failed: int
    seconds: float  # wall time of the connect phases
    loop_cpu: float  # the main thread (the event loop), CPU seconds
    other_cpu: float  # every other thread (database threads), CPU seconds

    def per_connect_ms(self, cpu: float) -> float:
        if self.connects <= 0:
            raise NothingMeasured("no connection identified: nothing to divide by")
        return cpu / self.connects * 1000

    def rate(self) -> float:
        """Connections identified per second of the connect phases."""
        if self.connects <= 0 or self.seconds <= 0:
            raise NothingMeasured("no connection identified, or in no time: no rate")
        return self.connects / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "connects": self.connects, "failed": self.failed,
            "connects_per_s": round(self.rate(), 1),
            "cpu_ms": round(self.per_connect_ms(self.loop_cpu + self.other_cpu), 3),
            "event_loop_ms": round(self.per_connect_ms(self.loop_cpu), 3),
            "other_threads_ms": round(self.per_connect_ms(self.other_cpu), 3),
        }  # fmt: skip


async def measure(kind: str, workdir: Path, users: int, rounds: int) -> ConnectCost:
    pinning = plan_pinning()
    server: Server = (parley_server if kind == "parley" else floor_server)(workdir, pinning.server).start()
    target = ParleyTarget(server, "cc") if kind == "parley" else FloorTarget(server, "cc")
    load: LoadGenerator | None = None
    try:
        await target.setup_users(users)
        if isinstance(target, ParleyTarget):
            limit = asyncio.Semaphore(8)

            async def team(members: list[int]) -> None:
                async with limit:
                    await target.group(members, f"team {members[0]}")

            firsts = range(0, users - 1, TEAM)
            await asyncio.gather(*(team(list(range(f, min(f + TEAM, users)))) for f in firsts))
        keyed = [(key, target.tokens[key]) for key in range(users)]
        load = LoadGenerator(server.ws_url, 2, deflate=False, cores=pinning.load)
        connects = failed = 0
        seconds = loop_cpu = other_cpu = 0.0
        for _ in range(rounds):
            before = thread_cpu(server.pid)
            outcome = await load.connect(keyed, concurrency=CONCURRENCY, timeout=60)
            after = thread_cpu(server.pid)
            for tid, cpu in after.items():
                spent = cpu - before.get(tid, 0.0)
                if tid == server.pid:
                    loop_cpu += spent
                else:
                    other_cpu += spent
            connects += outcome["ok"]
            failed += outcome["failed"]
            seconds += outcome["seconds"]
            await load.close_all()
        return ConnectCost(connects, failed, seconds, loop_cpu, other_cpu)
    finally:
        if load is not None:
            load.stop()
        server.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="parley-connect-bench-") as scratch:
        for number in range(args.runs):
            floor = await measure("floor", Path(scratch) / f"floor-{number}", args.users, args.rounds)
            parley = await measure("parley", Path(scratch) / f"parley-{number}", args.users, args.rounds)
            cpu_ratio = ratio(floor.per_connect_ms(floor.loop_cpu + floor.other_cpu),
                              parley.per_connect_ms(parley.loop_cpu + parley.other_cpu), "connect CPU")
            rate_ratio = ratio(parley.rate(), floor.rate(), "connect rate")
            runs.append({"floor": floor.as_dict(), "parley": parley.as_dict(),
                         "cpu_ratio": round(cpu_ratio, 3), "rate_ratio": round(rate_ratio, 3)})  # fmt: skip
            print(f"run {number + 1}: parley {parley.as_dict()} floor {floor.as_dict()} "
                  f"CPU ratio {cpu_ratio:.2f}, rate ratio {rate_ratio:.2f}", flush=True)  # fmt: skip
    return {
        "users": args.users, "rounds": args.rounds, "runs": runs,
        "cpu_ratio": spread([r["cpu_ratio"] for r in runs]).as_dict(),
        "rate_ratio": spread([r["rate_ratio"] for r in runs]).as_dict(),
    }  # fmt: skip


def table(result: dict[str, Any]) -> list[str]:
    rows = [
        f"### connect + identify: {result['users']:,} users, {result['rounds']} rounds a run, "
        f"server CPU per connection",
        "",
        "| run | Parley: event loop | Parley: other threads | Parley | floor | floor ÷ Parley (CPU) "
        "| Parley ÷ floor (rate) |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, r in enumerate(result["runs"], 1):
        p, f = r["parley"], r["floor"]
        rows.append(f"| {number} | {p['event_loop_ms']:.3f} ms | {p['other_threads_ms']:.3f} ms "
                    f"| {p['cpu_ms']:.3f} ms | {f['cpu_ms']:.3f} ms | {r['cpu_ratio']:.2f} "
                    f"| {r['rate_ratio']:.2f} |")  # fmt: skip
    c, r = result["cpu_ratio"], result["rate_ratio"]
    rows += ["", f"min / median / max: CPU {c['min']:.2f} / {c['median']:.2f} / {c['max']:.2f}, "
                 f"rate {r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f}"]  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print("\n".join(table(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
