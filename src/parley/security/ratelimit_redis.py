"""The ``RateLimiter`` on Redis: one token bucket per key, updated atomically by a Lua script.

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
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from parley.security.ratelimit import Decision, Rate, RateLimiter

log = logging.getLogger(__name__)

# After a Redis error, decide locally this long before trying Redis again: one slow
# failure per period instead of one per request while Redis is down.
FALLBACK_SECONDS = 1.0

TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local take = ARGV[4] == "1"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if tokens < cost then
  return {0, tostring((cost - tokens) / rate)}
end
if take then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - cost), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return {1, "0"}
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
        self._script: Any = client.register_script(TOKEN_BUCKET)
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

    async def _call(self, key: str, rate: Rate, cost: float, take: bool) -> Decision:
        if not self._use_fallback():
            try:
                allowed, retry_after = await self._script(
                    keys=[self._prefix + key],
                    args=[rate.per_second, rate.burst, cost, "1" if take else "0"],
                )
                return Decision(bool(int(allowed)), float(retry_after))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        assert self._fallback is not None
        if take:
            return await self._fallback.hit(key, rate, cost)
        return await self._fallback.peek(key, rate, cost)

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(key, rate, cost, take=True)

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(key, rate, cost, take=False)

    async def reset(self, key: str) -> None:
        if self._fallback is not None:
            await self._fallback.reset(key)
        if not self._use_fallback():
            try:
                await self._client.delete(self._prefix + key)
            except (RedisError, OSError) as exc:
                self._failed(exc)
