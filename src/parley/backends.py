"""Picks the swappable backends from settings: in-process, or Redis when
``PARLEY_REDIS_URL`` is set (DESIGN §2 "Scale-out"). Like uvicorn's ``auto.py``: the only
place that decides; everything else sees the interfaces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from parley.config import Settings
from parley.jobs.memory import MemoryJobQueue
from parley.jobs.queue import JobQueue
from parley.security.ratelimit import MemoryRateLimiter, RateLimiter

Check = Callable[[], Awaitable[object]]
Closer = Callable[[], Awaitable[None]]


@dataclass
class Backends:
    kind: str  # "memory" or "redis"
    limiter: RateLimiter
    jobs: JobQueue
    checks: dict[str, Check] = field(default_factory=dict)
    closers: list[Closer] = field(default_factory=list)


def build_backends(settings: Settings) -> Backends:
    if not settings.redis_url:
        return Backends(kind="memory", limiter=MemoryRateLimiter(), jobs=MemoryJobQueue())

    import redis.asyncio as redis

    from parley.jobs.redis_streams import RedisJobQueue
    from parley.security.ratelimit_redis import RedisRateLimiter

    # One connection pool per process, shared by every Redis adapter. Timeouts keep a dead
    # Redis from hanging requests: rate limits and jobs fail fast and are retried.
    client = redis.from_url(
        settings.redis_url,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )

    async def ping() -> object:
        return await client.ping()

    return Backends(
        kind="redis",
        limiter=RedisRateLimiter(client, prefix=f"{settings.redis_key_prefix}:rl:"),
        jobs=RedisJobQueue(client, prefix=f"{settings.redis_key_prefix}:jobs"),
        checks={"redis": ping},
        closers=[client.aclose],
    )
