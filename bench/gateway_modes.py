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
    # Each size's probes (Parley, then the floor) run this many times in the same run: the
    # headline ratio is reported as min / median / max over them.
    repeats: int = 3
    probe_warmup: float = 0.5  # seconds at least before a probe's window opens
    max_warmup: float = 12.0  # a first round slower than this: the window opens anyway
    # A probe's window: three first rounds, at most this long. A loaded machine stretches a
    # round (20 messages × 1,000 members took 3.6 s with the server at 0.15 of a core): a
    # cap below one round would count no ack and stop the run.
    max_window: float = 8.0
    # A probe keeps at most this many deliveries in flight (senders × in flight × fan-out):
    # plenty to keep either server busy, and a first round short enough to measure after.
    # 100 senders in a group of 1,000 queued 200,000 frames: the first ack came back after
    # seconds, past the end of the window, and the probe counted no message at all.
    probe_deliveries_in_flight: int = 20_000

    def probe_senders(self, senders: list[tuple[int, str]], fanout: int) -> list[tuple[int, str]]:
        """As many of ``senders`` (spread evenly) as keep the probe within its budget."""
        wanted = max(2, self.probe_deliveries_in_flight // max(1, fanout * self.probe_inflight))
        if wanted >= len(senders):
            return senders
        return [senders[i * len(senders) // wanted] for i in range(wanted)]


MODES = {
    "short": Mode(
        sizes=("dm", 10, 100, 1000),
        pool=1000,
        dm_pairs=100,
        step_seconds=1.0,
        probe_seconds=1.0,
        settle_seconds=2.0,
        # Half of saturation only: the headline's latency. Three probe pairs per size take
        # the time the ¼ and 1 steps took; the full run keeps the whole ladder.
        ladder=(0.5,),
        group_senders=100,
        probe_inflight=2,
        content_chars=100,
        connection_users=1000,
        devices=2,
        storm_clients=1000,
        idle_seconds=3.0,
        probe_warmup=0.3,
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
        repeats=2,
        probe_warmup=0.2,
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
        probe_warmup=1.0,
        max_window=12.0,
    ),
}
