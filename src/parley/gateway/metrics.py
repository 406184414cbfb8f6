"""Gateway metrics, read from the live objects at scrape time (nothing to keep in step).

- ``parley_gateway_sessions``: connections on this node, and ``..._by_state{state}``
  (``closing`` counts connections waiting for a slow client to take its close frame);
- ``parley_gateway_outbox_frames``: frames queued for sending, over all connections — the
  number that proves backpressure works: it stays under sessions x outbox limit;
- ``parley_gateway_bus_subscriptions``: topics this node receives;
- ``parley_gateway_events_published_total`` / ``parley_gateway_frames_pushed_total``:
  envelopes published by this node / event frames handed to local sessions;
- ``parley_gateway_closes_total{code}``: connections closed, by close code;
- ``parley_gateway_delivery_seconds``: from a new message's commit (on whichever node) to its
  event frame written to a recipient's socket on this node — what users feel as latency,
  group commit, bus and queueing included. A sample: up to ``hub.TIMED_PER_ENVELOPE``
  recipients per message and node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# DESIGN §4's targets are p99 < 50 ms on one node and p95 < 100 ms across nodes: buckets
# dense around them, and up to the seconds a stalled client (4009 soon) can take.
DELIVERY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayStats(Protocol):
    def session_count(self) -> int: ...

    def sessions_by_state(self) -> dict[str, int]: ...

    def queued_frames(self) -> int: ...

    def subscription_count(self) -> int: ...

    def events_published(self) -> int: ...

    def frames_pushed(self) -> int: ...


class _GatewayCollector(Collector):
    def __init__(self, stats: GatewayStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        for name, text, value in (
            (
                "parley_gateway_sessions",
                "WebSocket sessions on this node",
                self._stats.session_count(),
            ),
            (
                "parley_gateway_outbox_frames",
                "Frames queued for sending",
                self._stats.queued_frames(),
            ),
            (
                "parley_gateway_bus_subscriptions",
                "Bus topics this node receives",
                self._stats.subscription_count(),
            ),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge
        by_state = GaugeMetricFamily(
            "parley_gateway_sessions_by_state", "WebSocket sessions by state", labels=["state"]
        )
        for state, count in sorted(self._stats.sessions_by_state().items()):
            by_state.add_metric([state], count)
        yield by_state
        for name, text, value in (
            (
                "parley_gateway_events_published",
                "Events published to the bus by this node",
                self._stats.events_published(),
            ),
            (
                "parley_gateway_frames_pushed",
                "Event frames handed to local sessions",
                self._stats.frames_pushed(),
            ),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry, stats: GatewayStats) -> None:
        registry.register(_GatewayCollector(stats))
        self.closes = Counter(
            "parley_gateway_closes_total",
            "WebSocket sessions closed, by close code",
            ["code"],
            registry=registry,
        )
        self.delivery = Histogram(
            "parley_gateway_delivery_seconds",
            "Seconds from a message's commit to its event frame written to a socket",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
