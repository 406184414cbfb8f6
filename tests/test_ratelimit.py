"""The in-memory token bucket (the Redis one runs the same contract in its own module)."""

from __future__ import annotations

from parley.security.ratelimit import MemoryRateLimiter, Rate


async def test_bucket_allows_burst_then_refuses() -> None:
    limiter = MemoryRateLimiter()
    rate = Rate(per_second=1.0, burst=3)
    assert [(await limiter.hit("k", rate)).allowed for _ in range(4)] == [True, True, True, False]
    refused = await limiter.hit("k", rate)
    assert 0 < refused.retry_after <= 1.0
    assert (await limiter.hit("other", rate)).allowed


async def test_peek_takes_nothing_and_reset_refills() -> None:
    limiter = MemoryRateLimiter()
    rate = Rate(per_second=0.001, burst=1)
    assert (await limiter.peek("k", rate)).allowed
    assert (await limiter.hit("k", rate)).allowed
    assert not (await limiter.peek("k", rate)).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k", rate)).allowed


async def test_bounded_memory() -> None:
    limiter = MemoryRateLimiter(max_keys=10)
    for i in range(100):
        await limiter.hit(f"k{i}", Rate(1, 1))
    assert len(limiter._buckets) == 10
