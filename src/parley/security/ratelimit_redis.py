"""The ``RateLimiter`` on Redis: one token bucket per key, updated atomically by a Lua script.

The script reads Redis's own clock (``TIME``), so nodes with skewed clocks still share one
consistent bucket. Idle buckets expire once they would be full again.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis

from parley.security.ratelimit import Decision, Rate

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
    def __init__(self, client: redis.Redis, *, prefix: str = "parley:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script: Any = client.register_script(TOKEN_BUCKET)

    async def _call(self, key: str, rate: Rate, cost: float, take: bool) -> Decision:
        allowed, retry_after = await self._script(
            keys=[self._prefix + key],
            args=[rate.per_second, rate.burst, cost, "1" if take else "0"],
        )
        return Decision(bool(int(allowed)), float(retry_after))

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(key, rate, cost, take=True)

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return await self._call(key, rate, cost, take=False)

    async def reset(self, key: str) -> None:
        await self._client.delete(self._prefix + key)
