"""One WebSocket connection: its state machine, its reader, its writer, its deadlines.

::

    AWAITING_IDENTIFY ──identify──▶ IDENTIFYING ──ready──▶ READY
            │                            │                   │
            └────────────── close(code) ─┴───────────────────┴──▶ CLOSING ──▶ CLOSED

Two tasks per connection: the **reader** turns frames into typed commands (through
``protocol``) and results back into frames (handlers never touch the socket); the
**writer** drains the bounded :class:`~parley.gateway.outbox.Outbox`. Deadlines — identify
(4003), heartbeat (4010), the access token's expiry (4002: a session logged out elsewhere
loses its socket within one token lifetime) — are checked by the node's sweeper through
:meth:`Connection.check_deadlines`. Calls are handled in arrival order and answered in that
order. Sends are pipelined: the reader checks and queues a send, then reads the next frame
while it commits (a client with many sends in flight fills group-commit batches instead of
waiting a commit per send); queued in order, they commit in order. Any other frame waits
until every earlier answer is out, so effects and answers never overtake each other.

Every bad frame gets an ``error`` frame with a stable code and the connection carries on;
only the conditions with a close code in :class:`~parley.gateway.protocol.CloseCode` end it.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import jwt

from parley.errors import (
    AuthenticationFailed,
    ParleyError,
    RateLimited,
    TokenExpired,
    TooManyConnections,
)
from parley.gateway import queries
from parley.gateway.handlers import CallContext
from parley.gateway.outbox import FrameWriter, Outbox
from parley.gateway.protocol import (
    PONG,
    BadFrame,
    CallFrame,
    CloseCode,
    ErrorCode,
    IdentifyFrame,
    PingFrame,
    ReadyData,
    ReadyFrame,
    ack_frame,
    encode,
    error_frame,
    parse_frame,
    parse_params,
    protocol_error,
)
from parley.security.ratelimit import Rate
from parley.store.failures import unavailable

if TYPE_CHECKING:
    from parley.gateway.node import Gateway

log = logging.getLogger("parley.gateway")

# A call in progress when the connection closes (shutdown, 4009) may finish for this long,
# so that a message being committed is acknowledged rather than cut off mid-transaction.
CALL_GRACE_SECONDS = 5.0
# Sends a connection may have queued and not yet answered; the next one waits for room.
MAX_PIPELINED_SENDS = 32
# How long the writer may take to get the close frame out. A client that stopped reading
# may never take it; then the connection is dropped and only the transport buffer remains.
CLOSE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The peer closed (or the connection dropped) with ``code``."""

    code: int


Inbound = str | bytes | Disconnected


class Socket(FrameWriter, Protocol):
    async def receive(self) -> Inbound: ...


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    identify_timeout_seconds: float
    heartbeat_interval_seconds: float
    max_frame_bytes: int
    outbox_limit: int
    frame_rate: Rate
    # Rate-limited frames in a row before the connection is closed with 4008.
    rate_limit_strikes: int


def token_deadline(token: str) -> float:
    """When (monotonic) an access token expires. Called only once ``authenticate`` has
    verified the token, so reading its claims unverified is safe."""
    try:
        expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return math.inf
    return time.monotonic() + (expires - time.time())


class ConnectionState(enum.Enum):
    AWAITING_IDENTIFY = "awaiting_identify"
    IDENTIFYING = "identifying"
    READY = "ready"
    CLOSING = "closing"
    CLOSED = "closed"


class Connection:
    def __init__(self, socket: Socket, node: Gateway, connection_id: str) -> None:
        self._socket = socket
        self._node = node
        self._limits = node.limits
        self._connection_id = connection_id
        self._user_id = ""
        self.session_id = ""  # the login session (device) identify's token belongs to
        self.state = ConnectionState.AWAITING_IDENTIFY
        self.close_code: int | None = None
        self._outbox = Outbox(self._limits.outbox_limit, node.metrics.delivery.observe)
        self._opened = time.monotonic()
        self._last_heard = self._opened
        self._token_deadline = math.inf  # monotonic time the identify token expires
        self._handling = False  # the reader is inside a frame
        self._unanswered = 0  # pipelined calls queued and not yet answered
        self._last_answer: asyncio.Task[None] | None = None  # answers go out in this chain
        self._answering: set[asyncio.Task[None]] = set()
        self._strikes = 0
        self._present = False
        self._was_ready = False  # reached READY (calls are allowed from then on)
        self._reader: asyncio.Task[None] | None = None
        self._closing: tuple[int, str, bool] | None = None  # (code, reason, discard)
        self._grace_timer: asyncio.TimerHandle | None = None
        self.frames_in = 0
        self.holds_slot = False  # counted in the node's sockets per user (released at the end)

    # --- the hub's view (Peer)

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def connection_id(self) -> str:
        return self._connection_id

    @property
    def queued(self) -> int:
        return self._outbox.depth

    @property
    def present(self) -> bool:
        """Whether this connection counts towards its user's presence."""
        return self._present

    def stamp(self, committed_at: float) -> None:
        self._outbox.stamp(committed_at)

    def push(self, frame: str) -> None:
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        if not self._outbox.offer(frame):
            self.close(CloseCode.TOO_SLOW, "too slow to drain", discard=True)

    @property
    def _busy(self) -> bool:
        """A call is being handled or awaits its answer: it is answered before closing."""
        return self._handling or self._unanswered > 0

    # --- closing

    def close(self, code: int, reason: str = "", *, discard: bool = False) -> None:
        """Decide to close: queued frames go first (unless ``discard``), then the close
        frame. Idempotent; the first decision wins."""
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        self.state = ConnectionState.CLOSING
        self.close_code = code
        self._closing = (code, reason, discard)
        if self._busy:
            # A call is being handled: its answer goes out before the close frame (a send
            # being committed is acknowledged). _read closes the outbox when it is done;
            # the timer bounds how long that may take.
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(CALL_GRACE_SECONDS, self._stop_reading)
            return
        self._stop_reading()

    def _stop_reading(self) -> None:
        if self._closing is not None:
            self._outbox.close(*self._closing[:2], discard=self._closing[2])
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()  # it is only waiting for the next frame (or overran its grace)

    # --- the connection's life

    async def run(self) -> None:
        writer = asyncio.create_task(self._outbox.drain(self._socket), name="gateway-writer")
        reader = self._reader = asyncio.create_task(self._read(), name="gateway-reader")
        try:
            # The reader ends when the peer leaves or close() stops it; the writer when
            # the close frame is out or the socket failed.
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                # The socket failed under a call: let the call finish (it may be committing).
                if self._busy:
                    await asyncio.wait({reader}, timeout=CALL_GRACE_SECONDS)
                reader.cancel()
            if self.state is not ConnectionState.CLOSING:
                # The peer left, or the socket failed: there is nobody to say goodbye to.
                self.state = ConnectionState.CLOSING
                self._outbox.abandon()
            await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT_SECONDS)
        finally:
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            tasks = (reader, writer, *self._answering)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.state = ConnectionState.CLOSED
            await self._node.forget(self)
            log.info(
                "gateway session closed",
                extra={
                    "connection_id": self._connection_id,
                    "user_id": self._user_id or None,
                    "close_code": self.close_code,
                    "frames_in": self.frames_in,
                    "frames_out": self._outbox.sent,
                    "duration_ms": round((time.monotonic() - self._opened) * 1000),
                },
            )

    async def _read(self) -> None:
        while self.state not in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            inbound = await self._socket.receive()
            if isinstance(inbound, Disconnected):
                if self.close_code is None:
                    self.close_code = inbound.code
                return
            self._last_heard = time.monotonic()
            self.frames_in += 1
            self._handling = True
            try:
                await self._handle(inbound)
            except Exception:  # a bug in one frame must not leave the client hanging
                log.exception("gateway frame failed", extra={"connection_id": self._connection_id})
                self.close(CloseCode.INTERNAL_ERROR, "internal error")
            finally:
                self._handling = False
        # Closing was decided while calls ran: their answers go out, then the close frame
        # (the grace timer bounds the wait).
        await self._answered()
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        if self._closing is not None:
            self._outbox.close(*self._closing[:2], discard=self._closing[2])

    def check_deadlines(self, now: float) -> None:
        """Called by the node's sweeper (one task for all connections, not a timer each)."""
        if self.state is ConnectionState.AWAITING_IDENTIFY:
            if now >= self._opened + self._limits.identify_timeout_seconds:
                self.close(CloseCode.NOT_IDENTIFIED, "identify in time")
        elif self.state in (ConnectionState.IDENTIFYING, ConnectionState.READY):
            if now >= self._token_deadline:
                # The session may have been revoked since identify: the client proves it is
                # still logged in by refreshing and identifying again.
                self.close(CloseCode.TOKEN_EXPIRED, TokenExpired.code)
            # Two intervals: one ping may be late, two missed means the client is gone.
            elif now >= self._last_heard + 2 * self._limits.heartbeat_interval_seconds:
                self.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat missed")

    # --- frames

    async def _handle(self, inbound: str | bytes) -> None:
        if isinstance(inbound, bytes):
            await self._answered()
            if await self._admit(None):
                self._reply_error(
                    None,
                    protocol_error(ErrorCode.INVALID_FRAME, "Frames are JSON text, not binary"),
                )
            return
        limit = self._limits.max_frame_bytes
        if len(inbound) > limit or len(inbound.encode("utf-8", "surrogatepass")) > limit:
            self.close(CloseCode.FRAME_TOO_LARGE, f"frames are limited to {limit} bytes")
            return
        try:
            frame = parse_frame(inbound)
        except BadFrame as bad:
            await self._answered()
            if await self._admit(bad.ref):
                self._reply_error(bad.ref, bad.error)
            return
        if not (isinstance(frame, CallFrame) and self._node.handlers.is_pipelined(frame.method)):
            await self._answered()  # answers (and effects) stay in arrival order
        ref = frame.ref if isinstance(frame, CallFrame) else None
        if not await self._admit(ref):
            return
        if isinstance(frame, PingFrame):
            self._send(PONG)
        elif isinstance(frame, IdentifyFrame):
            if self.state is ConnectionState.AWAITING_IDENTIFY:
                await self._identify(frame)
            else:
                self._reply_error(
                    None, protocol_error(ErrorCode.ALREADY_IDENTIFIED, "Already identified")
                )
        else:
            await self._call(frame)

    async def _admit(self, ref: str | None) -> bool:
        """Per-connection rate limit on every frame. Over the limit: an error frame; still
        over after ``rate_limit_strikes`` frames in a row: close 4008."""
        key = f"gateway:connection:{self._connection_id}"
        decision = await self._node.frame_limiter.hit(key, self._limits.frame_rate)
        if decision.allowed:
            self._strikes = 0
            return True
        self._strikes += 1
        await self._answered()
        if self._strikes >= self._limits.rate_limit_strikes:
            self.close(CloseCode.RATE_LIMITED, "rate limited")
        else:
            self._reply_error(
                ref, RateLimited(decision.retry_after, "Too many frames on this connection")
            )
        return False

    async def _call(self, frame: CallFrame) -> None:
        # A call read while READY is handled even if closing was decided since (1001,
        # 4011): the per-frame checks above may await, and a call in progress finishes —
        # its answer goes out before the close frame.
        if self.state is not ConnectionState.READY and not self._was_ready:
            self._reply_error(
                frame.ref, protocol_error(ErrorCode.NOT_IDENTIFIED, "Identify before calling")
            )
            return
        try:
            params = parse_params(frame)
        except BadFrame as bad:
            await self._answered()
            self._reply_error(bad.ref, bad.error)
            return
        context = CallContext(self._user_id, self._connection_id, self._receives)
        handlers = self._node.handlers
        if not handlers.is_pipelined(frame.method):
            await self._answer(frame.ref, frame.method, handlers.dispatch(context, frame.method, params))
            return
        outcome: Awaitable[Any]
        try:
            outcome = await handlers.queue(context, frame.method, params)
        except Exception as exc:  # refused before queueing: answered in its turn all the same
            outcome = _raise(exc)
        self._queue_answer(frame.ref, frame.method, outcome)
        if self._unanswered >= MAX_PIPELINED_SENDS:
            await self._answered()

    def _queue_answer(self, ref: str, method: str, outcome: Awaitable[Any]) -> None:
        """Answer ``ref`` once ``outcome`` resolves and every earlier answer is out."""
        previous = self._last_answer
        self._unanswered += 1
        task = asyncio.create_task(self._answer_after(previous, ref, method, outcome), name="gateway-answer")
        self._last_answer = task
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer_after(
        self, previous: asyncio.Task[None] | None, ref: str, method: str, outcome: Awaitable[Any]
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait({previous})
            await self._answer(ref, method, outcome)
        finally:
            if inspect.iscoroutine(outcome):
                outcome.close()  # never started if this task was cancelled first: no warning
            self._unanswered -= 1
            if not self._busy and self._closing is not None and self._grace_timer is not None:
                # Closing waited for this answer and the reader is idle: close now.
                self._grace_timer.cancel()
                self._stop_reading()

    async def _answered(self) -> None:
        """Wait until every queued answer is out."""
        last = self._last_answer
        if last is not None and not last.done():
            await asyncio.wait({last})

    async def _answer(self, ref: str, method: str, outcome: Awaitable[Any]) -> None:
        try:
            data = await outcome
        except ParleyError as error:
            if error.status >= 500:
                log.error("gateway call failed", exc_info=error, extra={"method": method})
            self._reply_error(ref, error)
            return
        except Exception as exc:
            down = unavailable(exc)
            if down is not None:  # the database is unreachable: the client retries
                log.warning(
                    "gateway call failed: backend unavailable",
                    extra={"method": method, "error": f"{type(exc).__name__}: {exc}"},
                )
                self._reply_error(ref, down)
                return
            # A bug: answer like REST answers a 500, keep the connection.
            log.exception("gateway call failed", extra={"method": method})
            self._reply_error(ref, ParleyError())
            return
        self._send(ack_frame(ref, data))

    def _receives(self, conversation_id: str) -> bool:
        return self._node.hub.is_joined(self, conversation_id)

    # --- identify

    async def _identify(self, frame: IdentifyFrame) -> None:
        self.state = ConnectionState.IDENTIFYING
        services = self._node.services
        try:
            principal = await services.auth.authenticate(frame.token)
        except TokenExpired as error:
            self._reply_error(None, error)
            self.close(CloseCode.TOKEN_EXPIRED, error.code)
            return
        except AuthenticationFailed as error:
            self._reply_error(None, error)
            self.close(CloseCode.AUTHENTICATION_FAILED, error.code)
            return
        # Counted here, with no await since the check: a burst of parallel identifies by one
        # user admits exactly the cap.
        if not self._node.claim_slot(principal.user_id):
            refused = TooManyConnections()
            self._reply_error(None, refused)
            self.close(CloseCode.TOO_MANY_CONNECTIONS, refused.code)
            return
        self.holds_slot = True
        self._user_id = principal.user_id
        self.session_id = principal.session_id
        self._token_deadline = token_deadline(frame.token)
        hub = self._node.hub
        # Events are held from here until ready is queued, so ready always comes first.
        self._outbox.hold()
        # Subscribe before reading: whatever commits after the read below is pushed live,
        # so ready's last_seq values are a position from which nothing is missed.
        await hub.attach(self)
        await hub.sync(self, await queries.member_conversation_ids(services.db, self._user_id))
        try:
            reads = await queries.ready_reads(services.db, self._user_id, self.session_id)
        except AuthenticationFailed as error:  # revoked while identifying
            self.close(CloseCode.AUTHENTICATION_FAILED, error.code)
            return
        user, conversations, audience = reads.user, reads.conversations, reads.audience
        await hub.sync(self, [view["id"] for view in conversations])
        hub.settle(self)
        if self.state is not ConnectionState.IDENTIFYING:
            return  # closed meanwhile (shutdown, overflow)
        ready = ReadyData(
            user=user.to_private(),
            session_id=self._connection_id,
            heartbeat_interval_ms=int(self._limits.heartbeat_interval_seconds * 1000),
            max_frame_bytes=self._limits.max_frame_bytes,
            conversations=conversations,
            presences=await self._node.presence.snapshot(audience),
        )
        # Counted as present before ready goes out: a client acting on ready (presence.set)
        # must find its session known. Its own "online" event is held behind ready.
        self._present = True
        await self._node.presence.connect(self._user_id, self._connection_id, audience)
        if self.state is not ConnectionState.IDENTIFYING:
            return
        self.state = ConnectionState.READY
        self._was_ready = True
        self._outbox.release(encode(ReadyFrame(op="ready", data=ready)))

    # --- replies

    def _send(self, frame: str) -> None:
        """Queue an answer. Unlike events (``push``), answers are still queued once closing
        is decided: the call in progress is answered before the close frame."""
        if not self._outbox.offer(frame):
            self.close(CloseCode.TOO_SLOW, "too slow to drain", discard=True)

    def _reply_error(self, ref: str | None, error: ParleyError) -> None:
        self._send(error_frame(ref, error))


async def _raise(error: Exception) -> Any:
    raise error
