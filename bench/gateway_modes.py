"""The gateway benchmark's modes: how many users, which group sizes and how long each phase
lasts in a ``smoke``, ``short`` or ``full`` run (``gateway_bench.py --mode``)."""

from __future__ import annotations

from dataclasses import dataclass


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
