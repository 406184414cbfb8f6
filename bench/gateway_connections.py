"""The connections scenario and the reconnect storm, on one server: idle connections opened
in chunks (RSS against connections, connect rate, idle CPU), then the server restarted
under a number of them and the time until every one is ``ready`` again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from gateway_modes import Mode
from gateway_output import log
from gateway_targets import FloorTarget, ParleyTarget, Target
from loadgen import LoadGenerator
from procs import Pinning, cpu_share, floor_server, parley_server


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
        connect_cpu = 0.0  # server CPU-seconds spent in the connect chunks (a loaded machine
        # stretches the seconds, not the CPU each connect + identify costs)
        chunks = 4
        for chunk in range(chunks):
            share = keyed[chunk * total // chunks : (chunk + 1) * total // chunks]
            before_chunk = server.sample()
            outcome = await load.connect(share, concurrency=128, timeout=60)
            connect_cpu += server.sample().cpu_seconds - before_chunk.cpu_seconds
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
                "connect_cpu_ms": round(connect_cpu / max(count, 1) * 1000, 3),
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
