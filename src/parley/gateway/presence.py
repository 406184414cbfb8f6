"""Presence: online / away / offline per user, from the sessions on this node.

A user is **online** while any of their sessions is connected and not away, **away** when
every connected session said ``presence.set away``, and **offline** once the last session
has been gone for ``grace_seconds`` — a reconnect within the grace (a network blip, a page
reload) changes nothing anyone sees. Going offline stores ``users.last_seen_at``.

Changes are pushed as ``presence.updated`` to the user's presence audience (people sharing
a conversation with them and accepted contacts, never blocked users; see ``queries``) and
to the user's own other sessions. Only changes of the combined status are pushed.

This is the single-node tracker. With Redis, the per-user connection counts move to Redis
with TTL heartbeats (DESIGN §2 "Scale-out") and this class keeps the same interface.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from parley.clock import isoformat, utcnow
from parley.gateway.protocol import PresenceData
from parley.gateway.typing_indicators import Publisher

log = logging.getLogger(__name__)

Audience = Callable[[str], Awaitable[set[str]]]
LastSeenWriter = Callable[[Sequence[str], datetime], Awaitable[None]]


class PresenceStatus(enum.Enum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Presence:
    def __init__(
        self,
        publisher: Publisher,
        audience: Audience,
        record_last_seen: LastSeenWriter,
        *,
        grace_seconds: float,
    ) -> None:
        self._publisher = publisher
        self._audience = audience
        self._record_last_seen = record_last_seen
        self._grace = grace_seconds
        self._sessions: dict[str, dict[str, PresenceStatus]] = {}
        self._announced: dict[str, PresenceStatus] = {}  # absent: offline
        self._offline_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def status(self, user_id: str) -> PresenceStatus:
        return self._announced.get(user_id, PresenceStatus.OFFLINE)

    def snapshot(self, user_ids: Iterable[str]) -> list[PresenceData]:
        """Who of ``user_ids`` is online or away now (for ``ready``)."""
        return [
            PresenceData(user_id=user_id, status=self.status(user_id).value, last_seen_at=None)
            for user_id in sorted(set(user_ids))
            if self.status(user_id) is not PresenceStatus.OFFLINE
        ]

    async def connect(
        self, user_id: str, connection_id: str, audience: set[str] | None = None
    ) -> None:
        timer = self._offline_timers.pop(user_id, None)
        if timer is not None:
            timer.cancel()
        self._sessions.setdefault(user_id, {})[connection_id] = PresenceStatus.ONLINE
        await self._settle(user_id, audience)

    async def set_status(self, user_id: str, connection_id: str, status: PresenceStatus) -> None:
        sessions = self._sessions.get(user_id)
        if sessions is None or connection_id not in sessions:
            return
        sessions[connection_id] = status
        await self._settle(user_id)

    async def disconnect(self, user_id: str, connection_id: str) -> None:
        sessions = self._sessions.get(user_id)
        if sessions is None or sessions.pop(connection_id, None) is None:
            return
        if sessions:
            await self._settle(user_id)  # the remaining sessions may all be away
            return
        del self._sessions[user_id]
        loop = asyncio.get_running_loop()
        self._offline_timers[user_id] = loop.call_later(self._grace, self._grace_over, user_id)

    def _combined(self, user_id: str) -> PresenceStatus:
        sessions = self._sessions.get(user_id)
        if not sessions:
            return PresenceStatus.OFFLINE
        if any(status is PresenceStatus.ONLINE for status in sessions.values()):
            return PresenceStatus.ONLINE
        return PresenceStatus.AWAY

    async def _settle(self, user_id: str, audience: set[str] | None = None) -> None:
        status = self._combined(user_id)
        if status is PresenceStatus.OFFLINE or status is self.status(user_id):
            return
        self._announced[user_id] = status
        await self._announce(user_id, status, None, audience)

    def _grace_over(self, user_id: str) -> None:
        self._offline_timers.pop(user_id, None)
        task = asyncio.create_task(self._go_offline(user_id), name="presence-offline")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _go_offline(self, user_id: str) -> None:
        if user_id in self._sessions:
            return
        now = utcnow()
        try:
            await self._record_last_seen([user_id], now)
        except Exception:  # presence is best effort; the next disconnect writes it again
            log.exception("could not store last_seen_at", extra={"user_id": user_id})
        if user_id in self._sessions:
            return  # came back while last_seen was written: still online, nothing to say
        self._announced.pop(user_id, None)
        await self._announce(user_id, PresenceStatus.OFFLINE, isoformat(now))

    async def _announce(
        self,
        user_id: str,
        status: PresenceStatus,
        last_seen_at: str | None,
        audience: set[str] | None = None,
    ) -> None:
        try:
            people = audience if audience is not None else await self._audience(user_id)
            data: dict[str, Any] = {
                "user_id": user_id,
                "status": status.value,
                "last_seen_at": last_seen_at,
            }
            await self._publisher.publish(
                "presence.updated", data, user_ids=sorted(people | {user_id})
            )
        except Exception:
            log.exception("presence update failed", extra={"user_id": user_id})

    async def close(self) -> None:
        """Shutdown: everyone still here (or in their grace period) was last seen now.
        No events: no session is left on this node to receive them."""
        for timer in self._offline_timers.values():
            timer.cancel()
        users = set(self._sessions) | set(self._offline_timers)
        self._offline_timers.clear()
        self._sessions.clear()
        self._announced.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if users:
            try:
                await self._record_last_seen(sorted(users), utcnow())
            except Exception:
                log.exception("could not store last_seen_at at shutdown")
