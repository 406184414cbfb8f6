"""The ``RateLimiter`` on Redis: token buckets and backoff counters, each decision one Lua
script, so the check and the count are one atomic step across every node. ``hit_many`` is
one script for all its buckets (one round trip for a send's two), except on a Redis
Cluster when its keys lie on different slots: a script may touch one slot only, so there
each key is its own script, in turn, with the same outcome.

The script reads Redis's own clock (``TIME``), so nodes with skewed clocks still share one
consistent bucket. Idle buckets expire once they would be full again.

With a ``fallback`` limiter, an unreachable Redis does not fail the request being limited:
for ``fallback_seconds`` after a Redis error every decision comes from the fallback (a
per-node bucket, so limits hold per node instead of cluster-wide), then Redis is tried
again. Without one, Redis errors propagate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

from parley.security.ratelimit import ALLOWED, Backoff, Decision, Rate, RateLimiter

log = logging.getLogger(__name__)

# After a Redis error, decide locally this long before trying Redis again: one slow
# failure per period instead of one per request while Redis is down.
FALLBACK_SECONDS = 1.0

# Each key in turn (its rate and burst at ARGV[1 + 2i], ARGV[2 + 2i]), stopping at the
# first refusal; the keys before it keep what they took.
TOKEN_BUCKETS = """
local cost = tonumber(ARGV[1])
local take = ARGV[2] == "1"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[1 + 2 * i])
  local burst = tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if tokens < cost then
    return {0, tostring((cost - tokens) / rate)}
  end
  if take then
    redis.call('HSET', key, 'tokens', tostring(tokens - cost), 'ts', string.format('%.6f', now))
    redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  end
end
return {1, "0"}
"""

# Shared by both backoff scripts: the key's failures, forgotten after their quiet period.
_BACKOFF_STATE = """
local free = tonumber(ARGV[1])
local base = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])
local forget = tonumber(ARGV[4])
local function delay(n)
  if n < free then return 0 end
  return math.min(ceiling, base * 2 ^ math.min(n - free, 64))
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'n', 'ts')
local n = tonumber(state[1]) or 0
local ts = tonumber(state[2]) or now
if n > 0 and now - ts >= delay(n) + forget then
  n = 0
  ts = now
end
"""

BACKOFF_ATTEMPT = _BACKOFF_STATE + """
-- delay(n) > 0 first: free attempts are never refused, even when two arrive within the
-- precision of a stored timestamp.
if n > 0 and delay(n) > 0 and now < ts + delay(n) then
  return {0, tostring(ts + delay(n) - now)}
end
-- Microseconds kept: tostring() keeps 14 significant digits and could round the stored
-- time past the next attempt's clock.
redis.call('HSET', KEYS[1], 'n', n + 1, 'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((delay(n + 1) + forget) * 1000) + 1000)
return {1, "0"}
"""

BACKOFF_REFUND = _BACKOFF_STATE + """
if n <= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'n', n - 1)
end
return 1
"""


class RedisRateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "parley:rl:",
        fallback: RateLimiter | None = None,
        fallback_seconds: float = FALLBACK_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._buckets: Any = client.register_script(TOKEN_BUCKETS)
        self._cluster = isinstance(client, RedisCluster)
        self._attempt: Any = client.register_script(BACKOFF_ATTEMPT)
        self._refund: Any = client.register_script(BACKOFF_REFUND)
        self._fallback = fallback
        self._fallback_seconds = fallback_seconds
        self._fallback_until = 0.0

    def _use_fallback(self) -> bool:
        return self._fallback is not None and time.monotonic() < self._fallback_until

    def _failed(self, exc: BaseException) -> None:
        if self._fallback is None:
            raise exc
        if not self._use_fallback():
            log.warning(
                "rate limiter cannot reach Redis; limiting per node meanwhile",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        self._fallback_until = time.monotonic() + self._fallback_seconds

    async def _call(self, hits: Sequence[tuple[str, Rate]], cost: float, take: bool) -> Decision:
        if not self._use_fallback():
            args: list[float | str] = [cost, "1" if take else "0"]
            for _, rate in hits:
                args += [rate.per_second, rate.burst]
            try:
                allowed, retry_after = await self._buckets(
                    keys=[self._prefix + key for key, _ in hits], args=args
                )
                return Decision(bool(int(allowed)), float(retry_after))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        assert self._fallback is not None
        if not take:
            ((key, rate),) = hits
            return await self._fallback.peek(key, rate, cost)
        return await self._fallback.hit_many(hits, cost)

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(((key, rate),), cost, take=True)

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], cost: float = 1.0) -> Decision:
        if self._cluster and len({key_slot((self._prefix + key).encode()) for key, _ in hits}) > 1:
            for key, rate in hits:
                decision = await self.hit(key, rate, cost)
                if not decision.allowed:
                    return decision
            return ALLOWED
        return await self._call(hits, cost, take=True)

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(((key, rate),), cost, take=False)

    @staticmethod
    def _backoff_args(backoff: Backoff) -> list[float]:
        return [backoff.free, backoff.base_seconds, backoff.max_seconds, backoff.forget_seconds]

    async def attempt(self, key: str, backoff: Backoff) -> Decision:
        if not self._use_fallback():
            try:
                allowed, retry_after = await self._attempt(
                    keys=[self._prefix + key], args=self._backoff_args(backoff)
                )
                return Decision(bool(int(allowed)), float(retry_after))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        assert self._fallback is not None
        return await self._fallback.attempt(key, backoff)

    async def refund(self, key: str, backoff: Backoff) -> None:
        if self._fallback is not None:
            await self._fallback.refund(key, backoff)
        if not self._use_fallback():
            try:
                await self._refund(keys=[self._prefix + key], args=self._backoff_args(backoff))
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def reset(self, key: str) -> None:
        if self._fallback is not None:
            await self._fallback.reset(key)
        if not self._use_fallback():
            try:
                await self._client.delete(self._prefix + key)
            except (RedisError, OSError) as exc:
                self._failed(exc)
