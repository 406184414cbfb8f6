"""The :class:`Gateway`: one node's real-time side, composed from the parts beside it.

It owns the hub (local sessions), the router (service events → bus), presence, typing and
the set of live connections, and it runs the bus. ``app`` builds one per process from the
services it calls (:class:`~parley.gateway.ports.GatewayServices`), starts it in the
lifespan and closes it on shutdown: every session gets 1001 before the services flush and
close (DESIGN §2 "Real-time gateway protocol").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

from parley.bus.base import Envelope
from parley.config import Settings
from parley.errors import ParleyError, SessionRevoked
from parley.gateway.connection import Connection
from parley.gateway.connection_host import ConnectionLimits, ConnectionState, Socket
from parley.gateway.handlers import Handlers
from parley.gateway.hub import Hub
from parley.gateway.metrics import GatewayMetrics
from parley.gateway.origins import OriginPolicy
from parley.gateway.outbox import Flusher
from parley.gateway.ports import GatewayServices
from parley.gateway.presence import Presence
from parley.gateway.presence_intro import PresenceIntroductions
from parley.gateway.router import EventRouter
from parley.gateway.typing_indicators import TypingTracker
from parley.ids import new_id
from parley.security.ratelimit import Rate
from parley.services.auth import Principal
from parley.services.realtime_reads import member_conversation_ids_of
from parley.wire.codes import CloseCode
from parley.wire.events import EventType

log = logging.getLogger("parley.gateway")

# How long shutdown waits for sessions to take their 1001 before moving on; uvicorn then
# drops whatever is left. Short: clients reconnect elsewhere and resume from their seq.
GO_AWAY_TIMEOUT_SECONDS = 3.0
# How often deadlines (identify, heartbeat, token expiry) are checked: one task walking all
# connections beats a timer per connection (10,000 connections would be 10,000 wakeups/s).
# At most this often, and at least four times per identify timeout and per heartbeat
# interval, so a deadline is enforced within a quarter of itself. Walking 10,000 idle
# connections every 0.25 s was a third of an idle node's CPU (docs/benchmarks.md).
SWEEP_INTERVAL_SECONDS = 1.0
# After a bus gap, sessions are closed (4011) this many at a time, this far apart: a
# reconnecting session costs a few database reads, and 10,000 at once would be a stampede.
RESYNC_SLICE = 500
RESYNC_PAUSE_SECONDS = 0.5


def limits_from(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        identify_timeout_seconds=settings.gateway_identify_timeout_seconds,
        heartbeat_interval_seconds=settings.gateway_heartbeat_interval_ms / 1000,
        max_frame_bytes=settings.gateway_max_frame_bytes,
        outbox_limit=settings.gateway_outbox_limit,
        close_timeout_seconds=settings.gateway_close_timeout_seconds,
        frame_rate=Rate(settings.gateway_frame_rate_per_second, settings.gateway_frame_burst),
        rate_limit_strikes=settings.gateway_rate_limit_strikes,
    )


class Gateway:
    def __init__(self, services: GatewayServices) -> None:
        settings = services.settings
        self.services = services
        self.limits = limits_from(settings)
        self.bus = services.bus
        self.hub = Hub(self.bus)
        self.flusher = Flusher()
        self.router = EventRouter(
            self.bus, receipt_window_seconds=settings.gateway_receipt_throttle_ms / 1000
        )
        self.typing = TypingTracker(self.router)
        self.presence = Presence(
            self.router,
            services.reads.presence_audience,
            services.reads.record_last_seen,
            services.presence_store,
            grace_seconds=settings.presence_offline_grace_seconds,
            ttl_seconds=settings.presence_ttl_seconds,
            sweep_seconds=settings.presence_sweep_interval_seconds,
        )
        self.introductions = PresenceIntroductions(
            self.presence,
            self.router,
            services.reads.presence_audience,
            services.reads.conversation_member_ids,
        )
        self.reads = services.reads
        self.handlers = Handlers(services, self.typing, self.presence)
        # Each live connection, with the future go_away waits on for it (made only then:
        # an idle connection should not hold an event of its own).
        self._connections: dict[Connection, asyncio.Future[None] | None] = {}
        self.origins = OriginPolicy(
            settings.allowed_origins,
            public_url=settings.public_url,
            cors_origins=settings.cors_origins,
        )
        self._max_sockets_per_user = settings.gateway_max_sockets_per_user
        self._sockets_by_user: dict[str, int] = {}
        self._accepting = False
        self._logged_refusing = False
        self._sweeper: asyncio.Task[None] | None = None
        # Last: the registry reads the stats once as the collector registers.
        self.metrics = GatewayMetrics(services.metrics, self)

    # --- lifecycle

    async def start(self) -> None:
        await self.bus.start(self._deliver, self.resync)
        await self.presence.start()
        self.services.events.add_listener(self.router)
        self.services.events.add_listener(self.introductions)
        self._sweeper = asyncio.create_task(self._sweep(), name="gateway-sweeper")
        self._accepting = True
        self._logged_refusing = False  # refused before it started: log the stop's too

    async def _sweep(self) -> None:
        interval = min(
            SWEEP_INTERVAL_SECONDS,
            self.limits.identify_timeout_seconds / 4,
            self.limits.heartbeat_interval_seconds / 4,
        )
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in list(self._connections):
                connection.check_deadlines(now)

    async def go_away(self, timeout: float = GO_AWAY_TIMEOUT_SECONDS) -> None:
        """Stop accepting sessions and close every one with 1001 (calls in progress finish
        first, so what was committed is acknowledged)."""
        self._accepting = False
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[None]] = []
        for connection, done in list(self._connections.items()):
            if done is None:
                done = self._connections[connection] = loop.create_future()
            waiters.append(done)
            connection.close(CloseCode.GOING_AWAY, "server going away")
        if waiters:
            await asyncio.wait(waiters, timeout=timeout)

    async def resync(self) -> None:
        """The bus lost envelopes (Redis went away and came back): every session may have
        missed events, so each is closed with 4011 and resumes by seq on reconnecting.
        In slices, so that a node's clients do not all come back in the same instant (the
        clients' jittered backoff spreads them further)."""
        connections = [
            connection
            for connection in self._connections
            if connection.state in (ConnectionState.IDENTIFYING, ConnectionState.READY)
        ]
        log.warning("bus gap: sessions resume", extra={"sessions": len(connections)})
        for start in range(0, len(connections), RESYNC_SLICE):
            if start:
                await asyncio.sleep(RESYNC_PAUSE_SECONDS)
            for connection in connections[start : start + RESYNC_SLICE]:
                connection.close(CloseCode.RESYNC, "missed events: resume")

    async def close(self) -> None:
        await self.go_away()
        await self.reads.close()  # after go_away: no session identifies any more
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        with contextlib.suppress(ValueError):  # never started
            self.services.events.remove_listener(self.router)
        with contextlib.suppress(ValueError):
            self.services.events.remove_listener(self.introductions)
        await self.introductions.close()
        await self.router.close()
        await self.typing.close()
        await self.presence.close()
        await self.bus.close()

    async def _deliver(self, envelope: Envelope) -> None:
        """The bus handler: revoked sessions lose their sockets first, then the hub fans
        the envelope out (the user's other sessions see which sessions ended)."""
        if envelope.type == EventType.SESSION_REVOKED:
            revoked = set(json.loads(envelope.frame)["data"]["session_ids"])
            for connection in list(self._connections):
                if connection.session_id in revoked:
                    connection.close(CloseCode.AUTHENTICATION_FAILED, SessionRevoked.code)
        await self.hub.deliver(envelope)

    # --- connections

    async def serve(self, socket: Socket) -> None:
        """Run one accepted WebSocket until it closes."""
        if not self._accepting:
            # Counted with the other closes; logged once, not once per socket (a reconnect
            # storm into a stopping node would be thousands of lines).
            self.metrics.closes.labels(str(CloseCode.GOING_AWAY.value)).inc()
            if not self._logged_refusing:
                self._logged_refusing = True
                log.info("gateway refusing new sockets: not started or stopping", extra={"client": socket.client})
            await socket.close(CloseCode.GOING_AWAY, "server going away")
            return
        connection = Connection(socket, self, new_id())
        self._connections[connection] = None
        try:
            await connection.run()
        finally:
            done = self._connections.pop(connection, None)
            if connection.holds_slot:
                self._release_slot(connection.user_id)
            if done is not None and not done.done():
                done.set_result(None)
            self.metrics.closes.labels(str(connection.close_code or 1006)).inc()

    async def identify(
        self, token: str, claim: Callable[[Principal], Awaitable[None]]
    ) -> tuple[Principal, list[str]]:
        # An access token or a bot token; then the conversation ids the hub subscribes to.
        return await self.services.auth.identify(token, claim, member_conversation_ids_of)

    def unavailable(self, error: BaseException) -> ParleyError | None:
        return self.services.unavailable(error)

    def claim_slot(self, user_id: str) -> bool:
        """Count one more identified socket of ``user_id`` on this node, unless they hold
        the most allowed (``PARLEY_GATEWAY_MAX_SOCKETS_PER_USER``). Synchronous: two
        identifies cannot both see the last free slot."""
        held = self._sockets_by_user.get(user_id, 0)
        if held >= self._max_sockets_per_user:
            return False
        self._sockets_by_user[user_id] = held + 1
        return True

    def _release_slot(self, user_id: str) -> None:
        held = self._sockets_by_user.get(user_id, 0) - 1
        if held > 0:
            self._sockets_by_user[user_id] = held
        else:
            self._sockets_by_user.pop(user_id, None)

    async def forget(self, connection: Connection) -> None:
        """A connection ended: it receives nothing more and no longer counts as present."""
        await self.hub.detach(connection)
        if connection.present:
            await self.presence.disconnect(connection.user_id, connection.connection_id)

    # --- stats (GatewayStats)

    def session_count(self) -> int:
        return len(self._connections)

    def sessions_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys((state.value for state in ConnectionState), 0)
        for connection in self._connections:
            counts[connection.state.value] += 1
        return counts

    def queued_frames(self) -> int:
        return sum(connection.queued for connection in self._connections)

    def subscription_count(self) -> int:
        return self.bus.subscription_count()

    def events_published(self) -> int:
        return self.router.published

    def frames_pushed(self) -> int:
        return self.hub.frames_pushed
