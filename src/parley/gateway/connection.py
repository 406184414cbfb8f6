"""One WebSocket connection: its state machine, its reader, its writer, its deadlines.

::

    AWAITING_IDENTIFY ──identify──▶ IDENTIFYING ──ready──▶ READY
            │                            │                   │
            └────────────── close(code) ─┴───────────────────┴──▶ CLOSING ──▶ CLOSED

The **reader** task turns frames into typed commands (through ``protocol``) and results
back into frames (handlers never touch the socket); a **writer** task drains the bounded
:class:`~parley.gateway.outbox.Outbox`, only while it holds something to write. Deadlines — identify
(4003), heartbeat (4010), the access token's expiry (4002: a session logged out elsewhere
loses its socket within one token lifetime) — are checked by the node's sweeper through
:meth:`Connection.check_deadlines`. Calls are handled in arrival order and answered in that
order. Sends are pipelined: the reader checks and queues a send, then reads the next frame
while it commits (a client with many sends in flight fills group-commit batches instead of
waiting a commit per send); queued in order, they commit in order. Any other frame waits
until every earlier answer is out, so effects and answers never overtake each other.

Every bad frame gets an ``error`` frame with a stable code and the connection carries on;
only the conditions with a close code in :class:`~parley.wire.codes.CloseCode` end it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from parley.errors import (
    AuthenticationFailed,
    ParleyError,
    RateLimited,
    TokenExpired,
    TooManyConnections,
)
from parley.gateway.call_answers import PendingAnswer, error_for_failure
from parley.gateway.connection_host import ConnectionState, Disconnected, Host, Socket, token_deadline
from parley.gateway.handlers import CallContext, Queued
from parley.gateway.outbox import Outbox
from parley.gateway.protocol import (
    PONG,
    BadFrame,
    CallFrame,
    IdentifyFrame,
    PingFrame,
    ReadyData,
    ReadyFrame,
    ack_frame,
    encode,
    error_frame,
    protocol_error,
)
from parley.security.ratelimit import TokenBucket
from parley.services.auth import Principal
from parley.wire.codes import CloseCode, ErrorCode

log = logging.getLogger("parley.gateway")

# A call in progress when the connection closes (shutdown, 4009) may finish for this long,
# so that a message being committed is acknowledged rather than cut off mid-transaction.
CALL_GRACE_SECONDS = 5.0
# Sends a connection may have queued and not yet answered; the next one waits for room.
MAX_PIPELINED_SENDS = 32


class Connection:
    # One per socket, ten thousand per node: no per-instance dict.
    __slots__ = (
        "_socket", "_node", "_limits", "_connection_id", "_user_id", "session_id", "state",
        "close_code", "_outbox", "_opened", "_last_heard", "_token_deadline", "_handling",
        "_unanswered", "_answered_all", "_strikes", "_frames", "_present", "_was_ready",
        "_reader", "_closing", "_grace_timer", "frames_in", "holds_slot",
    )

    def __init__(self, socket: Socket, node: Host, connection_id: str) -> None:
        self._socket = socket
        self._node = node
        self._limits = node.limits
        self._connection_id = connection_id
        self._user_id = ""
        self.session_id = ""  # the login session (device) identify's token belongs to
        self.state = ConnectionState.AWAITING_IDENTIFY
        self.close_code: int | None = None
        self._outbox = Outbox(self._limits.outbox_limit, node.metrics.delivery.observe, node.flusher)
        self._opened = time.monotonic()
        self._last_heard = self._opened
        self._token_deadline = math.inf  # monotonic time the identify token expires
        self._handling = False  # the reader is inside a frame
        # Pipelined calls queued and not yet answered, in call order; made on the first.
        self._unanswered: deque[PendingAnswer] | None = None
        self._answered_all: asyncio.Future[None] | None = None  # the reader waits on it
        self._strikes = 0
        self._frames = TokenBucket(self._limits.frame_rate, self._opened)
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
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return  # push dropped the frame: timing would stamp another one
        self._outbox.stamp(committed_at)

    def push(self, frame: str) -> None:
        if self.state in (ConnectionState.CLOSING, ConnectionState.CLOSED):
            return
        if not self._outbox.offer(frame):
            self.close(CloseCode.TOO_SLOW, "too slow to drain", discard=True)

    @property
    def _busy(self) -> bool:
        """A call is being handled or awaits its answer: it is answered before closing."""
        return self._handling or bool(self._unanswered)

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
        finished = self._outbox.start(self._socket)
        reader = self._reader = asyncio.create_task(self._read(), name="gateway-reader")
        try:
            # The reader ends when the peer leaves or close() stops it; the outbox finishes
            # when the close frame is out or the socket failed.
            await asyncio.wait({reader, finished}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                # The socket failed under a call: let the call finish (it may be committing).
                if self._busy:
                    await asyncio.wait({reader}, timeout=CALL_GRACE_SECONDS)
                reader.cancel()
            if self.state is not ConnectionState.CLOSING:
                # The peer left, or the socket failed: there is nobody to say goodbye to.
                self.state = ConnectionState.CLOSING
                self._outbox.abandon()
            await asyncio.wait({finished}, timeout=self._limits.close_timeout_seconds)
        finally:
            if self._grace_timer is not None:
                self._grace_timer.cancel()
            self._outbox.cancel()
            self._forget_unanswered()
            writing = self._outbox.writing
            tasks = [reader]
            if writing is not None:
                tasks.append(writing)
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
                    "client": self._socket.client,
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
            frame = self._node.handlers.read(inbound)
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
        """Per-connection rate limit on every frame (a local bucket: the connection's own).
        Over the limit: an error frame; still over after ``rate_limit_strikes`` frames in a
        row: close 4008."""
        decision = self._frames.take()
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
            params = self._node.handlers.parse(frame)
        except BadFrame as bad:
            await self._answered()
            self._reply_error(bad.ref, bad.error)
            return
        context = CallContext(self._user_id, self._connection_id, self._receives)
        handlers = self._node.handlers
        if not handlers.is_pipelined(frame.method):
            await self._answer(frame.ref, frame.method, handlers.dispatch(context, frame.method, params))
            return
        try:
            queued: Queued[Any] | Exception = await handlers.queue(context, frame.method, params)
        except Exception as exc:  # refused before queueing: answered in its turn all the same
            queued = exc
        self._queue_answer(PendingAnswer(frame.ref, frame.method, queued))
        if self._unanswered is not None and len(self._unanswered) >= MAX_PIPELINED_SENDS:
            await self._answered()

    # --- answering pipelined calls: in call order, from the work's own callback

    def _queue_answer(self, call: PendingAnswer) -> None:
        """Answer ``call`` once its work is done and every earlier answer is out. No task
        per call: the work's future calls back, and the answers ready at the head of the
        queue go out then."""
        if self._unanswered is None:
            self._unanswered = deque()
        self._unanswered.append(call)
        if isinstance(call.work, Exception):
            self._send_ready_answers()
        else:
            call.work.done.add_done_callback(self._on_work_done)

    def _on_work_done(self, _: asyncio.Future[Any]) -> None:
        self._send_ready_answers()

    def _send_ready_answers(self) -> None:
        unanswered = self._unanswered
        if not unanswered:
            return  # the connection ended: nothing is answered any more
        while unanswered and unanswered[0].ready:
            call = unanswered.popleft()
            self._answer_now(call.ref, call.method, call.outcome)
        if unanswered:
            return
        waiting = self._answered_all
        if waiting is not None and not waiting.done():
            waiting.set_result(None)
        if not self._handling and self._closing is not None and self._grace_timer is not None:
            # Closing waited for these answers and the reader is idle: close now.
            self._grace_timer.cancel()
            self._stop_reading()

    def _forget_unanswered(self) -> None:
        """The connection ended: the calls still queued are never answered (their work is
        still done: a send queued is committed with its batch)."""
        unanswered, self._unanswered = self._unanswered, None
        for call in unanswered or ():
            if not isinstance(call.work, Exception):
                call.work.done.remove_done_callback(self._on_work_done)
                call.work.done.cancel()  # only this caller's answer: see Batcher.enqueue

    async def _answered(self) -> None:
        """Wait until every queued answer is out."""
        if not self._unanswered:
            return
        waiting = self._answered_all = asyncio.get_running_loop().create_future()
        try:
            await waiting
        finally:
            self._answered_all = None

    async def _answer(self, ref: str, method: str, outcome: Awaitable[Any]) -> None:
        """Answer a call that is not pipelined once ``outcome`` resolves."""
        try:
            data = await outcome
        except Exception as exc:
            self._reply_failure(ref, method, exc)
            return
        self._send(ack_frame(ref, data))

    def _answer_now(self, ref: str, method: str, outcome: Callable[[], Any]) -> None:
        try:
            data = outcome()
        except asyncio.CancelledError:
            return  # its work was called off, not failed: no answer (nor would a task give one)
        except Exception as exc:
            self._reply_failure(ref, method, exc)
            return
        self._send(ack_frame(ref, data))

    def _reply_failure(self, ref: str, method: str, exc: Exception) -> None:
        self._reply_error(ref, error_for_failure(exc, method, self._node.unavailable))

    def _receives(self, conversation_id: str) -> bool:
        return self._node.hub.is_joined(self, conversation_id)

    # --- identify

    async def _identify(self, frame: IdentifyFrame) -> None:
        self.state = ConnectionState.IDENTIFYING
        hub = self._node.hub

        async def claim(principal: Principal) -> None:
            # Counted here, with no await since the check: a burst of parallel identifies by
            # one user admits exactly the cap.
            if not self._node.claim_slot(principal.user_id):
                raise TooManyConnections()
            self.holds_slot = True
            self._user_id = principal.user_id
            self.session_id = principal.session_id
            # Events are held from here until ready is queued, so ready always comes first.
            self._outbox.hold()
            # Subscribe before reading: whatever commits after the read that follows is
            # pushed live, so ready's last_seq values are a position nothing is missed from.
            await hub.attach(self)

        try:
            # The token checked and the conversations to subscribe to read in one hand-off.
            principal, conversation_ids = await self._node.identify(frame.token, claim)
        except TokenExpired as error:
            self._refuse(error, CloseCode.TOKEN_EXPIRED)
            return
        except AuthenticationFailed as error:
            self._refuse(error, CloseCode.AUTHENTICATION_FAILED)
            return
        except TooManyConnections as refused:
            self._refuse(refused, CloseCode.TOO_MANY_CONNECTIONS)
            return
        self._token_deadline = token_deadline(principal)
        await hub.sync(self, conversation_ids)
        reads = self._node.reads
        try:
            ready_reads = await reads.ready(self._user_id, self.session_id)
        except AuthenticationFailed as error:  # revoked while identifying
            self.close(CloseCode.AUTHENTICATION_FAILED, error.code)
            return
        user, conversations, audience = ready_reads.user, ready_reads.conversations, ready_reads.audience
        await hub.sync(self, [view.id for view in conversations])
        hub.settle(self)
        if self.state is not ConnectionState.IDENTIFYING:
            return  # closed meanwhile (shutdown, overflow)
        ready = ReadyData(
            user=user.to_private(),
            session_id=self._connection_id,
            heartbeat_interval_ms=int(self._limits.heartbeat_interval_seconds * 1000),
            max_frame_bytes=self._limits.max_frame_bytes,
            conversations=[view.to_public() for view in conversations],
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

    def _refuse(self, error: ParleyError, code: int) -> None:
        """Refuse identify: events held for ready are dropped (they were never this
        socket's to see), the error goes out, then the close frame."""
        self._outbox.drop_held()
        self._reply_error(None, error)
        self.close(code, error.code)

    def _send(self, frame: str) -> None:
        """Queue an answer. Unlike events (``push``), answers are still queued once closing
        is decided: the call in progress is answered before the close frame."""
        if not self._outbox.offer(frame):
            self.close(CloseCode.TOO_SLOW, "too slow to drain", discard=True)

    def _reply_error(self, ref: str | None, error: ParleyError) -> None:
        self._send(error_frame(ref, error))
