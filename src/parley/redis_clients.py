"""The Redis clients every Redis adapter (bus, presence, rate limits, jobs) uses, made from
``PARLEY_REDIS_URL`` as :mod:`parley.redis_urls` reads it: one server, Sentinel or Cluster.
Only the Redis adapters (and ``backends``, which wires them) import this module.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from parley.redis_urls import RedisLocation, RedisTopology, parse_redis_url


class SentinelManagedRedis(redis.Redis):
    """A client of the primary Sentinel names, that also closes its connections to the
    sentinels when closed (redis-py leaves them open)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
            await sentinel.aclose()


def redis_client(location: RedisLocation | str, **options: Any) -> redis.Redis:
    """A client for ``location`` with redis-py connection ``options`` (timeouts, retry).
    Redis Cluster is served by :func:`cluster_client`, whose client is another class."""
    if isinstance(location, str):
        location = parse_redis_url(location)
    if location.topology is RedisTopology.SINGLE:
        return redis.from_url(location.url, **options)
    if location.topology is RedisTopology.CLUSTER:
        raise ValueError("a Redis Cluster URL needs cluster_client")
    from redis.asyncio.sentinel import Sentinel

    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    sentinels = Sentinel(
        list(location.hosts),
        sentinel_kwargs=sentinel_options,
        db=location.db,
        username=location.username,
        password=location.password,
        **options,
    )
    client: redis.Redis = sentinels.master_for(location.service, redis_class=SentinelManagedRedis)
    return client


def cluster_client(location: RedisLocation | str, **options: Any) -> redis.RedisCluster:
    """A Redis Cluster client: commands go to the primary of their key's slot, and the slot
    map is refreshed when a primary moves (failover, resharding)."""
    if isinstance(location, str):
        location = parse_redis_url(location)
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in location.hosts],
        username=location.username,
        password=location.password,
        **options,
    )


def any_redis_client(url: str, **options: Any) -> redis.Redis | redis.RedisCluster:
    """Whichever client ``url`` needs (for commands any topology serves: PING)."""
    location = parse_redis_url(url)
    if location.topology is RedisTopology.CLUSTER:
        return cluster_client(location, **options)
    return redis_client(location, **options)
