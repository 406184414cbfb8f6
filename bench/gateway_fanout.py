"""The fan-out scenario: for each group size, a closed-loop probe of Parley finds its
saturation, open-loop steps at fractions of that rate run on Parley and the floor alike,
then the floor's own probe; the summary puts the two side by side per size."""

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
from procs import Pinning


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
