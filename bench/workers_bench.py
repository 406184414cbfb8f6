"""Two worker processes against one, on one machine: ``parley serve --workers 2`` and
``parley serve --workers 1``, both on PostgreSQL and Redis (the configuration several workers
need), driven by the same closed-loop probes of the same load generator (``loadgen.py``).

The workload, the same on both servers, in three conversation shapes, each with 100 senders
keeping eight messages in flight (``--inflight``; ``bench/gateway_step.py``'s closed-loop probe):

- **direct messages**: 100 pairs, one side of each sending;
- **groups of 10**: ten groups of ten, every member sending into their own group;
- **a group of 100**: one group, every member sending.

Each repetition measures one worker and then two workers seconds apart; the figure is the
ratio two / one of deliveries/s, as min / median / max over the repetitions. A probe that
counted nothing raises (``measured.NothingMeasured``) instead of printing a ratio.

On a 2-core machine nothing can be pinned apart: the servers and the load generator share
both cores (``--load-processes``, two by default). The load takes CPU the second worker
would use, so each row also reports the server's CPU (all its processes, in cores) and the
load's, and the ratio per second of server CPU — what two workers gain per core they get.

Both servers stay up for the whole run (each with its own database and Redis prefix), their
users connected; the idle one costs its heartbeats only. How the connections spread over
the workers (uvicorn's workers share one listening socket: whichever worker accepts first
takes the connection) is read from ``/proc`` and reported.

    python bench/workers_bench.py [--mode short|full] [--workers 2] [--sizes dm,10,100]
                                  [--profile SIZE] [--json PATH]

``--profile SIZE`` runs one more probe of that size on each server with py-spy recording
every worker; the top functions of each go into the result (and the raw stacks into
``bench/results/``).

Not a test: nothing here asserts a time. Every server is stopped, every database dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_multinode import PG_ADMIN, REDIS_URL, _tcp_answers  # noqa: E402
from gateway_output import RESULTS_DIR, log, write_result  # noqa: E402
from gateway_profile import top_functions  # noqa: E402
from gateway_step import Step, describe, run_step  # noqa: E402
from gateway_targets import ParleyTarget  # noqa: E402
from loadgen import LoadGenerator  # noqa: E402
from measured import NothingMeasured, ratio, spread  # noqa: E402
from procs import (  # noqa: E402
    Sample,
    Server,
    machine_sample,
    parley_server,
    raise_open_files_limit,
    sample,
)

SENDERS = 100  # in every shape: 100 senders, INFLIGHT messages in flight each
# Messages each sender keeps in flight. Two (as the gateway scenario's probes) left one
# worker's event loop at 0.7 of a core and the machine at one core of two: the probe was
# bound by its own round trips, not by the server. Eight fill one worker (0.85-0.9 of a
# core, batches at the group commit's 256), so the ratio compares two saturated servers.
INFLIGHT = 8


@dataclass(frozen=True)
class Plan:
    repeats: int
    probe_seconds: float  # a probe's window at least (three first rounds, at most max_window)
    warmup: float
    max_window: float
    settle: float
    inflight: int = INFLIGHT


PLANS = {
    "smoke": Plan(repeats=1, probe_seconds=2.0, warmup=0.3, max_window=6.0, settle=1.0),
    "short": Plan(repeats=3, probe_seconds=2.0, warmup=0.5, max_window=4.0, settle=1.0),
    "full": Plan(repeats=3, probe_seconds=4.0, warmup=1.0, max_window=8.0, settle=2.0),
}


def redis_answers() -> bool:
    return _tcp_answers(REDIS_URL)


class WorkersServer(Server):
    """``parley serve --workers N``: uvicorn's supervisor and its N worker processes. CPU is
    summed over all of them (with one worker uvicorn serves in the supervisor's process)."""

    # Each worker is a fresh interpreter importing Parley: on a loaded machine that alone
    # took 18 s, and the supervisor starts the workers one after the other.
    startup_timeout = 240.0

    def __init__(self, count: int, *args: Any) -> None:
        super().__init__(*args)
        self.count = count

    def workers(self) -> list[int]:
        children = _children(self.pid)
        return children or [self.pid]

    def start(self) -> WorkersServer:
        """Started once *every* worker serves: the first one up answers ``/healthz`` and
        would take every connection. A worker serves once its lifespan has started the bus,
        so each one holding a connection to Redis is the sign."""
        super().start()
        redis_port = urlsplit(REDIS_URL).port or 6379
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            pids = self.workers() if self.count > 1 else [self.pid]
            if len(pids) == self.count and all(
                tcp_connections(pid, remote_port=redis_port) for pid in pids
            ):
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.count} workers did not all start in time:\n{self.log()[-3000:]}")

    def sample(self) -> Sample:
        samples = [sample(pid) for pid in {self.pid, *_children(self.pid)}]
        return Sample(
            at=max(s.at for s in samples),
            cpu_seconds=sum(s.cpu_seconds for s in samples),
            rss_bytes=sum(s.rss_bytes for s in samples),
        )


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    # uvicorn's multiprocessing resource tracker is a child too; it holds no socket.
    return sorted(p for p in found if "resource_tracker" not in _cmdline(p))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _established(*, local_port: int | None = None, remote_port: int | None = None) -> set[str]:
    """Socket inodes of established TCP connections with that local or remote port."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "01":  # 01: ESTABLISHED
                continue
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if (local_port is None or local == local_port) and (remote_port is None or remote == remote_port):
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


def tcp_connections(pid: int, *, local_port: int | None = None, remote_port: int | None = None) -> int:
    """Established TCP connections of ``pid`` with that local or remote port."""
    return len(_socket_inodes(pid) & _established(local_port=local_port, remote_port=remote_port))


def connections_per_worker(port: int, pids: list[int]) -> dict[int, int]:
    """Client connections to ``port`` held by each of ``pids``."""
    return {pid: tcp_connections(pid, local_port=port) for pid in pids}


@dataclass
class WorkerStand:
    workers: int
    server: WorkersServer
    target: ParleyTarget
    load: LoadGenerator
    database: str

    @property
    def label(self) -> str:
        return f"{self.workers}w"


async def open_workers_stand(
    workers: int, workdir: Path, users: int, load_processes: int, admin: Any
) -> WorkerStand:
    database = f"parley_bench_workers{workers}_{os.getpid()}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
    await admin.execute(f'CREATE DATABASE "{database}"')
    base = parley_server(
        workdir / f"workers-{workers}", None,
        PARLEY_DATABASE_URL=PG_ADMIN.rsplit("/", 1)[0] + f"/{database}",
        PARLEY_REDIS_URL=REDIS_URL,
        PARLEY_REDIS_KEY_PREFIX=f"parley-bench-workers{workers}-{os.getpid()}",
        PARLEY_WORKERS=str(workers),
    )
    server = WorkersServer(workers, base.name, base.argv, base.port, base.env, base.workdir, None)
    await asyncio.to_thread(server.start)
    try:
        target = ParleyTarget(server, f"w{workers}_")
        seconds = await target.setup_users(users)
        load = LoadGenerator(server.ws_url, load_processes, deflate=True, cores=None)
        connected = await load.connect(sorted(target.tokens.items()), concurrency=64)
        if connected["failed"]:
            load.stop()
            raise RuntimeError(f"{workers} workers: {connected['failed']} connections failed: "
                               f"{connected['last_error']}")
        log(f"{workers} worker(s): {users} users in {seconds:.1f} s, {connected['ok']} connections ready "
            f"in {connected['seconds']:.1f} s; per worker {connections_per_worker(server.port, server.workers())}")
    except BaseException:
        server.stop()
        raise
    return WorkerStand(workers, server, target, load, database)


async def conversations(stand: WorkerStand, shape: str) -> tuple[list[tuple[int, str]], int]:
    """(sender key, conversation) for the shape's 100 senders, and deliveries per message."""
    if shape == "dm":
        pairs = [(2 * i, 2 * i + 1) for i in range(SENDERS)]
        ids = await stand.target.direct(pairs)
        return [(a, c) for (a, _), c in zip(pairs, ids, strict=True)], 2
    size = int(shape)
    senders: list[tuple[int, str]] = []
    for first in range(0, SENDERS, size):
        members = list(range(first, first + size))
        conversation = await stand.target.group(members, f"workers {size} from {first}")
        senders += [(key, conversation) for key in members]
    return senders, size


async def probe(stand: WorkerStand, senders: list[tuple[int, str]], shape: str, fanout: int,
                plan: Plan, run: int, during: Any = None) -> Step:
    step = await run_step(
        stand.server, stand.load, senders, target=stand.label, size=shape, fanout=fanout,
        rate=math.inf, duration=plan.probe_seconds, inflight=plan.inflight, settle=plan.settle,
        content_chars=100, warmup=plan.warmup, max_window=plan.max_window, run=run, during=during,
    )
    log(describe(step))
    return step


async def profile(stand: WorkerStand, senders: list[tuple[int, str]], shape: str, fanout: int,
                  plan: Plan) -> dict[str, Any]:
    """One more probe with py-spy recording each worker process."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found (pip install py-spy): no profile")
        return {}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    seconds = max(2, int(plan.probe_seconds))
    raws = {pid: RESULTS_DIR / f"profile-workers{stand.workers}-{shape}-{pid}.txt" for pid in stand.server.workers()}

    async def record() -> None:
        await asyncio.sleep(plan.warmup + 0.5)
        await asyncio.gather(*(asyncio.to_thread(
            subprocess.run,
            [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
             "--threads", "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 30, check=False,
        ) for pid, raw in raws.items()))

    profiled = dict(plan.__dict__, probe_seconds=seconds + plan.warmup + 1)
    step = await probe(stand, senders, shape, fanout, Plan(**profiled), run=0, during=record)
    return {"step": vars(step), "workers": {
        str(pid): {"raw": str(raw), "top": top_functions(raw)} for pid, raw in raws.items() if raw.exists()
    }}


def _figures(probes: dict[int, Step], runs: list[int], cores: list[dict[str, float]]) -> dict[str, Any]:
    return {
        # Medians over the runs of what the whole machine, PostgreSQL and Redis kept busy.
        "machine_cores": {name: spread([c[name] for c in cores]).median for name in cores[0]},
        "deliveries_per_s": spread([probes[r].deliveries_per_s for r in runs]).as_dict(),
        "msgs_per_s": spread([probes[r].accepted_per_s for r in runs]).as_dict(),
        "server_cpu": spread([probes[r].server_cpu for r in runs]).as_dict(),
        "load_cpu": spread([probes[r].load_cpu for r in runs]).as_dict(),
        "p50_ms": spread([probes[r].latency["p50_ms"] or 0.0 for r in runs]).median,
        "p99_ms": spread([probes[r].latency["p99_ms"] or 0.0 for r in runs]).median,
    }


def summarise(
    steps: list[Step], workers: int, machine: dict[tuple[str, str, int], dict[str, float]]
) -> list[dict[str, Any]]:
    """Per shape: two / one deliveries/s as min / median / max over the repetitions (each
    N-worker probe against the one-worker probe of the same repetition)."""
    rows = []
    many = f"{workers}w"
    for shape in dict.fromkeys(s.size for s in steps):
        one = {s.run: s for s in steps if s.size == shape and s.target == "1w" and s.run > 0}
        more = {s.run: s for s in steps if s.size == shape and s.target == many and s.run > 0}
        runs = sorted(one.keys() & more.keys())
        if not runs:
            raise NothingMeasured(f"{shape}: no pair of one-worker and {workers}-worker probes")
        ratios = spread([ratio(more[r].deliveries_per_s, one[r].deliveries_per_s,
                               f"{shape} run {r}: {workers} workers / one") for r in runs])
        per_cpu = [
            (more[r].deliveries_per_s / more[r].server_cpu) / (one[r].deliveries_per_s / one[r].server_cpu)
            for r in runs if more[r].server_cpu > 0 and one[r].server_cpu > 0
        ]

        rows.append({
            "size": shape,
            "fanout": steps[[s.size for s in steps].index(shape)].fanout,
            "runs": len(runs),
            "one": _figures(one, runs, [machine[("1w", shape, r)] for r in runs]),
            "many": _figures(more, runs, [machine[(many, shape, r)] for r in runs]),
            "ratio": ratios.as_dict(),
            "ratios": [round(more[r].deliveries_per_s / one[r].deliveries_per_s, 3) for r in runs],
            "ratio_per_server_cpu": spread(per_cpu).as_dict() if per_cpu else None,
        })
    return rows


async def run(mode: str, workers: int, shapes: list[str], load_processes: int,
              profile_shape: str | None, keep_logs: bool = False, inflight: int = INFLIGHT) -> dict[str, Any]:
    import asyncpg

    plan = dataclasses.replace(PLANS[mode], inflight=inflight)
    raise_open_files_limit()
    users = SENDERS * 2  # direct messages need 100 pairs; the groups use the first 100
    admin = await asyncpg.connect(PG_ADMIN)
    stands: list[WorkerStand] = []
    steps: list[Step] = []
    profiles: dict[str, Any] = {}
    spreads: dict[str, dict[int, int]] = {}
    # (stand, shape, repetition) → cores busy during that probe: the machine, PostgreSQL, Redis
    machine: dict[tuple[str, str, int], dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="parley-workers-bench-") as tmp:
            try:
                for count in (1, workers):
                    stands.append(await open_workers_stand(count, Path(tmp), users, load_processes, admin))
                for stand in stands:
                    spreads[stand.label] = {
                        str(pid): n for pid, n in
                        connections_per_worker(stand.server.port, stand.server.workers()).items()
                    }
                for shape in shapes:
                    plans = [(stand, *(await conversations(stand, shape))) for stand in stands]
                    await asyncio.sleep(0.5)  # conversation.created events settle
                    for repetition in range(1, plan.repeats + 1):
                        for stand, senders, fanout in plans:
                            before = machine_sample()
                            steps.append(await probe(stand, senders, shape, fanout, plan, repetition))
                            cores = machine_sample().cores_since(before)
                            machine[(stand.label, shape, repetition)] = cores
                            log(f"{stand.label:<9} {shape:<7} probe #{repetition}: the machine "
                                f"{cores['machine']:.2f} cores busy of {os.cpu_count()}, PostgreSQL "
                                f"{cores['postgres']:.2f}, Redis {cores['redis-server']:.2f} (the whole probe)")
                    if profile_shape == shape:
                        for stand, senders, fanout in plans:
                            profiles[stand.label] = await profile(stand, senders, shape, fanout, plan)
            finally:
                for stand in stands:
                    stand.load.stop()
                    stand.server.stop()
                if keep_logs:
                    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                    for log_file in Path(tmp).rglob("*.log"):
                        shutil.copy(log_file, RESULTS_DIR / f"workers-{log_file.parent.name}-{log_file.name}")
    finally:
        for stand in stands:
            await admin.execute(f'DROP DATABASE IF EXISTS "{stand.database}" WITH (FORCE)')
        await admin.close()
    summary = summarise(steps, workers, machine)
    for row in summary:
        r = row["ratio"]
        log(f"{workers} workers / one, {row['size']}: {r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f} "
            f"(deliveries/s {row['one']['deliveries_per_s']['median']:.0f} → "
            f"{row['many']['deliveries_per_s']['median']:.0f}; server CPU {row['one']['server_cpu']['median']:.2f} → "
            f"{row['many']['server_cpu']['median']:.2f} cores; load CPU {row['one']['load_cpu']['median']:.2f} → "
            f"{row['many']['load_cpu']['median']:.2f}; the machine {row['one']['machine_cores']['machine']:.2f} → "
            f"{row['many']['machine_cores']['machine']:.2f} cores busy, PostgreSQL "
            f"{row['one']['machine_cores']['postgres']:.2f} → {row['many']['machine_cores']['postgres']:.2f})")
    return {
        "benchmark": "workers",
        "mode": mode,
        "workers": workers,
        "cores": os.cpu_count(),
        "pinning": "none: the servers and the load generator share every core",
        "load_processes": load_processes,
        "senders": SENDERS,
        "inflight": plan.inflight,
        "connections_per_worker": spreads,
        "summary": summary,
        "steps": [vars(s) for s in steps],
        "profiles": profiles,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(PLANS), default="short")
    parser.add_argument("--workers", type=int, default=2, help="compared with one worker")
    parser.add_argument("--sizes", default="dm,10,100", help="shapes: dm and group sizes dividing 100")
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--inflight", type=int, default=INFLIGHT, help="messages in flight per sender")
    parser.add_argument("--profile", help="shape to profile each worker in with py-spy (e.g. 100)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-logs", action="store_true", help="copy the servers' logs to bench/results/")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    shapes = args.sizes.split(",")
    for shape in shapes:
        if shape != "dm" and (not shape.isdigit() or SENDERS % int(shape)):
            raise SystemExit(f"shape {shape!r}: dm or a group size that divides {SENDERS}")
    result = asyncio.run(run(args.mode, args.workers, shapes, args.load_processes, args.profile,
                             args.keep_logs, args.inflight))
    write_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
