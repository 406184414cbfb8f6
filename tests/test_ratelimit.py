"""The ``RateLimiter`` contract, run against the in-memory and the Redis token bucket."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from parley.security.ratelimit import MemoryRateLimiter, Rate, RateLimiter
from parley.security.ratelimit_redis import RedisRateLimiter


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix: str = request.getfixturevalue("redis_prefix")
    return RedisRateLimiter(client, prefix=prefix)


async def test_bucket_allows_burst_then_refuses(limiter: RateLimiter) -> None:
    rate = Rate(per_second=1.0, burst=3)
    assert [(await limiter.hit("k", rate)).allowed for _ in range(4)] == [True, True, True, False]
    refused = await limiter.hit("k", rate)
    assert 0 < refused.retry_after <= 1.0
    assert (await limiter.hit("other", rate)).allowed


async def test_peek_takes_nothing_and_reset_refills(limiter: RateLimiter) -> None:
    rate = Rate(per_second=0.001, burst=1)
    assert (await limiter.peek("k", rate)).allowed
    assert (await limiter.hit("k", rate)).allowed
    assert not (await limiter.peek("k", rate)).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k", rate)).allowed


async def test_refills_over_time(limiter: RateLimiter) -> None:
    rate = Rate(per_second=50.0, burst=1)
    assert (await limiter.hit("k", rate)).allowed
    refused = await limiter.hit("k", rate)
    assert not refused.allowed
    await asyncio.sleep(refused.retry_after + 0.02)  # the bucket promised a token by then
    assert (await limiter.hit("k", rate)).allowed


async def test_concurrent_hits_never_exceed_the_burst(limiter: RateLimiter) -> None:
    rate = Rate(per_second=0.001, burst=10)
    decisions = await asyncio.gather(*(limiter.hit("shared", rate) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10


async def test_memory_limiter_is_bounded() -> None:
    limiter = MemoryRateLimiter(max_keys=10)
    for i in range(100):
        await limiter.hit(f"k{i}", Rate(1, 1))
    assert len(limiter._buckets) == 10
