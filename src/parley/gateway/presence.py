"""Presence: online / away / offline per user, over every session on every node.

A user is **online** while any of their sessions is connected and not away, **away** when
every connected session said ``presence.set away``, and **offline** once the last session
has been gone for ``grace_seconds`` — a reconnect within the grace (a network blip, a page
reload, a node dying and the client landing on another) changes nothing anyone sees.
Going offline stores ``users.last_seen_at``.

This class keeps the sessions of *this* node and writes their counts to a
:class:`~parley.presence.base.PresenceStore` (in-process, or Redis shared by all
nodes), which combines every node's counts and says when a user's status changes. Entries
live for ``ttl_seconds`` and are rewritten every heartbeat (a third of the TTL); a node
that dies stops rewriting, so its users go offline by themselves within the TTL. Every
node sweeps expired entries — the store reports each change to exactly one sweeper.

Changes are pushed as ``presence.updated`` to the user's presence audience (people sharing
a conversation with them and accepted contacts, never blocked users; see ``queries``) and
to the user's own other sessions, through the bus, so they reach every node.

Writes go through one writer task: sessions that open or close never wait for the store
(a slow or unreachable Redis must not hold up ``identify``), writes for one user land in
order, and a burst of connections (a node's clients all coming back) becomes a few batched
writes. A write that fails is retried; presence is best effort and heals at the next
heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from parley.background import cancel_and_wait
from parley.clock import isoformat, utcnow
from parley.gateway.typing_indicators import Publisher
from parley.presence.base import Change, Entry, PresenceStatus, PresenceStore
from parley.wire.events import EventType, PresencePayload

log = logging.getLogger(__name__)

Audience = Callable[[str], Awaitable[set[str]]]
LastSeenWriter = Callable[[Sequence[str], datetime], Awaitable[None]]

__all__ = ["Presence"]

# After a failed write, wait this long before trying again (Redis is probably down).
RETRY_SECONDS = 1.0
# Store calls at shutdown are bounded: the node is leaving either way.
CLOSE_TIMEOUT_SECONDS = 2.0
# Warnings about an unreachable store are logged at most this often.
WARN_EVERY_SECONDS = 5.0


class Presence:
    def __init__(
        self,
        publisher: Publisher,
        audience: Audience,
        record_last_seen: LastSeenWriter,
        store: PresenceStore,
        *,
        grace_seconds: float,
        ttl_seconds: float,
        sweep_seconds: float,
    ) -> None:
        self._publisher = publisher
        self._audience = audience
        self._record_last_seen = record_last_seen
        self._store = store
        self._grace = grace_seconds
        self._ttl = ttl_seconds
        self._sweep = sweep_seconds
        self._sessions: dict[str, dict[str, PresenceStatus]] = {}
        # Users whose entry must be written; the audience read at identify, if any, saves
        # a query when that write turns out to announce them online.
        self._dirty: dict[str, set[str] | None] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._announcing: set[asyncio.Task[None]] = set()
        self._latest: dict[str, asyncio.Task[None]] = {}  # each user's last announcement
        self._last_warning = 0.0

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._write_loop(), name="presence-writer"),
                asyncio.create_task(self._maintain(), name="presence-heartbeat"),
            ]

    async def snapshot(self, user_ids: Iterable[str]) -> list[PresencePayload]:
        """Who of ``user_ids`` is online or away now, on any node (for ``ready``)."""
        try:
            statuses = await self._store.statuses(set(user_ids))
        except Exception as exc:  # noqa: BLE001 - best effort: ready goes out without it
            self._warn("presence snapshot failed", exc)
            return []
        return [
            PresencePayload(user_id=user_id, status=statuses[user_id].value, last_seen_at=None)
            for user_id in sorted(statuses)
        ]

    async def connect(
        self, user_id: str, connection_id: str, audience: set[str] | None = None
    ) -> None:
        self._sessions.setdefault(user_id, {})[connection_id] = PresenceStatus.ONLINE
        self._mark(user_id, audience)

    async def set_status(self, user_id: str, connection_id: str, status: PresenceStatus) -> None:
        sessions = self._sessions.get(user_id)
        if sessions is None or connection_id not in sessions:
            return
        sessions[connection_id] = status
        self._mark(user_id)

    async def disconnect(self, user_id: str, connection_id: str) -> None:
        sessions = self._sessions.get(user_id)
        if sessions is None or sessions.pop(connection_id, None) is None:
            return
        if not sessions:
            del self._sessions[user_id]  # the write below leaves an entry for the grace
        self._mark(user_id)

    # --- writing

    def _mark(self, user_id: str, audience: set[str] | None = None) -> None:
        known = self._dirty.get(user_id)
        self._dirty[user_id] = audience if audience is not None else known
        self._wake.set()

    def _entry(self, user_id: str) -> Entry:
        """This node's entry for ``user_id``, from its sessions *now*."""
        sessions = self._sessions.get(user_id)
        if not sessions:
            return Entry(0, 0, self._grace)  # the grace period; 0 removes it at once
        online = sum(status is PresenceStatus.ONLINE for status in sessions.values())
        return Entry(online, len(sessions) - online, self._ttl)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            if not dirty:
                continue
            entries = {user_id: self._entry(user_id) for user_id in dirty}
            try:
                changes = await self._store.put(entries)
            except Exception as exc:  # noqa: BLE001 - Redis away: retry, heal at heartbeat
                self._warn("presence write failed; retrying", exc)
                for user_id, audience in dirty.items():
                    if user_id not in self._dirty:
                        self._dirty[user_id] = audience
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()
                continue
            for change in changes:
                self._spawn(change, dirty.get(change.user_id))

    async def _maintain(self) -> None:
        """Heartbeat this node's entries; sweep everyone's expired ones."""
        heartbeat = self._ttl / 3
        next_beat = time.monotonic() + heartbeat
        while True:
            await asyncio.sleep(min(self._sweep, heartbeat))
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + heartbeat
                for user_id in self._sessions:
                    self._mark(user_id)
            try:
                changes = await self._store.expire()
            except Exception as exc:  # noqa: BLE001 - Redis away: sweep again next time
                self._warn("presence sweep failed", exc)
                continue
            for change in changes:
                self._spawn(change, None)

    def _spawn(self, change: Change, audience: set[str] | None) -> None:
        """Announce ``change`` in the background, after the user's previous change: two
        quick changes (away, then online) must not reach anyone in the wrong order."""
        previous = self._latest.get(change.user_id)
        task = asyncio.create_task(self._handle(change, audience, previous))
        self._latest[change.user_id] = task
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)
        task.add_done_callback(lambda done: self._forget(change.user_id, done))

    def _forget(self, user_id: str, task: asyncio.Task[None]) -> None:
        if self._latest.get(user_id) is task:
            del self._latest[user_id]

    async def _handle(
        self, change: Change, audience: set[str] | None, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        last_seen_at: str | None = None
        if change.status is PresenceStatus.OFFLINE:
            now = utcnow()
            last_seen_at = isoformat(now)
            try:
                await self._record_last_seen([change.user_id], now)
            except Exception:  # presence is best effort; the next disconnect writes it again
                log.exception("could not store last_seen_at", extra={"user_id": change.user_id})
        await self._announce(change.user_id, change.status, last_seen_at, audience)

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
                EventType.PRESENCE_UPDATED, data, user_ids=sorted(people | {user_id})
            )
        except Exception:
            log.exception("presence update failed", extra={"user_id": user_id})

    def _warn(self, message: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            log.warning(message, extra={"error": f"{type(exc).__name__}: {exc}"})

    async def close(self) -> None:
        """Shutdown: this node's users keep their entries for the grace period only (they
        reconnect elsewhere, or another node's sweep announces them offline), and everyone
        still here was last seen now. No events: no session is left here to receive them."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
        users = set(self._sessions) | set(self._dirty)
        self._sessions.clear()
        self._dirty.clear()
        if self._announcing:
            await asyncio.gather(*self._announcing, return_exceptions=True)
        if not users:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._store.put({user_id: Entry(0, 0, self._grace) for user_id in users}),
                CLOSE_TIMEOUT_SECONDS,
            )
        try:
            await self._record_last_seen(sorted(users), utcnow())
        except Exception:
            log.exception("could not store last_seen_at at shutdown")
