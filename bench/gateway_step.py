"""One measured step of load: every worker sends at a rate (or in a closed loop) for a
window while the harness samples the server's and the load's CPU and memory; the workers'
counts and latency histograms are merged into one :class:`Step`.

An open-loop step's window is its fixed duration from the start. A closed loop (a probe)
first warms up: its window opens once the first round of in-flight messages has been
acknowledged (``warmup`` at least) and lasts three such rounds (within bounds), so that it
counts several bursts of acks whichever the fan-out. A step whose window holds no accepted message, delivery
or latency raises :class:`measured.NothingMeasured` instead of returning zeros."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loadgen import LoadGenerator
from loadgen_histogram import merge, summary
from measured import Counts, require_measured
from procs import Sample, Server, cpu_share, sample

SAMPLE_EVERY = 0.1  # seconds between the harness's readings of /proc during a step


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
    run: int = 1  # which repetition of a probe (1..mode.repeats)
    accepted: int = 0  # acks inside the window
    deliveries: int = 0  # deliveries inside the window
    first_round_s: float = 0.0  # closed loop: time until the first round was acknowledged
    deliveries_per_accepted: float | None = None  # about the fan-out when the counts agree
    senders: int = 0


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
    warmup: float = 0.0,
    max_warmup: float = 10.0,
    max_window: float = 6.0,
    run: int = 1,
) -> Step:
    shares = load.split(senders)
    start_at = time.monotonic() + 0.3
    peers = [index for index, share in enumerate(shares) if share]
    for index, share in enumerate(shares):
        worker_rate = rate if math.isinf(rate) else rate * len(share) / len(senders)
        load.send(index, {"cmd": "step", "plan": {
            "senders": share, "rate": worker_rate, "duration": duration, "inflight_cap": inflight,
            "start_at": start_at, "content_chars": content_chars, "settle": settle,
            "warmup": warmup, "max_warmup": max_warmup, "round_peers": peers,
            "max_window": max_window,
        }})
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    # The closed loop's window opens when its first round is back, which only the workers
    # know: /proc is read all along and the readings nearest the window are used.
    readings: list[tuple[Sample, list[Sample]]] = []
    watcher = asyncio.create_task(during()) if during is not None else None
    collected = asyncio.gather(*(load.receive(index) for index in range(len(shares))))
    while not collected.done():
        readings.append((server.sample(), [sample(pid) for pid in load.pids]))
        await asyncio.wait([collected], timeout=SAMPLE_EVERY)
    results = collected.result()
    if watcher is not None:
        await watcher
    # Each worker counts in its own window (a closed loop's opens when that worker's first
    # round is back): rates are summed per worker; /proc is read over their union.
    windows = [(r["window_end_ns"] - r["window_start_ns"]) / 1e9 for r in results]
    opened = min(r["window_start_ns"] for r in results) / 1e9
    closed = max(r["window_end_ns"] for r in results) / 1e9
    window = min(windows)
    before = _reading_at(readings, opened)
    after = _reading_at(readings, closed)
    deliveries = sum(r["deliveries_in_window"] for r in results)
    latency = summary(merge([r["latency"] for r in results]))
    ack_latency = summary(merge([r["ack_latency"] for r in results]))
    # Accepted messages: in a closed loop, the acks that arrive in the window (a steady
    # flow once the first round is back); in an open loop, the messages sent in the window
    # that were acknowledged, whenever (the last ones' acks arrive after the window).
    closed_loop = math.isinf(rate)
    per_worker_acks = [r["acks_in_window"] if closed_loop else sum(r["ack_latency"]) for r in results]
    acks = sum(per_worker_acks)
    errors = sum(r["errors"] for r in results)
    samples = [s for r in results for s in r["error_samples"]]
    kind = "probe" if math.isinf(rate) else "rate"
    require_measured(Counts(
        label=f"{target} {size} {kind}" + ("" if math.isinf(rate) else f" at {rate:.1f} msgs/s"),
        window_seconds=window, sent=sum(r["sent"] for r in results), accepted=acks,
        deliveries=deliveries, latency_samples=int(latency["count"] or 0), errors=errors,
    ))
    return Step(
        target=target,
        size=size,
        kind=kind,
        offered_rate=None if math.isinf(rate) else round(rate, 1),
        fanout=fanout,
        duration=round(max(windows), 3),
        accepted_per_s=round(sum(a / w for a, w in zip(per_worker_acks, windows, strict=True)), 1),
        deliveries_per_s=round(
            sum(r["deliveries_in_window"] / w for r, w in zip(results, windows, strict=True)), 1
        ),
        latency=latency,
        ack_latency=ack_latency,
        server_cpu=round(cpu_share(before[0], after[0]), 3),
        server_rss_mb=round(after[0].rss_bytes / 2**20, 1),
        load_cpu=round(sum(cpu_share(b, a) for b, a in zip(before[1], after[1], strict=True)), 3),
        sent=sum(r["sent"] for r in results),
        errors=errors,
        unacked=sum(r["unacked"] for r in results),
        disconnects=sum(r["disconnects"] for r in results),
        error_samples=samples[:3],
        run=run,
        accepted=acks,
        deliveries=deliveries,
        first_round_s=round(max(r.get("first_round_s", 0.0) for r in results), 3),
        deliveries_per_accepted=round(deliveries / acks, 1) if acks else None,
        senders=len(senders),
    )


def _reading_at(readings: list[tuple[Sample, list[Sample]]], moment: float) -> tuple[Sample, list[Sample]]:
    """The reading of /proc taken nearest ``moment`` (monotonic seconds)."""
    return min(readings, key=lambda reading: abs(reading[0].at - moment))


def describe(step: Step) -> str:
    rate = "probe" if step.offered_rate is None else f"{step.offered_rate:g}/s"
    latency = step.latency
    return (
        f"{step.target:6} {step.size:>5} {rate:>10}"
        + (f" #{step.run} (window {step.duration:.1f} s after a first round of {step.first_round_s:.1f} s)"
           if step.offered_rate is None else "")
        + f": {step.accepted_per_s:8.1f} msg/s "
        f"{step.deliveries_per_s:9.0f} deliveries/s  p50 {latency['p50_ms']} p99 {latency['p99_ms']} ms  "
        f"server cpu {step.server_cpu:.2f} load cpu {step.load_cpu:.2f}"
        + (f"  errors {step.errors}" if step.errors else "")
        + (f"  disconnects {step.disconnects}" if step.disconnects else "")
    )
