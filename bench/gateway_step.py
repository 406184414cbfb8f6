"""One measured step of load: every worker sends at a rate (or in a closed loop) for a
fixed time while the harness samples the server's and the load's CPU and memory; the
workers' counts and latency histograms are merged into one :class:`Step`."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loadgen import LoadGenerator
from loadgen_histogram import merge, summary
from procs import Server, cpu_share, sample


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
