"""Sessions recently found open, so that a client making many requests is not checked
against the database on every one of them.

An authenticated request checks that its session is open and its user active (``Auth``).
That read was a fifth of a REST send's time. A session found open is trusted again for
``ttl`` seconds (``PARLEY_SESSION_CHECK_CACHE_SECONDS``, 1 by default; 0 turns it off):

- a revocation made on this node (``Auth.revoke``: logout, logout everywhere, password
  change, deactivation, erasure, a reused refresh token) evicts the session at once, before
  it is announced: the next request on this node is refused, as before;
- one made elsewhere (another node, ``parley`` commands in another process) is seen here
  within ``ttl``: the bound of what this cache trades (docs/security.md).

Bounded: past ``max_entries`` the oldest entry goes. An entry matches only the user it was
found open for: a token naming another user's session never matches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime


class SessionCache:
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        # session_id → (its user, when it was found open, its last_used_at); oldest first.
        self._entries: dict[str, tuple[str, float, datetime]] = {}
        self.evictions = 0  # read before a check: an eviction during the read voids it


    def now(self) -> float:
        """Read before the database is asked: an entry's age counts from then."""
        return self._clock()

    def last_used_at(self, session_id: str, user_id: str) -> datetime | None:
        """The session's ``last_used_at`` if it was found open, as ``user_id``'s, less than
        ``ttl`` ago."""
        entry = self._entries.get(session_id)
        if entry is None or entry[0] != user_id:
            return None
        if self._clock() - entry[1] >= self._ttl:
            del self._entries[session_id]
            return None
        return entry[2]

    def found_open(
        self,
        session_id: str,
        user_id: str,
        last_used_at: datetime,
        *,
        asked_at: float,
        evictions_before: int,
    ) -> None:
        """Remember a session the database found open when asked at ``asked_at`` (``now()``
        before the read: a slow read does not lengthen the trust) — unless a revocation was
        evicted while it was being read (the read may predate that revocation's commit)."""
        if self._ttl <= 0 or self.evictions != evictions_before:
            return
        self._entries.pop(session_id, None)  # re-inserted last: the oldest stay first
        self._entries[session_id] = (user_id, asked_at, last_used_at)
        # Expired entries leave from the front (oldest first), past the bound the oldest too.
        expired = self._clock() - self._ttl
        while self._entries:
            oldest = next(iter(self._entries))
            if len(self._entries) <= self._max_entries and self._entries[oldest][1] > expired:
                break
            del self._entries[oldest]

    def used(self, session_id: str, last_used_at: datetime) -> None:
        """The session's ``last_used_at`` moved on (written); its check keeps its age."""
        entry = self._entries.get(session_id)
        if entry is not None:
            self._entries[session_id] = (entry[0], entry[1], last_used_at)

    def evict(self, session_ids: Iterable[str]) -> None:
        """Forget sessions just revoked: their next request reads the database."""
        self.evictions += 1
        for session_id in session_ids:
            self._entries.pop(session_id, None)
