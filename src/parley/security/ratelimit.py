"""Rate limiting: the ``RateLimiter`` interface and its in-memory implementation.

Two primitives, both atomic per key (a decision and its count are one step, so concurrent
requests can never all pass a check made before any of them was counted):

- **token buckets** (``hit``): steady rates with a burst — API calls, sends, socket frames;
  ``hit_many`` takes from several buckets in one step (a send counts against its sender and
  its conversation: one Redis round trip, not two);
- **backoff** (``attempt``): failures counted *before* the outcome is known, each one past
  the free allowance doubling the wait for the next — failed logins. The caller reserves
  an attempt, does the expensive check (the password hash), and ``refund``\\s the attempt
  when it succeeded.

A Redis implementation (one Lua script per decision) lives beside it for scale-out; both
pass the same contract tests. Keys are namespaced by the caller, purpose first
(``"send:user:<id>"``, ``"login:user:<name>"``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

# Keys each purpose may hold in memory. A token bucket that falls out is simply full
# again; 100,000 idle keys of one purpose cost about 20 MB.
MAX_KEYS_PER_PURPOSE = 100_000

State = TypeVar("State")


@dataclass(frozen=True, slots=True)
class Rate:
    """A token bucket: ``per_second`` tokens refill continuously up to ``burst``."""

    per_second: float
    burst: int

    @classmethod
    def per_window(cls, count: int, window_seconds: float) -> Rate:
        return cls(per_second=count / window_seconds, burst=count)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Failures allowed freely, then exponentially spaced: after ``free`` counted failures
    the next attempt waits ``base_seconds``, the one after twice that, and so on up to
    ``max_seconds``. Failures are forgotten once the key stays quiet for ``forget_seconds``
    after its last wait ended."""

    free: int
    base_seconds: float
    max_seconds: float
    forget_seconds: float

    def delay(self, failures: int) -> float:
        """How long after the last counted failure the next attempt must wait."""
        if failures < self.free:
            return 0.0
        exponent = min(failures - self.free, 64)  # 2**64 × any base is past any ceiling
        return min(self.max_seconds, self.base_seconds * 2.0**exponent)

    def ttl(self, failures: int) -> float:
        """How long a key with ``failures`` must be remembered."""
        return self.delay(failures) + self.forget_seconds


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0


ALLOWED = Decision(True)


class TokenBucket:
    """One token bucket held by its owner (a socket's frame rate): no key, no table, no
    round trip. For a limit on something that lives in one process and one object — a
    connection's frames never need another node's view, nor Redis."""

    __slots__ = ("_rate", "_tokens", "_updated")

    def __init__(self, rate: Rate, now: float | None = None) -> None:
        self._rate = rate
        self._tokens = float(rate.burst)
        self._updated = time.monotonic() if now is None else now

    def take(self, cost: float = 1.0, now: float | None = None) -> Decision:
        """Take ``cost`` tokens if available (as ``RateLimiter.hit``, synchronously)."""
        current = time.monotonic() if now is None else now
        rate = self._rate
        tokens = min(float(rate.burst), self._tokens + (current - self._updated) * rate.per_second)
        self._updated = current
        if tokens < cost:
            self._tokens = tokens
            return Decision(False, (cost - tokens) / rate.per_second)
        self._tokens = tokens - cost
        return ALLOWED


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens if available. Atomic per key; never blocks."""
        ...

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], cost: float = 1.0) -> Decision:
        """``hit`` each ``(key, rate)`` in order, stopping at the first refusal, whose
        decision is returned: the keys before it keep what they took, exactly as separate
        hits in a row. One step for all of them where the backend can (one round trip)."""
        ...

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        """Would ``hit`` succeed? Takes nothing."""
        ...

    async def attempt(self, key: str, backoff: Backoff) -> Decision:
        """Reserve one attempt: refused while the key is waiting out its backoff; otherwise
        counted as a failure at once (atomically with the decision) and allowed."""
        ...

    async def refund(self, key: str, backoff: Backoff) -> None:
        """Take back one counted attempt (it succeeded, or a sibling key refused it)."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the key: a full bucket, no failures."""
        ...


class _Tables(Generic[State]):
    """Bounded LRU tables of one kind of state, one table per purpose (the key's first
    ``:``-separated part)."""

    def __init__(self, max_keys: int) -> None:
        self._tables: dict[str, OrderedDict[str, State]] = {}
        self._max_keys = max_keys

    def table(self, key: str) -> OrderedDict[str, State]:
        """The table ``key`` belongs to: read it and :meth:`put_in` it with one lookup."""
        purpose, separator, _ = key.partition(":")
        return self._tables.setdefault(purpose if separator else "", OrderedDict())

    def get(self, key: str) -> State | None:
        return self.table(key).get(key)

    def put(self, key: str, value: State) -> None:
        self.put_in(self.table(key), key, value)

    def put_in(self, table: OrderedDict[str, State], key: str, value: State) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._max_keys:
            table.popitem(last=False)  # the least recently used key of this purpose only

    def pop(self, key: str) -> None:
        self.table(key).pop(key, None)

    def size(self, purpose: str) -> int:
        return len(self._tables.get(purpose, ()))


class MemoryRateLimiter:
    """Buckets and failure counts in bounded LRU tables, one per purpose: one kind of
    traffic — anonymous socket frames, say — can only ever evict its own kind's idle state,
    never another's (failed logins, API limits)."""

    def __init__(self, max_keys: int = MAX_KEYS_PER_PURPOSE) -> None:
        self._buckets: _Tables[tuple[float, float]] = _Tables(max_keys)  # (tokens, updated)
        self._failures: _Tables[tuple[int, float]] = _Tables(max_keys)  # (failures, last)

    def size(self, purpose: str) -> int:
        """Keys held for ``purpose`` (both kinds of state)."""
        return self._buckets.size(purpose) + self._failures.size(purpose)

    # --- token buckets

    @staticmethod
    def _level(held: tuple[float, float] | None, rate: Rate, now: float) -> float:
        """The tokens a bucket holds now, given its stored (tokens, updated) if any."""
        if held is None:
            return float(rate.burst)
        tokens, updated = held
        return min(float(rate.burst), tokens + (now - updated) * rate.per_second)

    def _take(self, key: str, rate: Rate, cost: float, now: float) -> Decision:
        # One table lookup for the read and the write: two of these run for every send.
        table = self._buckets.table(key)
        tokens = self._level(table.get(key), rate, now)
        if tokens < cost:
            return Decision(False, (cost - tokens) / rate.per_second)
        self._buckets.put_in(table, key, (tokens - cost, now))
        return ALLOWED

    async def hit(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        return self._take(key, rate, cost, time.monotonic())

    async def hit_many(self, hits: Sequence[tuple[str, Rate]], cost: float = 1.0) -> Decision:
        now = time.monotonic()
        for key, rate in hits:
            decision = self._take(key, rate, cost, now)
            if not decision.allowed:
                return decision
        return ALLOWED

    async def peek(self, key: str, rate: Rate, cost: float = 1.0) -> Decision:
        tokens = self._level(self._buckets.get(key), rate, time.monotonic())
        if tokens < cost:
            return Decision(False, (cost - tokens) / rate.per_second)
        return Decision(True)

    # --- backoff

    def _counted(self, key: str, backoff: Backoff, now: float) -> tuple[int, float]:
        failures, last = self._failures.get(key) or (0, now)
        if failures and now - last >= backoff.ttl(failures):
            return 0, now  # forgotten
        return failures, last

    async def attempt(self, key: str, backoff: Backoff) -> Decision:
        now = time.monotonic()
        failures, last = self._counted(key, backoff, now)
        ready_at = last + backoff.delay(failures)
        if failures and now < ready_at:
            return Decision(False, ready_at - now)
        self._failures.put(key, (failures + 1, now))
        return Decision(True)

    async def refund(self, key: str, backoff: Backoff) -> None:
        failures, last = self._counted(key, backoff, time.monotonic())
        if failures <= 1:
            self._failures.pop(key)
        else:
            self._failures.put(key, (failures - 1, last))

    async def reset(self, key: str) -> None:
        self._buckets.pop(key)
        self._failures.pop(key)
