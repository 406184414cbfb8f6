"""The in-process :class:`~parley.presence.base.PresenceStore`: the single-node default, and
the twin the contract tests run beside Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from parley.presence.base import Change, Entry, PresenceStatus, combine


@dataclass
class _Tables:
    # user → node → (online, away, expires at)
    entries: dict[str, dict[str, tuple[int, int, float]]] = field(default_factory=dict)
    announced: dict[str, PresenceStatus] = field(default_factory=dict)  # absent: offline


class MemoryPresenceStore:
    """The in-process store. Several instances can share one set of tables
    (``shared=``), one per simulated node — that is how the contract tests use it."""

    def __init__(
        self,
        node_id: str = "local",
        *,
        shared: MemoryPresenceStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node = node_id
        self._tables: _Tables = shared._tables if shared is not None else _Tables()
        self._clock: Callable[[], float] = shared._clock if shared is not None else clock

    async def put(self, entries: Mapping[str, Entry]) -> list[Change]:
        now = self._clock()
        changes: list[Change] = []
        for user_id, entry in entries.items():
            nodes = self._tables.entries.setdefault(user_id, {})
            if entry.ttl_seconds > 0:
                nodes[self._node] = (entry.online, entry.away, now + entry.ttl_seconds)
            else:
                nodes.pop(self._node, None)
            changes.extend(self._settle(user_id, now))
        return changes

    async def expire(self) -> list[Change]:
        now = self._clock()
        changes: list[Change] = []
        for user_id, nodes in list(self._tables.entries.items()):
            if any(expires <= now for _, _, expires in nodes.values()):
                changes.extend(self._settle(user_id, now))
        return changes

    async def statuses(self, user_ids: Iterable[str]) -> dict[str, PresenceStatus]:
        announced = self._tables.announced
        return {user_id: announced[user_id] for user_id in user_ids if user_id in announced}

    async def close(self) -> None:
        pass

    def _settle(self, user_id: str, now: float) -> list[Change]:
        nodes = self._tables.entries.get(user_id, {})
        for node, (_, _, expires) in list(nodes.items()):
            if expires <= now:
                del nodes[node]
        if not nodes:
            self._tables.entries.pop(user_id, None)
        status = combine((online, away) for online, away, _ in nodes.values())
        if status is None:
            return []
        previous = self._tables.announced.get(user_id, PresenceStatus.OFFLINE)
        if status is previous:
            return []
        if status is PresenceStatus.OFFLINE:
            del self._tables.announced[user_id]
        else:
            self._tables.announced[user_id] = status
        return [Change(user_id, status)]
