"""Redis restarting under load (a private redis-server, killed and started again empty):
sends keep being committed and acknowledged throughout, each node's readiness shows its bus
degraded and then ready again, the nodes resubscribe by themselves, and every session —
told by its node that it may have missed events (4011) — resumes and fills the gap by seq,
so every acknowledged message reaches every member exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.scaleout_helpers import running_cluster
from tests.support.scaleout_load import (
    READY,
    acknowledged,
    all_nodes,
    each_got_every_acknowledged_message_once,
    group_under_load,
)


async def test_redis_restarting_under_load(tmp_path: Path, empty_postgres_url: str) -> None:
    async with running_cluster(tmp_path, empty_postgres_url) as cluster, group_under_load(cluster) as load:
        senders = load.senders
        cluster.redis.kill()
        await all_nodes(cluster, (200, "degraded", "degraded"))
        during = len(senders.acked)
        await acknowledged(senders, 40)  # committed and acknowledged without Redis
        failures = sum([await cluster.metric(i, "parley_bus_publish_failures_total") for i in (0, 1)])
        assert failures > 0

        await asyncio.to_thread(cluster.redis.start)  # same port, nothing kept
        await all_nodes(cluster, READY)  # resubscribed by themselves
        for index in (0, 1):
            assert await cluster.metric(index, "parley_bus_reconnects_total") >= 1
        await acknowledged(senders, 60)
        await senders.stop()
        assert senders.failed == {}, senders.failed
        assert len(senders.acked) > during

        # Each session was told to resume, and did.
        await each_got_every_acknowledged_message_once(load, told_to_resume=True)
        print(
            f"\nRedis restart: {len(senders.acked)} sends acknowledged "
            f"({len(senders.acked) - during} from the outage on), none failed; "
            f"{int(failures)} envelopes not published; slowest send "
            f"{max(senders.latencies):.2f}s"
        )


async def test_rate_limits_fall_back_per_node_while_redis_is_away(tmp_path: Path) -> None:
    """Without the fallback every frame on every socket would fail while Redis is away."""
    from parley.bus.redis import bus_client
    from parley.security.ratelimit import MemoryRateLimiter, Rate
    from parley.security.ratelimit_redis import RedisRateLimiter
    from tests.support.scaleout_helpers import RedisServer

    server = await asyncio.to_thread(RedisServer(tmp_path / "redis").start)
    client = bus_client(server.url)
    limiter = RedisRateLimiter(
        client, prefix="rl:", fallback=MemoryRateLimiter(), fallback_seconds=0.2
    )
    rate = Rate(per_second=0.001, burst=2)
    try:
        assert (await limiter.hit("k", rate)).allowed  # Redis's bucket: one token left
        server.kill()
        # Redis is gone: a fresh per-node bucket decides, and refuses past its burst.
        assert [(await limiter.hit("k", rate)).allowed for _ in range(3)] == [True, True, False]
        await asyncio.to_thread(server.start)
        await asyncio.sleep(0.25)  # past fallback_seconds: Redis decides again (empty now)
        assert (await limiter.hit("k", rate)).allowed
        assert await client.exists("rl:k") == 1
    finally:
        await client.aclose()
        server.kill()
