"""Prometheus metrics, one registry per application (so tests can build many apps)."""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _PoolCollector(Collector):
    def __init__(
        self,
        read_pool: Callable[[], dict[str, int]],
        read_sources: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._read_pool = read_pool
        self._read_sources = read_sources

    def collect(self) -> Iterator[Metric]:
        status = self._read_pool()
        size = GaugeMetricFamily("parley_db_pool_size", "Connections the pool keeps open")
        size.add_metric([], status.get("size", 0))
        used = GaugeMetricFamily("parley_db_pool_checked_out", "Connections in use")
        used.add_metric([], status.get("checked_out", 0))
        yield size
        yield used
        if self._read_sources is not None:
            # Only with PARLEY_DATABASE_REPLICA_URLS: where the replica-eligible reads went.
            reads = CounterMetricFamily(
                "parley_db_reads",
                "Replica-eligible reads by where they ran",
                labels=["source"],
            )
            sources = self._read_sources()
            for source in ("replica", "primary_lagging", "primary_unavailable"):
                reads.add_metric([source], sources.get(source, 0))
            yield reads


GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GC_GENERATIONS = 3


class GcPauses(Collector):
    """``parley_gc_pause_seconds{generation}``: the pause of every cyclic collection, for
    ``observability.gc_policy`` to feed through ``gc.callbacks``.

    Recorded in plain lists, not a ``Histogram``: the callback runs inside a collection, in
    whatever thread allocated at that moment, and a Histogram's lock (one lock for every
    value when prometheus_client runs in multiprocess mode) may then be held by that very
    thread: observing would wait on it for ever. Only the callback writes (collections never
    overlap); a scrape copies the lists, at worst one observation half counted."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        # Per generation: counts per bucket (the last one past the largest bound), seconds.
        self._counts = [[0] * (len(GC_PAUSE_BUCKETS) + 1) for _ in range(GC_GENERATIONS)]
        self._seconds = [0.0] * GC_GENERATIONS
        # None until a start was seen: a callback added mid-collection skips that stop.
        self._started: float | None = None

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        started, self._started = self._started, None
        generation = info.get("generation")
        if started is None or not isinstance(generation, int) or not 0 <= generation < GC_GENERATIONS:
            return
        seconds = self._clock() - started
        self._counts[generation][bisect.bisect_left(GC_PAUSE_BUCKETS, seconds)] += 1
        self._seconds[generation] += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            "parley_gc_pause_seconds",
            "Pauses of the cyclic garbage collector (every thread stops), by generation",
            labels=["generation"],
        )
        for generation in range(GC_GENERATIONS):
            cumulative = list(itertools.accumulate(list(self._counts[generation])))
            bounds = [*map(floatToGoString, GC_PAUSE_BUCKETS), "+Inf"]
            buckets = [(bound, float(count)) for bound, count in zip(bounds, cumulative, strict=True)]
            family.add_metric([str(generation)], buckets, self._seconds[generation])
        yield family


class BusMetrics:
    """The bus's figures. The Redis bus feeds them; with the in-process bus a publish is a
    function call, so only ``parley_bus_connected`` (always 1) means anything."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.publish_seconds = Histogram(
            "parley_bus_publish_duration_seconds",
            "From publish to Redis acknowledging the PUBLISH (queueing included)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.publish_failures = Counter(
            "parley_bus_publish_failures",
            "Envelopes Redis did not take (dropped: clients fill the gap by seq)",
            registry=registry,
        )
        self.reconnects = Counter(
            "parley_bus_reconnects",
            "Times the subscriber connection was lost and this node resubscribed",
            registry=registry,
        )
        self.connected = Gauge(
            "parley_bus_connected",
            "1 while this node receives other nodes' envelopes",
            registry=registry,
        )


class JobQueueMetrics:
    """Read from ``JobQueue.stats()`` at each scrape (see ``Container.refresh_metrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queued = Gauge(
            "parley_jobs_queued", "Jobs waiting to run (retries included)", registry=registry
        )
        self.pending = Gauge(
            "parley_jobs_pending",
            "Jobs delivered to a worker and not yet acknowledged",
            registry=registry,
        )
        self.dead = Gauge(
            "parley_jobs_dead_letters", "Jobs in the dead-letter stream", registry=registry
        )


# From a message being committed to its notification being accepted: a push waits its delay
# (seconds), a digest its window (minutes).
NOTIFICATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)


class NotificationMetrics:
    """Notification delivery (parley.notifications), by channel: ``push`` or ``email``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queued = Counter(
            "parley_notifications_queued",
            "Notifications planned: (user, message, channel) that qualified",
            ["channel"],
            registry=registry,
        )
        self.sent = Counter(
            "parley_notifications_sent",
            "Pushes accepted by a push service; digest emails accepted by the SMTP server",
            ["channel"],
            registry=registry,
        )
        self.failed = Counter(
            "parley_notifications_failed",
            "Failed attempts (retried until the job is dead-lettered), by reason",
            ["channel", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "parley_notification_latency_seconds",
            "From a message's commit to its notification being accepted for delivery",
            ["channel"],
            buckets=NOTIFICATION_BUCKETS,
            registry=registry,
        )
        self.subscriptions_removed = Counter(
            "parley_push_subscriptions_removed",
            "Push subscriptions deleted because their push service answered 404/410",
            registry=registry,
        )


class WebhookMetrics:
    """Outgoing webhook deliveries (parley.integrations.deliveries)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "parley_webhook_delivery_attempts",
            "Delivery attempts by outcome: delivered, retried, failed (dead-lettered)",
            ["outcome"],
            registry=registry,
        )
        self.disabled = Counter(
            "parley_webhooks_disabled",
            "Outgoing webhooks disabled after PARLEY_WEBHOOK_MAX_FAILURES failed deliveries",
            registry=registry,
        )


class NodeHealthMetrics:
    """What alerting needs at each scrape: whether each dependency answers (the readiness
    checks, run with a short timeout) and how full the data directory's disk is."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.dependency_up = Gauge(
            "parley_dependency_up",
            "1 if the dependency answered its readiness check at the last scrape",
            ["dependency"],
            registry=registry,
        )
        self.data_dir_free = Gauge(
            "parley_data_dir_free_bytes",
            "Free bytes on the file system of the data directory (SQLite, local media)",
            registry=registry,
        )
        self.data_dir_size = Gauge(
            "parley_data_dir_filesystem_bytes",
            "Size of the file system of the data directory",
            registry=registry,
        )


class LifecycleMetrics:
    """Retention, exports and erasures (parley.lifecycle)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.retention_deleted = Counter(
            "parley_retention_messages_deleted_total",
            "Messages deleted by the retention sweep",
            registry=registry,
        )
        self.retention_runs = Counter(
            "parley_retention_runs_total", "Retention sweeps completed", registry=registry
        )
        self.exports = Counter(
            "parley_exports_total", "Exports built, by outcome", ["outcome"], registry=registry
        )
        self.erasures = Counter(
            "parley_erasures_total", "Accounts erased", registry=registry
        )


class E2eeMetrics:
    """End-to-end encryption's server side (parley.services.e2ee_*): only counts, never
    anything of the ciphertexts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.to_device_stored = Counter(
            "parley_e2ee_to_device_stored_total",
            "To-device messages put in device inboxes",
            registry=registry,
        )
        self.to_device_dropped = Counter(
            "parley_e2ee_to_device_dropped_total",
            "To-device messages dropped unread because their device's inbox was full",
            registry=registry,
        )
        self.prekeys_claimed = Counter(
            "parley_e2ee_prekeys_claimed_total",
            "Key bundles handed out, by whether a one-time prekey was left (one_time) or not",
            ["kind"],
            registry=registry,
        )


# From a message's commit (or edit) to its batch being indexed: promised within one second.
SEARCH_INDEX_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 60.0)


class SearchIndexMetrics:
    """The batched search indexer (``parley.services.search_indexer``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.delay = Histogram(
            "parley_search_indexing_delay_seconds",
            "From a message waiting to be indexed (its commit or edit) to its batch committing",
            buckets=SEARCH_INDEX_BUCKETS,
            registry=registry,
        )
        self.indexed = Counter(
            "parley_search_indexed", "Messages taken off the search backlog", registry=registry
        )
        self.backlog = Gauge(
            "parley_search_index_backlog",
            "Messages committed and not yet searchable (read at scrape time)",
            registry=registry,
        )
        self.lag = Gauge(
            "parley_search_index_lag_seconds",
            "How long the oldest message of the backlog has waited (0: none waits)",
            registry=registry,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "parley_http_requests_total",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "parley_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.messages_sent = Counter(
            "parley_messages_sent_total", "Messages committed", registry=self.registry
        )
        self.group_commit_batch = Histogram(
            "parley_group_commit_batch_size",
            "Messages written per group-commit transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.gc_pauses = GcPauses()
        self.registry.register(self.gc_pauses)
        self.bus = BusMetrics(self.registry)
        self.jobs = JobQueueMetrics(self.registry)
        self.notifications = NotificationMetrics(self.registry)
        self.webhooks = WebhookMetrics(self.registry)
        self.health = NodeHealthMetrics(self.registry)
        self.lifecycle = LifecycleMetrics(self.registry)
        self.e2ee = E2eeMetrics(self.registry)
        self.search_index = SearchIndexMetrics(self.registry)

    def watch_pool(
        self,
        read_pool: Callable[[], dict[str, int]],
        read_sources: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.registry.register(_PoolCollector(read_pool, read_sources))
