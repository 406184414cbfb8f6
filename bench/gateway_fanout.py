"""The fan-out scenario: for each group size, closed-loop probes of Parley and of the floor,
repeated (``mode.repeats``) so that each headline ratio has a min / median / max; then
open-loop steps at fractions of Parley's median saturation, on both servers alike; the
summary puts the two side by side per size."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from gateway_modes import Mode
from gateway_output import log
from gateway_profile import profile_probe
from gateway_stand import open_stand, senders_for
from gateway_step import Step, describe, run_step
from measured import NothingMeasured, ratio, spread
from procs import Pinning

# An open-loop step lasts long enough to send this many messages: a percentile of fewer is
# noise, and a slow rate (a quarter of a loaded machine's saturation at 1,000 members) would
# otherwise send a handful in its window.
MIN_MESSAGES = 20


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
            probing = {"inflight": inflight, "duration": mode.probe_seconds, "rate": math.inf,
                       "warmup": mode.probe_warmup, "max_warmup": mode.max_warmup,
                       "max_window": mode.max_window}
            # Each repetition measures Parley and then the floor, seconds apart: the ratio of
            # each pair is one sample of Parley / floor on this machine right now.
            probes: list[Step] = []
            probers = ((parley, mode.probe_senders(parley_senders, fan)),
                       (floor, mode.probe_senders(floor_senders, fan)))
            for run in range(1, mode.repeats + 1):
                for stand, senders in probers:
                    probe = await run_step(stand.server, stand.load, senders, target=stand.target.name,
                                           run=run, **probing, **common)
                    log(describe(probe))
                    probes.append(probe)
            steps.extend(probes)
            # The open-loop steps run at fractions of Parley's median saturation, in messages
            # delivered per second (deliveries ÷ fan-out): acks come back in bursts a round
            # apart, deliveries flow, so this is the steadier count of the same messages.
            saturation = spread([p.deliveries_per_s / fan for p in probes if p.target == "parley"]).median
            for fraction in mode.ladder:
                rate = saturation * fraction
                for stand, senders in ((parley, parley_senders), (floor, floor_senders)):
                    step = await run_step(stand.server, stand.load, senders, target=stand.target.name,
                                          rate=rate, duration=max(mode.step_seconds, MIN_MESSAGES / rate),
                                          inflight=64, **common)
                    log(describe(step))
                    steps.append(step)
            if profile_size == label:
                for stand, senders in probers:
                    profiles[stand.target.name] = await profile_probe(
                        stand, senders, inflight, profile_seconds, common, workdir, profile_rate,
                        warmup=mode.probe_warmup,
                    )
    finally:
        for stand in (parley, floor):
            stand.load.stop()
            stand.server.stop()
    return {"steps": [vars(s) for s in steps], "summary": summarise_fanout(steps), "profiles": profiles}


def summarise_fanout(steps: list[Step]) -> list[dict[str, Any]]:
    """Per size: Parley / floor deliveries/s at saturation as min / median / max over the
    repeated probe pairs (each Parley probe against the floor probe of the same
    repetition), and latency at half of Parley's median saturation.

    Only probes count for saturation: an open-loop step is capped by its offered rate, and
    taking the best of every step (as before) let a step measured on a backlog stand for
    saturation."""
    rows = []
    for size in dict.fromkeys(s.size for s in steps):
        mine = [s for s in steps if s.size == size]
        label = _size_label(size)
        parley_probes = {s.run: s for s in mine if s.target == "parley" and s.kind == "probe"}
        floor_probes = {s.run: s for s in mine if s.target == "floor" and s.kind == "probe"}
        runs = sorted(parley_probes.keys() & floor_probes.keys())
        if not runs:
            raise NothingMeasured(f"{label}: no pair of Parley and floor probes to compare")
        ratios = [ratio(parley_probes[r].deliveries_per_s, floor_probes[r].deliveries_per_s,
                        f"{label} run {r}: Parley / floor deliveries/s") for r in runs]
        ratio_spread = spread(ratios)
        # The same ratio per second of server CPU: on a shared machine either server may get
        # less than its core, and this one does not move with what the others leave it.
        efficiency = [
            (parley_probes[r].deliveries_per_s / parley_probes[r].server_cpu)
            / (floor_probes[r].deliveries_per_s / floor_probes[r].server_cpu)
            for r in runs if parley_probes[r].server_cpu > 0 and floor_probes[r].server_cpu > 0
        ]
        parley_rates = spread([parley_probes[r].accepted_per_s for r in runs])
        parley_deliveries = spread([parley_probes[r].deliveries_per_s for r in runs])
        floor_deliveries = spread([floor_probes[r].deliveries_per_s for r in runs])
        # The pair whose ratio is the median one stands for the CPU columns.
        middle = runs[sorted(range(len(runs)), key=lambda i: ratios[i])[len(runs) // 2]]
        parley_mid, floor_mid = parley_probes[middle], floor_probes[middle]
        parley_rate_steps = [s for s in mine if s.target == "parley" and s.kind == "rate"]
        rates = sorted({s.offered_rate for s in parley_rate_steps if s.offered_rate is not None})
        saturation = parley_deliveries.median / max(1, mine[0].fanout)  # as the ladder was set
        half_rate = min(rates, key=lambda r: abs(r - saturation / 2)) if rates else None
        half_parley = next((s for s in parley_rate_steps if s.offered_rate == half_rate), None)
        half_floor = next((s for s in mine if s.target == "floor" and s.kind == "rate"
                           and s.offered_rate == half_rate), None)
        rows.append({
            "size": size,
            "fanout": mine[0].fanout,
            "runs": len(runs),
            "probe_senders": parley_mid.senders,
            "parley_msgs_per_s": parley_rates.median,
            "parley_msgs_per_s_spread": parley_rates.as_dict(),
            "parley_deliveries_per_s": parley_deliveries.median,
            "parley_deliveries_per_s_spread": parley_deliveries.as_dict(),
            "floor_msgs_per_s": spread([floor_probes[r].accepted_per_s for r in runs]).median,
            "floor_deliveries_per_s": floor_deliveries.median,
            "floor_deliveries_per_s_spread": floor_deliveries.as_dict(),
            "ratio": round(ratio_spread.median, 3),
            "ratio_min": round(ratio_spread.low, 3),
            "ratio_max": round(ratio_spread.high, 3),
            "ratios": [round(r, 3) for r in ratios],
            "ratio_per_cpu": spread(efficiency).as_dict() if efficiency else None,
            # Parley's deliveries per second of its own CPU (median over the probes): what
            # the independent closed loop is compared with on a machine that lends each
            # server a varying share of its core.
            "parley_deliveries_per_cpu_second": spread(
                [parley_probes[r].deliveries_per_s / parley_probes[r].server_cpu
                 for r in runs if parley_probes[r].server_cpu > 0] or [0.0]
            ).median,
            "parley_server_cpu_at_saturation": parley_mid.server_cpu,
            "floor_server_cpu_at_saturation": floor_mid.server_cpu,
            "load_cpu_at_parley_saturation": parley_mid.load_cpu,
            "load_cpu_at_floor_saturation": floor_mid.load_cpu,
            "half_rate": half_rate,
            "parley_half": half_parley.latency if half_parley else None,
            "floor_half": half_floor.latency if half_floor else None,
        })
    return rows


def _size_label(size: str) -> str:
    return "direct messages" if size == "dm" else f"group of {int(size):,}"
