"""What a gateway connection stands on: its socket (frames in, ``Disconnected`` at the end),
its limits, its host (the node — ``Host`` names the little a connection may ask of it) and
the states it goes through (:class:`~parley.gateway.connection.Connection` is the machine)."""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from parley.clock import utcnow
from parley.errors import ParleyError
from parley.gateway.handlers import Handlers
from parley.gateway.hub import Hub
from parley.gateway.metrics import GatewayMetrics
from parley.gateway.outbox import Flusher, FrameWriter
from parley.gateway.presence import Presence
from parley.security.ratelimit import Rate
from parley.services.auth import Principal
from parley.services.realtime_reads import RealtimeReads

if TYPE_CHECKING:
    from parley.gateway.connection import Connection


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The peer closed (or the connection dropped) with ``code``."""

    code: int


Inbound = str | bytes | Disconnected


class Socket(FrameWriter, Protocol):
    async def receive(self) -> Inbound: ...

    @property
    def client(self) -> str | None:
        """The peer's address as uvicorn has it, "host:port", for the log line that ends the
        session (behind a proxy, the forwarded address when ``PARLEY_TRUST_PROXY_HEADERS`` is
        on, else the proxy's own); None when the server does not know it."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    identify_timeout_seconds: float
    heartbeat_interval_seconds: float
    max_frame_bytes: int
    outbox_limit: int
    # How long the writer may take to get the close frame out. A client that stopped reading
    # may never take it; then the connection is dropped and only the transport buffer remains.
    close_timeout_seconds: float
    frame_rate: Rate
    # Rate-limited frames in a row before the connection is closed with 4008.
    rate_limit_strikes: int


def token_deadline(principal: Principal) -> float:
    """When (monotonic) the token ``principal`` identified with expires; never for a bot's.
    (Taken from the claims identify verified: decoding the token again cost a second JWT
    parse per connection.)"""
    if principal.expires_at is None:
        return math.inf
    return time.monotonic() + (principal.expires_at - utcnow()).total_seconds()


class Host(Protocol):
    """What a connection needs from its node — the :class:`~parley.gateway.node.Gateway` is
    one — and nothing more: no services, no database."""

    limits: ConnectionLimits
    metrics: GatewayMetrics
    flusher: Flusher  # writes every connection's frames at the end of a loop turn
    handlers: Handlers
    hub: Hub
    presence: Presence
    reads: RealtimeReads

    async def identify(
        self, token: str, claim: Callable[[Principal], Awaitable[None]]
    ) -> tuple[Principal, list[str]]:
        """The identify token's user and session and the conversations they are in, or
        ``AuthenticationFailed``; ``claim`` runs once the token names them, before the
        conversations are read (see ``Auth.identify``)."""
        ...

    def unavailable(self, error: BaseException) -> ParleyError | None:
        """The error to answer a call with when ``error`` means a backend is down."""
        ...

    async def forget(self, connection: Connection) -> None:
        """The connection ended: it receives nothing more, and no longer counts as present."""
        ...

    def claim_slot(self, user_id: str) -> bool:
        """Count one more identified socket of ``user_id``, unless they hold the most allowed."""
        ...


class ConnectionState(enum.Enum):
    AWAITING_IDENTIFY = "awaiting_identify"
    IDENTIFYING = "identifying"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"
