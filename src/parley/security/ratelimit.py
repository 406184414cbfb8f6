"""Rate limiting: the ``RateLimiter`` interface and its in-memory token bucket.

A Redis implementation (one atomic Lua script per hit) lives beside it for scale-out; both
pass the same contract tests. Keys are namespaced by the caller (``"send:user:<id>"``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: ``per_second`` tokens refill continuously up to ``burst``."""

    per_second: float
    burst: int

    @classmethod
    def per_window(cls, count: int, window_seconds: float) -> Rate:
        return cls(per_second=count / window_seconds, burst=count)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens if available. Atomic per key; never blocks."""
        ...

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Would ``hit`` succeed? Takes nothing."""
        ...

    async def reset(self, key: str) -> None:
        """Refill the bucket (for example after a successful login)."""
        ...


class MemoryRateLimiter:
    """Token buckets in a bounded LRU map: an idle key simply falls out when space is needed."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys

    def _level(self, key: str, rate: Rate, now: float) -> float:
        tokens, updated = self._buckets.get(key, (float(rate.burst), now))
        return min(float(rate.burst), tokens + (now - updated) * rate.per_second)

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        now = time.monotonic()
        tokens = self._level(key, rate, now)
        if tokens < cost:
            return Decision(False, (cost - tokens) / rate.per_second)
        self._buckets[key] = (tokens - cost, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return Decision(True)

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        tokens = self._level(key, rate, time.monotonic())
        if tokens < cost:
            return Decision(False, (cost - tokens) / rate.per_second)
        return Decision(True)

    async def reset(self, key: str) -> None:
        self._buckets.pop(key, None)
