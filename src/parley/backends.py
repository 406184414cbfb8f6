"""Picks the swappable backends from settings: in-process, or Redis when
``PARLEY_REDIS_URL`` is set (DESIGN §2 "Scale-out"). Like uvicorn's ``auto.py``: the only
place that decides; everything else sees the interfaces.

Each process is one *node* with an id of its own (bus messages and presence entries name
it). Readiness checks that raise :class:`~parley.observability.health.Degraded` mean "this
node still serves, with less": a node whose Redis is gone keeps committing and acknowledging
(clients resume by seq), so a load balancer must not take every node out because Redis
blinked.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from parley.bus import Bus, InProcessBus
from parley.config import Settings
from parley.jobs.memory import MemoryJobQueue
from parley.jobs.queue import JobQueue
from parley.observability.health import Degraded
from parley.observability.metrics import Metrics
from parley.presence.base import PresenceStore
from parley.presence.memory import MemoryPresenceStore
from parley.security.ratelimit import MemoryRateLimiter, RateLimiter

Check = Callable[[], Awaitable[object]]
Closer = Callable[[], Awaitable[None]]


@dataclass
class Backends:
    kind: str  # "memory" or "redis"
    node_id: str
    limiter: RateLimiter
    jobs: JobQueue
    bus: Bus
    presence: PresenceStore
    checks: dict[str, Check] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)


def new_node_id() -> str:
    """Unique per process and readable in Redis: host, pid, and a random part (a restarted
    process may get the same pid)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def build_backends(settings: Settings, metrics: Metrics | None = None) -> Backends:
    metrics = metrics or Metrics()
    node_id = new_node_id()
    if not settings.redis_url:
        metrics.bus.connected.set(1)  # in-process: nothing to lose

        async def in_process() -> None:
            return None

        return Backends(
            kind="memory",
            node_id=node_id,
            limiter=MemoryRateLimiter(settings.rate_limit_max_keys),
            jobs=MemoryJobQueue(),
            bus=InProcessBus(),
            presence=MemoryPresenceStore(node_id),
            checks={"bus": in_process},
        )

    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from parley.bus.redis import bus_client_options, redis_bus
    from parley.jobs.redis_streams import RedisJobQueue
    from parley.presence.redis import RedisPresenceStore
    from parley.redis_clients import any_redis_client
    from parley.redis_urls import RedisTopology, parse_redis_url, slot_tagged
    from parley.security.ratelimit_redis import RedisRateLimiter

    prefix = settings.redis_key_prefix
    topology = parse_redis_url(settings.redis_url).topology
    cluster = topology is RedisTopology.CLUSTER
    # One connection pool per process for rate limits and jobs. Timeouts keep a dead Redis
    # from hanging requests; one quick retry covers a pooled connection that went stale
    # (Redis restarted) — redis-py's default would retry with backoff for seconds.
    options: dict[str, object] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 1),
    }
    if not cluster:  # the cluster client retries timeouts through its own Retry
        options["retry_on_timeout"] = True
    # The cluster client speaks the same commands as the single-node one, routed by key slot
    # (keys are hash-tagged so every script stays on one slot): typed as the single-node
    # client for the backends that take it.
    client = cast(redis.Redis, any_redis_client(settings.redis_url, **options))
    # The real-time side (bus, presence) fails faster still and never retries inside
    # redis-py: it has its own reconnect loop, and a session must not wait on Redis.
    realtime = cast(redis.Redis, any_redis_client(settings.redis_url, **bus_client_options()))
    bus = redis_bus(settings.redis_url, prefix=prefix, node_id=node_id, metrics=metrics.bus)

    async def ping() -> None:
        try:
            await client.ping()
        except Exception as exc:
            raise Degraded(f"{type(exc).__name__}: {exc}") from exc

    async def bus_ready() -> None:
        try:
            await bus.check()
        except Exception as exc:
            raise Degraded(str(exc)) from exc

    return Backends(
        kind="redis",
        node_id=node_id,
        limiter=RedisRateLimiter(
            client, prefix=f"{prefix}:rl:", fallback=MemoryRateLimiter(settings.rate_limit_max_keys)
        ),
        # On a cluster the stream, its delayed set and its dead letters share a hash tag:
        # the script moving due jobs touches two of them, and must stay on one slot.
        jobs=RedisJobQueue(client, prefix=slot_tagged(f"{prefix}:jobs", topology)),
        bus=bus,
        presence=RedisPresenceStore(
            realtime,
            prefix=prefix,
            node_id=node_id,
            shards=settings.redis_presence_groups if cluster else 1,
        ),
        checks={"bus": bus_ready, "redis": ping},
        closers=[client.aclose, realtime.aclose, bus.aclose_clients],
    )
