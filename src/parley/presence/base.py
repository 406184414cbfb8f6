"""Where presence lives: connection counts per (user, node), each entry with an expiry.

:class:`~parley.gateway.presence.Presence` keeps the sessions of *this* node; a
:class:`PresenceStore` keeps every node's counts, so that a user's combined status covers
all of their sessions on all nodes, and it decides — atomically, once for the whole
cluster — when that status changes. Whoever's write caused a change announces it.

Entries expire (DESIGN §2 "Scale-out"). A node rewrites its users' entries every heartbeat;
a node that dies stops, and its entries run out after the TTL, so its users go offline by
themselves. A user's last session on a node leaves an entry *without* sessions that runs
out after the offline grace period: a reconnect anywhere within it changes nothing.

Guarantees (``tests/contract/test_presence_store.py`` runs them against every backend):

- The combined status is ONLINE while any live entry has an online session, AWAY while
  live entries have only away sessions, unchanged while only session-less entries (grace)
  are live, and OFFLINE once no entry is live.
- Each change of a user's combined status is reported exactly once, to the one caller
  (``put`` or ``expire``, on any node) whose call caused it.
- ``statuses`` returns the last reported status of each user who is not offline.

``memory.MemoryPresenceStore`` is the single-process backend; ``redis.RedisPresenceStore``
keeps the same tables in Redis, updated by Lua scripts.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Entry:
    """One node's view of one user: its sessions by status, and how long it stays live
    without being written again (``ttl_seconds <= 0`` removes it now)."""

    online: int
    away: int
    ttl_seconds: float


@dataclass(frozen=True, slots=True)
class Change:
    user_id: str
    status: PresenceStatus


class PresenceStore(Protocol):
    async def put(self, entries: Mapping[str, Entry]) -> list[Change]:
        """Write this node's entry for each user; the changes those writes caused."""
        ...

    async def expire(self) -> list[Change]:
        """Remove every node's entries that ran out; the changes that caused."""
        ...

    async def statuses(self, user_ids: Iterable[str]) -> dict[str, PresenceStatus]:
        """The last reported status of each of ``user_ids`` who is online or away."""
        ...

    async def close(self) -> None: ...


def combine(entries: Iterable[tuple[int, int]]) -> PresenceStatus | None:
    """The combined status of live ``(online, away)`` entries; None while only entries
    without sessions are live (the grace period: nothing changes)."""
    online = away = live = 0
    for entry_online, entry_away in entries:
        live += 1
        online += entry_online
        away += entry_away
    if online > 0:
        return PresenceStatus.ONLINE
    if away > 0:
        return PresenceStatus.AWAY
    if live > 0:
        return None
    return PresenceStatus.OFFLINE
