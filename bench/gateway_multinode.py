"""The multi-node scenario: two Parley nodes on one PostgreSQL database and one Redis, and
the latency a delivery through Redis adds over one on the sender's own node. Skipped, with
the reason, when there is no Redis bus or Redis or PostgreSQL does not answer."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway_modes import Mode
from gateway_output import log
from gateway_targets import ParleyTarget
from loadgen import LoadGenerator
from loadgen_histogram import summary
from procs import Pinning, Server, parley_server

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
