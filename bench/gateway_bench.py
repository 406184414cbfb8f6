"""Gateway benchmarks — fan-out, connections, reconnect storm — Parley against the floor.

Every figure comes from one run on one machine: Parley (``python -m parley serve``) and the
floor (``bench/floor_server.py``, a bare broadcast server on the same stack) are driven by
the same load generator (``bench/loadgen.py``) in the same run, the server pinned to one
core and the load to the others, over loopback only.

- **fan-out**, per group size (direct messages, then groups of 10 / 100 / 300 / 1,000):
  a closed-loop probe finds saturation (each sender keeps a few messages in flight and
  sends the next as soon as one is acknowledged); then open-loop steps at fixed fractions
  of that rate give latency against rate. The floor runs the same absolute rates (latency
  at equal load) and its own probe (its saturation).
- **connections**: as many idle connections as the mode allows (10,000 in ``full``),
  opened in four chunks: RSS against connections, connect rate, idle CPU (heartbeats).
- **reconnect storm**: the server restarts (SIGTERM: every session gets 1001) and N clients
  reconnect at once: the time until every one has identified and received ``ready``.

    python bench/gateway_bench.py [--mode short|full] [--scenarios fanout,connections,storm]
                                  [--processes N] [--no-deflate] [--json PATH]
                                  [--profile SIZE] [--profile-seconds 15]

Not a test: nothing here asserts a time. Every run is bounded and stops its servers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadGenerator, merge, summary  # noqa: E402
from procs import (  # noqa: E402
    Pinning,
    Server,
    cpu_share,
    floor_server,
    parley_server,
    pin_self,
    plan_pinning,
    raise_open_files_limit,
    sample,
)

PASSWORD = "bench passphrase 1"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Mode:
    sizes: tuple[str | int, ...]
    pool: int  # users connected for the fan-out
    dm_pairs: int
    step_seconds: float
    probe_seconds: float
    settle_seconds: float
    ladder: tuple[float, ...]  # fractions of Parley's probe rate
    group_senders: int
    probe_inflight: int
    content_chars: int
    connection_users: int
    devices: int  # connections per user in the connections scenario
    storm_clients: int
    idle_seconds: float
    multinode_rates: tuple[float, ...] = (20.0,)


MODES = {
    "short": Mode(
        sizes=("dm", 10, 100, 1000),
        pool=1000,
        dm_pairs=100,
        step_seconds=1.0,
        probe_seconds=1.5,
        settle_seconds=2.0,
        ladder=(0.25, 0.5, 1.0),
        group_senders=100,
        probe_inflight=2,
        content_chars=100,
        connection_users=1000,
        devices=2,
        storm_clients=1000,
        idle_seconds=3.0,
    ),
    "smoke": Mode(
        sizes=("dm", 10),
        pool=40,
        dm_pairs=10,
        step_seconds=0.5,
        probe_seconds=0.5,
        settle_seconds=1.0,
        ladder=(0.5,),
        group_senders=4,
        probe_inflight=2,
        content_chars=100,
        connection_users=40,
        devices=2,
        storm_clients=40,
        idle_seconds=0.5,
    ),
    "full": Mode(
        sizes=("dm", 10, 100, 300, 1000),
        pool=1000,
        dm_pairs=250,
        step_seconds=3.0,
        probe_seconds=4.0,
        settle_seconds=5.0,
        ladder=(0.1, 0.25, 0.5, 0.75, 1.0, 1.25),
        group_senders=100,
        probe_inflight=2,
        content_chars=100,
        connection_users=5000,
        devices=2,
        storm_clients=5000,
        idle_seconds=10.0,
        multinode_rates=(10.0, 50.0, 100.0),
    ),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- targets: how users, groups and direct conversations are made on each server


class ParleyTarget:
    """Users, groups and direct conversations through Parley's REST API (httpx)."""

    name = "parley"

    def __init__(self, server: Server, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.tokens: dict[int, str] = {}
        self.user_ids: dict[int, str] = {}

    async def setup_users(self, count: int, concurrency: int = 16) -> float:
        started = time.monotonic()
        limit = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:

            async def one(key: int) -> None:
                name = f"{self.prefix}{key}"
                async with limit:
                    response = await http.post(
                        "/api/v1/auth/register", json={"username": name, "password": PASSWORD}
                    )
                    if response.status_code not in (201, 409):
                        response.raise_for_status()
                    response = await http.post(
                        "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
                    )
                    response.raise_for_status()
                    body = response.json()
                self.tokens[key] = body["access_token"]
                self.user_ids[key] = body["user"]["id"]

            await asyncio.gather(*(one(key) for key in range(count) if key not in self.tokens))
        return time.monotonic() - started

    async def group(self, members: list[int], name: str) -> str:
        owner, rest = members[0], members[1:]
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=120) as http:
            response = await http.post(
                "/api/v1/conversations",
                json={"type": "group", "name": name, "member_ids": [self.user_ids[k] for k in rest]},
                headers={"authorization": f"Bearer {self.tokens[owner]}"},
            )
            response.raise_for_status()
            return str(response.json()["conversation"]["id"])

    async def direct(self, pairs: list[tuple[int, int]]) -> list[str]:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:

            async def one(a: int, b: int) -> str:
                response = await http.post(
                    "/api/v1/conversations",
                    json={"type": "direct", "user_id": self.user_ids[b]},
                    headers={"authorization": f"Bearer {self.tokens[a]}"},
                )
                response.raise_for_status()
                return str(response.json()["conversation"]["id"])

            return list(await asyncio.gather(*(one(a, b) for a, b in pairs)))


class FloorTarget:
    """The floor has no accounts: a user's token is its name; rooms are made over HTTP."""

    name = "floor"

    def __init__(self, server: Server, prefix: str) -> None:
        self.server = server
        self.prefix = prefix
        self.tokens: dict[int, str] = {}

    async def setup_users(self, count: int, concurrency: int = 16) -> float:
        for key in range(count):
            self.tokens[key] = f"{self.prefix}{key}"
        return 0.0

    async def _room(self, http: httpx.AsyncClient, members: list[int]) -> str:
        room = uuid.uuid4().hex[:26].upper()
        response = await http.post(
            "/floor/rooms", json={"id": room, "member_ids": [self.tokens[k] for k in members]}
        )
        response.raise_for_status()
        return room

    async def group(self, members: list[int], name: str) -> str:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:
            return await self._room(http, members)

    async def direct(self, pairs: list[tuple[int, int]]) -> list[str]:
        async with httpx.AsyncClient(base_url=self.server.base_url, timeout=60) as http:
            return [await self._room(http, [a, b]) for a, b in pairs]


Target = ParleyTarget | FloorTarget


# --- one measured step


@dataclass
class Step:
    target: str
    size: str
    kind: str  # "probe" (closed loop) or "rate" (open loop, fixed rate)
    offered_rate: float | None
    fanout: int  # deliveries per message
    duration: float
    accepted_per_s: float
    deliveries_per_s: float
    latency: dict[str, Any]
    ack_latency: dict[str, Any]
    server_cpu: float
    server_rss_mb: float
    load_cpu: float
    sent: int
    errors: int
    unacked: int
    disconnects: int
    error_samples: list[str] = field(default_factory=list)


async def run_step(
    server: Server,
    load: LoadGenerator,
    senders: list[tuple[int, str]],
    *,
    target: str,
    size: str,
    fanout: int,
    rate: float,
    duration: float,
    inflight: int,
    settle: float,
    content_chars: int,
    during: Callable[[], Awaitable[None]] | None = None,
) -> Step:
    shares = load.split(senders)
    start_at = time.monotonic() + 0.3
    for index, share in enumerate(shares):
        worker_rate = rate if math.isinf(rate) else rate * len(share) / len(senders)
        load.send(index, {"cmd": "step", "plan": {
            "senders": share, "rate": worker_rate, "duration": duration, "inflight_cap": inflight,
            "start_at": start_at, "content_chars": content_chars, "settle": settle,
        }})
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    before = server.sample()
    load_before = [sample(pid) for pid in load.pids]
    if during is not None:
        watcher = asyncio.create_task(during())
    await asyncio.sleep(duration)
    after = server.sample()
    load_after = [sample(pid) for pid in load.pids]
    results = [await load.receive(index) for index in range(len(shares))]
    if during is not None:
        await watcher
    deliveries = sum(r["deliveries_in_window"] for r in results)
    acks = sum(r["acks_in_window"] for r in results)
    samples = [s for r in results for s in r["error_samples"]]
    return Step(
        target=target,
        size=size,
        kind="probe" if math.isinf(rate) else "rate",
        offered_rate=None if math.isinf(rate) else round(rate, 1),
        fanout=fanout,
        duration=duration,
        accepted_per_s=round(acks / duration, 1),
        deliveries_per_s=round(deliveries / duration, 1),
        latency=summary(merge([r["latency"] for r in results])),
        ack_latency=summary(merge([r["ack_latency"] for r in results])),
        server_cpu=round(cpu_share(before, after), 3),
        server_rss_mb=round(after.rss_bytes / 2**20, 1),
        load_cpu=round(sum(cpu_share(b, a) for b, a in zip(load_before, load_after, strict=True)), 3),
        sent=sum(r["sent"] for r in results),
        errors=sum(r["errors"] for r in results),
        unacked=sum(r["unacked"] for r in results),
        disconnects=sum(r["disconnects"] for r in results),
        error_samples=samples[:3],
    )


def describe(step: Step) -> str:
    rate = "probe" if step.offered_rate is None else f"{step.offered_rate:g}/s"
    latency = step.latency
    return (
        f"{step.target:6} {step.size:>5} {rate:>10}: {step.accepted_per_s:8.1f} msg/s "
        f"{step.deliveries_per_s:9.0f} deliveries/s  p50 {latency['p50_ms']} p99 {latency['p99_ms']} ms  "
        f"server cpu {step.server_cpu:.2f} load cpu {step.load_cpu:.2f}"
        + (f"  errors {step.errors}" if step.errors else "")
        + (f"  disconnects {step.disconnects}" if step.disconnects else "")
    )


# --- fan-out


@dataclass
class Stand:
    """One server with its users connected: what a fan-out scenario runs against."""

    target: Target
    server: Server
    load: LoadGenerator


async def open_stand(kind: str, workdir: Path, mode: Mode, pinning: Pinning, processes: int, deflate: bool) -> Stand:
    if kind == "parley":
        server = parley_server(workdir / "parley-fanout", pinning.server).start()
        target: Target = ParleyTarget(server, "fan")
    else:
        server = floor_server(workdir / "floor-fanout", pinning.server).start()
        target = FloorTarget(server, "fan")
    try:
        seconds = await target.setup_users(mode.pool)
        if seconds:
            log(f"{kind}: {mode.pool} users registered and logged in over REST in {seconds:.1f} s")
        load = LoadGenerator(server.ws_url, processes, deflate=deflate, cores=pinning.load)
        connected = await load.connect(sorted(target.tokens.items()), concurrency=64)
        if connected["failed"]:
            raise RuntimeError(f"{kind}: {connected['failed']} connections failed: {connected['last_error']}")
        log(f"{kind}: {connected['ok']} connections ready in {connected['seconds']:.1f} s")
    except BaseException:
        server.kill()
        raise
    return Stand(target, server, load)


async def senders_for(stand: Stand, size: str | int, mode: Mode) -> tuple[list[tuple[int, str]], int]:
    """(sender key, conversation id) pairs and the deliveries per message for ``size``."""
    if size == "dm":
        pairs = [(2 * i, 2 * i + 1) for i in range(mode.dm_pairs)]
        conversations = await stand.target.direct(pairs)
        return [(a, c) for (a, _), c in zip(pairs, conversations, strict=True)], 2
    members = list(range(int(size)))
    conversation = await stand.target.group(members, f"bench {size}")
    count = min(mode.group_senders, len(members))
    stride = len(members) / count
    return [(members[int(i * stride)], conversation) for i in range(count)], int(size)


async def fanout(
    mode: Mode, workdir: Path, pinning: Pinning, processes: int, deflate: bool,
    profile_size: str | None, profile_seconds: float, profile_rate: float = math.inf,
) -> dict[str, Any]:
    parley = await open_stand("parley", workdir, mode, pinning, processes, deflate)
    try:
        floor = await open_stand("floor", workdir, mode, pinning, processes, deflate)
    except BaseException:
        parley.server.kill()
        parley.load.stop()
        raise
    steps: list[Step] = []
    profiles: dict[str, Any] = {}
    try:
        for size in mode.sizes:
            label = str(size)
            parley_senders, fan = await senders_for(parley, size, mode)
            floor_senders, _ = await senders_for(floor, size, mode)
            await asyncio.sleep(0.5)  # conversation.created events settle
            common = {"size": label, "fanout": fan, "settle": mode.settle_seconds, "content_chars": mode.content_chars}
            # Parley handles one connection's calls one at a time (a client's sends commit
            # in order), so what fills its group-commit batches is the number of senders,
            # not messages queued per socket: the probe uses many senders, two in flight each.
            inflight = mode.probe_inflight
            probe = await run_step(parley.server, parley.load, parley_senders, target="parley",
                                   rate=math.inf, duration=mode.probe_seconds, inflight=inflight, **common)
            log(describe(probe))
            steps.append(probe)
            saturation = max(probe.accepted_per_s, 1.0)
            for fraction in mode.ladder:
                rate = saturation * fraction
                for stand, senders in ((parley, parley_senders), (floor, floor_senders)):
                    step = await run_step(stand.server, stand.load, senders, target=stand.target.name,
                                          rate=rate, duration=mode.step_seconds, inflight=64, **common)
                    log(describe(step))
                    steps.append(step)
            floor_probe = await run_step(floor.server, floor.load, floor_senders, target="floor",
                                         rate=math.inf, duration=mode.probe_seconds, inflight=inflight, **common)
            log(describe(floor_probe))
            steps.append(floor_probe)
            if profile_size == label:
                for stand, senders in ((parley, parley_senders), (floor, floor_senders)):
                    profiles[stand.target.name] = await profile_probe(
                        stand, senders, inflight, profile_seconds, common, workdir, profile_rate
                    )
    finally:
        for stand in (parley, floor):
            stand.load.stop()
            stand.server.stop()
    return {"steps": [vars(s) for s in steps], "summary": summarise_fanout(steps), "profiles": profiles}


async def profile_probe(
    stand: Stand, senders: list[tuple[int, str]], inflight: int, seconds: float,
    common: dict[str, Any], workdir: Path, rate: float = math.inf,
) -> dict[str, Any]:
    """A closed-loop probe (or a step at ``rate``) with py-spy sampling the server; the top
    functions by own time."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        log("py-spy not found (pip install py-spy): no profile")
        return {}
    name = stand.target.name
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / f"profile-{name}-{common['size']}.txt"
    record_seconds = max(1, int(seconds) - 1)

    async def record() -> None:
        # Collapsed stacks ("raw"): the table below is computed from them, and
        # flamegraph.pl or speedscope draw them.
        await asyncio.to_thread(
            subprocess.run,
            [spy, "record", "--pid", str(stand.server.pid), "--duration", str(record_seconds),
             "--rate", "200", "--threads", "--format", "raw", "--output", str(raw),
             *os.environ.get("BENCH_PYSPY_ARGS", "").split()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=record_seconds + 30, check=False,
        )

    step = await run_step(stand.server, stand.load, senders, target=name, rate=rate,
                          duration=seconds, inflight=inflight if math.isinf(rate) else 64,
                          during=record, **common)
    log("profiled " + describe(step))
    top = top_functions(raw) if raw.exists() else {}
    return {"step": vars(step), "raw": str(raw), "top": top}


def top_functions(raw: Path, limit: int = 30) -> dict[str, Any]:
    """Own and inclusive sample shares per function, from py-spy's collapsed stacks, for
    the busiest thread (the event loop); and each thread's share of all samples."""
    per_thread: dict[str, list[tuple[list[str], int]]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        thread, *frames = stack.split(";")
        per_thread.setdefault(thread, []).append(([_short(f) for f in frames], int(count_text)))
    totals = {thread: sum(n for _, n in stacks) for thread, stacks in per_thread.items()}
    everything = sum(totals.values()) or 1
    main = max(totals, key=lambda t: totals[t]) if totals else ""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for frames, count in per_thread.get(main, []):
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    total = totals.get(main, 0) or 1

    def ranked(table: dict[str, int]) -> list[tuple[str, float]]:
        ordered = sorted(table.items(), key=lambda kv: -kv[1])[:limit]
        return [(name, round(100 * n / total, 1)) for name, n in ordered]

    threads = {}
    for thread, frames_list in per_thread.items():
        # A thread is named by what it runs: the outermost frames that are not threading's.
        sample_frames = max(frames_list, key=lambda fc: fc[1])[0]
        name = next((f for f in sample_frames if "threading.py" not in f and "runpy" not in f), thread)
        threads[f"{thread} {name}"] = round(100 * totals[thread] / everything, 1)
    return {
        "samples": everything,
        "threads_percent": threads,
        "main_thread": main,
        "own_percent": ranked(own),
        "inclusive_percent": ranked(inclusive),
    }


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else frame


def summarise_fanout(steps: list[Step]) -> list[dict[str, Any]]:
    """Per size: saturation of each, Parley / floor, and latency at half of Parley's saturation."""
    rows = []
    for size in dict.fromkeys(s.size for s in steps):
        mine = [s for s in steps if s.size == size]
        parley = [s for s in mine if s.target == "parley"]
        floor = [s for s in mine if s.target == "floor"]
        parley_best = max(parley, key=lambda s: s.deliveries_per_s)
        floor_best = max(floor, key=lambda s: s.deliveries_per_s)
        probe = next(s for s in parley if s.kind == "probe")
        rates = sorted({s.offered_rate for s in parley if s.offered_rate is not None})
        half_rate = min(rates, key=lambda r: abs(r - probe.accepted_per_s / 2)) if rates else None
        half_parley = next((s for s in parley if s.offered_rate == half_rate), None)
        half_floor = next((s for s in floor if s.offered_rate == half_rate), None)
        rows.append({
            "size": size,
            "fanout": mine[0].fanout,
            "parley_msgs_per_s": parley_best.accepted_per_s,
            "parley_deliveries_per_s": parley_best.deliveries_per_s,
            "floor_msgs_per_s": floor_best.accepted_per_s,
            "floor_deliveries_per_s": floor_best.deliveries_per_s,
            "ratio": round(parley_best.deliveries_per_s / floor_best.deliveries_per_s, 3)
            if floor_best.deliveries_per_s else None,
            "parley_server_cpu_at_saturation": parley_best.server_cpu,
            "floor_server_cpu_at_saturation": floor_best.server_cpu,
            "load_cpu_at_parley_saturation": parley_best.load_cpu,
            "load_cpu_at_floor_saturation": floor_best.load_cpu,
            "half_rate": half_rate,
            "parley_half": half_parley.latency if half_parley else None,
            "floor_half": half_floor.latency if half_floor else None,
        })
    return rows


# --- connections and the reconnect storm


async def connections_and_storm(
    kind: str, mode: Mode, workdir: Path, pinning: Pinning, processes: int, deflate: bool,
    scenarios: set[str],
) -> dict[str, Any]:
    factory = parley_server if kind == "parley" else floor_server
    server = factory(workdir / f"{kind}-connections", pinning.server).start()
    target: Target = ParleyTarget(server, "con") if kind == "parley" else FloorTarget(server, "con")
    load: LoadGenerator | None = None
    result: dict[str, Any] = {"target": kind}
    try:
        users = mode.connection_users
        seconds = await target.setup_users(users)
        if isinstance(target, ParleyTarget):
            # Teams of ten: everyone has a group and nine people in their presence audience.
            started = time.monotonic()
            teams = [list(range(first, min(first + 10, users))) for first in range(0, users, 10)]
            limit = asyncio.Semaphore(8)

            async def team(members: list[int]) -> None:
                async with limit:
                    await target.group(members, f"team {members[0]}")

            await asyncio.gather(*(team(m) for m in teams if len(m) > 1))
            log(f"{kind}: {users} users over REST in {seconds:.1f} s, {len(teams)} teams in "
                f"{time.monotonic() - started:.1f} s")
        total = users * mode.devices
        keyed = [(key, target.tokens[key // mode.devices]) for key in range(total)]
        load = LoadGenerator(server.ws_url, processes, deflate=deflate, cores=pinning.load)
        await asyncio.sleep(1.0)
        points = [(0, server.sample().rss_bytes)]
        connect_seconds = 0.0
        chunks = 4
        for chunk in range(chunks):
            share = keyed[chunk * total // chunks : (chunk + 1) * total // chunks]
            outcome = await load.connect(share, concurrency=128, timeout=60)
            connect_seconds += outcome["seconds"]
            if outcome["failed"]:
                log(f"{kind}: {outcome['failed']} connections failed ({outcome['last_error']})")
            await asyncio.sleep(1.0)
            connected = points[-1][0] + outcome["ok"]
            points.append((connected, server.sample().rss_bytes))
            log(f"{kind}: {connected} connections, RSS {points[-1][1] / 2**20:.1f} MB")
        if "connections" in scenarios:
            before = server.sample()
            idle = await load.broadcast([{"cmd": "idle", "seconds": mode.idle_seconds} for _ in load.pipes])
            after = server.sample()
            count, rss = points[-1]
            result["connections"] = {
                "connections": count,
                "rss_points_mb": [(n, round(b / 2**20, 2)) for n, b in points],
                "rss_per_connection_kb": round((rss - points[0][1]) / max(count, 1) / 1024, 1),
                "connect_per_s": round(count / connect_seconds, 1) if connect_seconds else None,
                "idle_cpu": round(cpu_share(before, after), 4),
                "idle_seconds": mode.idle_seconds,
                "pongs": sum(r["pongs"] for r in idle),
                "disconnects": sum(r["disconnects"] for r in idle),
            }
            log(f"{kind}: idle CPU {result['connections']['idle_cpu']:.3f} of a core, "
                f"{result['connections']['rss_per_connection_kb']} KB per connection")
        if "storm" in scenarios:
            clients = min(mode.storm_clients, points[-1][0])
            keep = keyed[:clients]
            extra = [key for key, _ in keyed[clients:]]
            shares = load.split(extra, key=lambda key: key)
            await load.broadcast([{"cmd": "close", "keys": share} for share in shares], timeout=120)
            restart_began = time.monotonic()
            server.stop()
            await load.broadcast([{"cmd": "wait_lost", "timeout": 30} for _ in load.pipes])
            down = time.monotonic() - restart_began
            server.start()
            restarted = time.monotonic() - restart_began
            before = server.sample()
            outcome = await load.connect(keep, concurrency=0, timeout=60, retry_seconds=90)
            after = server.sample()
            times = outcome["ready_after"]

            def at(q: float) -> float | None:
                return round(times[min(len(times) - 1, int(q * len(times)))], 3) if times else None

            result["storm"] = {
                "clients": clients,
                "resumed": outcome["ok"],
                "failed": outcome["failed"],
                "attempts": outcome["attempts"],
                "all_resumed_s": round(times[-1], 3) if times and not outcome["failed"] else None,
                "p50_s": at(0.5), "p95_s": at(0.95), "p99_s": at(0.99),
                "shutdown_s": round(down, 2),
                "restart_s": round(restarted, 2),
                "server_cpu": round(cpu_share(before, after), 3),
                "server_rss_mb": round(after.rss_bytes / 2**20, 1),
            }
            log(f"{kind}: storm of {clients}: all resumed in {result['storm']['all_resumed_s']} s "
                f"(p50 {result['storm']['p50_s']} s, {outcome['attempts']} attempts, {outcome['failed']} failed)")
    finally:
        if load is not None:
            load.stop()
        server.stop()
    return result


# --- multi-node through Redis


REDIS_URL = os.environ.get("PARLEY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("PARLEY_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SRC = Path(__file__).resolve().parent.parent / "src" / "parley"


def _tcp_answers(url: str) -> bool:
    parsed = urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2):
            return True
    except OSError:
        return False


async def multinode(mode: Mode, workdir: Path, pinning: Pinning, deflate: bool) -> dict[str, Any]:
    """Two Parley nodes on one PostgreSQL database and one Redis: senders on node A, the
    group's members split across A and B. In the same step, receivers on A measure the
    single-node path and receivers on B the path through Redis: the difference is what
    Redis adds between nodes."""
    if not (SRC / "bus" / "redis.py").exists():
        return {"skipped": "no Redis bus in src/parley/bus/"}
    if not _tcp_answers(REDIS_URL) or not _tcp_answers(PG_ADMIN):
        return {"skipped": f"Redis ({REDIS_URL}) or PostgreSQL ({PG_ADMIN}) does not answer"}
    import asyncpg

    name = f"parley_bench_multinode_{os.getpid()}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    extra = {
        "PARLEY_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{name}",
        "PARLEY_REDIS_URL": REDIS_URL,
        "PARLEY_REDIS_KEY_PREFIX": f"parley-bench-{os.getpid()}",
    }
    nodes: list[Server] = []
    loads: list[LoadGenerator] = []
    try:
        for label in ("a", "b"):
            nodes.append(parley_server(workdir / f"node-{label}", pinning.server, **extra).start())
        size = 100
        target = ParleyTarget(nodes[0], "mn")
        await target.setup_users(size)
        conversation = await target.group(list(range(size)), "across nodes")
        for node in nodes:
            loads.append(LoadGenerator(node.ws_url, 1, deflate=deflate, cores=pinning.load))
        for index, load in enumerate(loads):
            users = [(k, t) for k, t in sorted(target.tokens.items()) if k % 2 == index]
            outcome = await load.connect(users, concurrency=32)
            if outcome["failed"]:
                raise RuntimeError(f"node {index}: {outcome['failed']} connections failed: {outcome['last_error']}")
        senders = [(k, conversation) for k in range(0, size, 2)][: mode.group_senders]
        await asyncio.sleep(0.5)
        steps = []
        for rate in mode.multinode_rates:
            start_at = time.monotonic() + 0.3
            for index, load in enumerate(loads):
                load.send(0, {"cmd": "step", "plan": {
                    "senders": senders if index == 0 else [], "rate": rate if index == 0 else 0.0,
                    "duration": mode.step_seconds * 2, "inflight_cap": 64, "start_at": start_at,
                    "content_chars": mode.content_chars, "settle": mode.settle_seconds,
                }})
            local, remote = [await load.receive(0) for load in loads]
            step = {
                "rate": rate,
                "deliveries_per_s": round(
                    (local["deliveries_in_window"] + remote["deliveries_in_window"]) / (mode.step_seconds * 2), 1
                ),
                "same_node": summary(local["latency"]),
                "across_nodes": summary(remote["latency"]),
                "errors": local["errors"] + remote["errors"],
            }
            steps.append(step)
            log(f"multi-node {rate:g} msgs/s to {size}: same node p50 {step['same_node']['p50_ms']} "
                f"p99 {step['same_node']['p99_ms']} ms; across Redis p50 {step['across_nodes']['p50_ms']} "
                f"p99 {step['across_nodes']['p99_ms']} ms")
        return {"group_size": size, "senders": len(senders), "nodes": 2, "steps": steps}
    finally:
        for load in loads:
            load.stop()
        for node in nodes:
            node.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- the whole run


async def run(args: argparse.Namespace) -> dict[str, Any]:
    mode = MODES[args.mode]
    if args.sizes:
        mode = dataclasses.replace(mode, sizes=tuple(x if x == "dm" else int(x) for x in args.sizes.split(",")))
    pinning = plan_pinning()
    pin_self(pinning.load)
    files = raise_open_files_limit()
    scenarios = set(args.scenarios.split(","))
    processes = args.processes or max(2, len(pinning.load or []))
    log(f"pinning: {pinning.note}; open files limit {files}; {processes} load processes; "
        f"permessage-deflate {'on' if args.deflate else 'off'}")
    result: dict[str, Any] = {
        "benchmark": "gateway",
        "mode": args.mode,
        "pinning": pinning.note,
        "load_processes": processes,
        "deflate": args.deflate,
        "open_files_limit": files,
    }
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if "fanout" in scenarios:
                result["fanout"] = await fanout(mode, workdir, pinning, processes, args.deflate,
                                                args.profile, args.profile_seconds, args.profile_rate)
            if "multinode" in scenarios:
                result["multinode"] = await multinode(mode, workdir, pinning, args.deflate)
            if scenarios & {"connections", "storm"}:
                for kind in ("parley", "floor"):
                    result[f"connections_{kind}"] = await connections_and_storm(
                        kind, mode, workdir, pinning, processes, args.deflate, scenarios
                    )
        finally:
            if args.keep_logs:
                RESULTS_DIR.mkdir(parents=True, exist_ok=True)
                for log_file in workdir.rglob("*.log"):
                    shutil.copy(log_file, RESULTS_DIR / log_file.name)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=sorted(MODES), default="short")
    parser.add_argument("--scenarios", default="fanout,multinode,connections,storm")
    parser.add_argument("--sizes", help="fan-out sizes instead of the mode's (e.g. dm,10,1000)")
    parser.add_argument("--processes", type=int, default=0, help="load processes (default: max(2, load cores))")
    parser.add_argument("--no-deflate", dest="deflate", action="store_false",
                        help="do not offer permessage-deflate (browsers and the SDK do)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--profile", help="group size to profile with py-spy (e.g. 100)")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--profile-rate", type=float, default=math.inf,
                        help="profile at this many messages/s instead of a closed-loop probe")
    parser.add_argument("--keep-logs", action="store_true", help="copy server logs to bench/results/")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
