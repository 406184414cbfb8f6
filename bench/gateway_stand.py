"""A stand: one server (Parley or the floor) started, its users registered and every one
connected through a load generator — what the fan-out steps and the profiler run against —
and the conversations its senders write to for each group size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway_modes import Mode
from gateway_output import log
from gateway_targets import FloorTarget, ParleyTarget, Target
from loadgen import LoadGenerator
from procs import Pinning, Server, floor_server, parley_server


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
    # Small groups come many to a server, as direct messages do: as many groups of ``size``
    # (distinct members) as give the probe ``group_senders`` senders. One group of ten gave
    # it ten, and Parley commits one connection's sends in order: ten senders kept it at
    # 0.6 of a core, so the "saturation" of groups of ten measured a round trip's latency.
    width = int(size)
    groups = max(1, min(mode.group_senders // width, mode.pool // width))
    per_group = min(max(1, mode.group_senders // groups), width)
    senders: list[tuple[int, str]] = []
    for number in range(groups):
        members = list(range(number * width, (number + 1) * width))
        conversation = await stand.target.group(members, f"bench {size} #{number + 1}")
        stride = width / per_group
        senders.extend((members[int(i * stride)], conversation) for i in range(per_group))
    return senders, width
