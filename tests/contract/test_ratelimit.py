"""The ``RateLimiter`` contract, run against the in-memory and the Redis token bucket."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from parley.security.ratelimit import Backoff, MemoryRateLimiter, Rate, RateLimiter, TokenBucket
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


async def test_hit_many_takes_from_each_in_order_and_stops_at_the_first_refusal(
    limiter: RateLimiter,
) -> None:
    """As separate hits in a row would: the keys before the refusal keep what they took,
    the keys after it are not touched. (On a Redis Cluster these keys lie on different
    slots, each its own script; elsewhere one script for all.)"""
    user, conversation = Rate(per_second=0.5, burst=3), Rate(per_second=0.5, burst=1)
    send = [("send:user:u", user), ("send:conversation:c", conversation)]
    assert (await limiter.hit_many(send)).allowed
    refused = await limiter.hit_many(send)
    assert not refused.allowed and 0 < refused.retry_after <= 2.0
    # u took a token on the refused call too (3 - 2 = 1 left), as hit("u"), hit("c") would.
    assert (await limiter.hit("send:user:u", user)).allowed
    assert not (await limiter.peek("send:user:u", user)).allowed
    # Refused at its first key: the second is untouched, its burst whole.
    assert not (await limiter.hit_many([("send:conversation:c", conversation), ("send:user:v", user)])).allowed
    assert [(await limiter.hit("send:user:v", user)).allowed for _ in range(4)] == [True, True, True, False]


async def test_hit_many_shares_its_buckets_with_hit(limiter: RateLimiter) -> None:
    rate = Rate(per_second=0.001, burst=2)
    assert (await limiter.hit("a", rate)).allowed
    assert (await limiter.hit_many([("a", rate), ("b", rate)])).allowed
    assert not (await limiter.hit("a", rate)).allowed
    assert (await limiter.hit("b", rate)).allowed and not (await limiter.hit("b", rate)).allowed


async def test_concurrent_hit_many_never_exceed_either_burst(limiter: RateLimiter) -> None:
    wide, narrow = Rate(per_second=0.001, burst=10), Rate(per_second=0.001, burst=7)
    decisions = await asyncio.gather(
        *(limiter.hit_many([("send:user:shared", wide), ("send:conversation:shared", narrow)]) for _ in range(50))
    )
    assert sum(d.allowed for d in decisions) == 7
    # Each of the first 10 calls took from the user's bucket (3 of them refused after it).
    assert not (await limiter.peek("send:user:shared", wide)).allowed


async def test_memory_limiter_is_bounded() -> None:
    limiter = MemoryRateLimiter(max_keys=10)
    for i in range(100):
        await limiter.hit(f"k{i}", Rate(1, 1))
    assert limiter.size("") == 10  # keys without a purpose share one table


# --- backoff: the failed-login primitive (reserve before verifying)

BACKOFF = Backoff(free=3, base_seconds=0.2, max_seconds=0.8, forget_seconds=60)


async def test_attempts_are_reserved_atomically_under_a_burst(limiter: RateLimiter) -> None:
    """100 concurrent attempts on one key: exactly ``free`` are let through. (The old
    check-then-count let every one of them through before the first failure was counted.)
    The first wait is long here: with BACKOFF's 0.2 s, a burst slowed down by a loaded
    machine (a Redis Cluster in particular) legitimately let a fourth through once the wait
    had passed, which is not what this test is about."""
    slow = Backoff(free=3, base_seconds=30, max_seconds=60, forget_seconds=600)
    decisions = await asyncio.gather(*(limiter.attempt("burst", slow) for _ in range(100)))
    assert sum(d.allowed for d in decisions) == slow.free
    refused = [d for d in decisions if not d.allowed]
    assert all(0 < d.retry_after <= slow.base_seconds for d in refused)


async def test_free_attempts_are_never_refused_under_a_burst(limiter: RateLimiter) -> None:
    """Attempts within the free allowance all pass, however close together: the Redis
    script once stored its timestamp rounded up and refused some with retry_after 0."""
    generous = Backoff(free=10_000, base_seconds=1, max_seconds=1, forget_seconds=60)
    for _ in range(10):
        decisions = await asyncio.gather(*(limiter.attempt("free", generous) for _ in range(40)))
        assert all(d.allowed for d in decisions), [d for d in decisions if not d.allowed][:3]


async def test_backoff_doubles_up_to_its_ceiling(limiter: RateLimiter) -> None:
    backoff = Backoff(free=1, base_seconds=0.1, max_seconds=0.25, forget_seconds=60)
    assert (await limiter.attempt("k", backoff)).allowed
    waits = []
    for _ in range(3):
        refused = await limiter.attempt("k", backoff)
        assert not refused.allowed
        waits.append(refused.retry_after)
        await asyncio.sleep(refused.retry_after + 0.02)
        assert (await limiter.attempt("k", backoff)).allowed  # one more after the wait
    # 0.1 after the first free failure, then 0.2, then capped at 0.25 (not 0.4)
    assert 0.05 < waits[0] <= 0.1 and 0.15 < waits[1] <= 0.2 and 0.2 < waits[2] <= 0.25


async def test_refund_gives_one_attempt_back_and_reset_forgets(limiter: RateLimiter) -> None:
    for _ in range(BACKOFF.free):
        assert (await limiter.attempt("k", BACKOFF)).allowed
    assert not (await limiter.attempt("k", BACKOFF)).allowed
    await limiter.refund("k", BACKOFF)  # the last allowed attempt turned out to succeed
    assert (await limiter.attempt("k", BACKOFF)).allowed
    assert not (await limiter.attempt("k", BACKOFF)).allowed
    await limiter.reset("k")
    assert all([(await limiter.attempt("k", BACKOFF)).allowed for _ in range(BACKOFF.free)])
    assert (await limiter.attempt("other", BACKOFF)).allowed


async def test_failures_are_forgotten_after_a_quiet_period(limiter: RateLimiter) -> None:
    backoff = Backoff(free=1, base_seconds=0.05, max_seconds=0.05, forget_seconds=0.1)
    assert (await limiter.attempt("k", backoff)).allowed
    assert not (await limiter.attempt("k", backoff)).allowed
    await asyncio.sleep(0.05 + 0.1 + 0.05)  # the delay, then the quiet period
    # Forgotten: the free attempt is back, and the next one is refused again.
    assert (await limiter.attempt("k", backoff)).allowed
    assert not (await limiter.attempt("k", backoff)).allowed


async def test_one_purpose_cannot_evict_another() -> None:
    """Each purpose (the key's first part) has its own bounded table: a flood of one kind of
    key (anonymous socket frames) never evicts another kind's state (failed logins)."""
    limiter = MemoryRateLimiter(max_keys=100)
    for _ in range(BACKOFF.free):
        await limiter.attempt("login:user:alice", BACKOFF)
    for i in range(1_000):
        await limiter.hit(f"gateway:connection:{i}", Rate(20, 60))
    assert not (await limiter.attempt("login:user:alice", BACKOFF)).allowed
    assert limiter.size("gateway") == 100


def test_a_local_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(Rate(per_second=2, burst=3), now=0.0)
    assert [bucket.take(now=0.0).allowed for _ in range(4)] == [True, True, True, False]
    refused = bucket.take(now=0.25)  # half a token back: the next one is 0.25 s away
    assert not refused.allowed and refused.retry_after == pytest.approx(0.25)
    assert bucket.take(now=0.5).allowed
    assert not bucket.take(now=0.5).allowed
    # Idle for long: full again, never more than the burst.
    assert [bucket.take(now=100.0).allowed for _ in range(4)] == [True, True, True, False]
