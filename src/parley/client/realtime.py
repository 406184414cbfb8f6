"""The realtime session: one WebSocket to ``/ws`` that stays up, and loses nothing.

- **Reconnects** with exponential backoff and jitter after any drop (1001 shutdown, 4009
  too slow, network loss); refreshes the access token first on 4002; gives up only on 4001.
- **Resumes**: after every ``ready`` and every seq gap it fills the conversations that
  moved from ``changes?after_seq=N`` (see ``tracker``), so the app gets every message once,
  in seq order per conversation.
- **Marks delivery**: messages from others that reach the app are reported with
  ``delivered.mark`` (coalesced per conversation).
- **Events** are an async iterator (``async for event in session``); **calls** are
  awaitables answered by the server's ``ack`` (or raising :class:`CallError`).

A call in flight when the connection drops raises :class:`ConnectionLost`: it may or may
not have taken effect. ``send_message`` resends under the same ``client_msg_id`` (the
server answers a repeat with the original message), so it never duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from parley.client.errors import ApiError, CallError, ConnectionLost, SessionClosed
from parley.client.rest import ParleyClient
from parley.client.tracker import Outcome, RealtimeEvent, Tracker
from parley.wire.codes import CloseCode

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# Delivery marks wait this long to gather a burst of messages into one call.
DELIVERED_COALESCE_SECONDS = 0.2
# The reader pauses when the app has this many events unread: the socket then fills, and
# the server eventually closes with 4009 and the session resumes — memory stays bounded.
DEFAULT_MAX_UNREAD = 10_000
# Frames we accept from the server (messages are at most a few tens of kilobytes).
MAX_SERVER_FRAME_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``n``: "equal jitter" on an exponential ceiling —
    never zero (a whole node's clients do not return at once after a 1001), never more than
    the ceiling."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    BACKOFF = "backoff"
    CLOSED = "closed"


class _End:
    def __init__(self, error: SessionClosed | None) -> None:
        self.error = error


class RealtimeSession:
    """``async with RealtimeSession(client) as session: async for event in session: ...``"""

    def __init__(
        self,
        client: ParleyClient,
        *,
        auto_delivered: bool = True,
        positions: Mapping[str, int] | None = None,
        backoff: Backoff = Backoff(),
        max_unread: int = DEFAULT_MAX_UNREAD,
        open_timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.auto_delivered = auto_delivered
        self.backoff = backoff
        self.open_timeout = open_timeout
        self._positions = dict(positions or {})
        self._max_unread = max_unread
        self.state = SessionState.CONNECTING
        self.ready_data: JSON | None = None
        self.close_codes: list[int | None] = []  # one per ended connection, oldest first
        self.connections = 0
        self._tracker: Tracker | None = None
        self._events: asyncio.Queue[RealtimeEvent | _End] = asyncio.Queue()
        self._room = asyncio.Event()
        self._room.set()
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._first_ready: asyncio.Future[None] | None = None
        self._ws: ClientConnection | None = None
        self._refs = itertools.count(1)
        self._pending: dict[str, tuple[str, asyncio.Future[JSON]]] = {}
        self._fills: dict[str, asyncio.Task[None]] = {}
        self._marks: dict[str, int] = {}
        self._marks_waiting = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle

    async def __aenter__(self) -> RealtimeSession:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect; returns at the first ``ready`` (or raises why it could not)."""
        if self.client.user is None:
            await self.client.me()
        self._tracker = Tracker(self.client.user_id, self._positions)
        self._first_ready = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self._run(), name="parley-realtime"),
            asyncio.create_task(self._mark_delivered_loop(), name="parley-delivered"),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(self._first_ready), self.open_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._closed.is_set() and not self._tasks:
            return
        if not self._closed.is_set():
            self._end(None)
        tasks = [*self._tasks, *self._fills.values()]
        self._tasks = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    def _end(self, error: SessionClosed | None) -> None:
        self.state = SessionState.CLOSED
        self._closed.set()
        self._ready.clear()
        self._fail_pending(error or SessionClosed("the session is closed"))
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_exception(error or SessionClosed("closed before ready"))
            self._first_ready.exception()  # retrieved: start() re-raises it through shield
        self._events.put_nowait(_End(error))

    @property
    def session_id(self) -> str | None:
        return None if self.ready_data is None else str(self.ready_data["session_id"])

    def position(self, conversation_id: str) -> int | None:
        """The seq up to which this session has given the app everything."""
        return self._tracker.position(conversation_id) if self._tracker else None

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until connected (``TimeoutError``), or :class:`SessionClosed`."""
        if not self._ready.is_set():
            ready = asyncio.create_task(self._ready.wait())
            closed = asyncio.create_task(self._closed.wait())
            done, pending = await asyncio.wait(
                {ready, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if not done:
                raise TimeoutError("not connected in time")
        if self.state is SessionState.CLOSED:
            raise SessionClosed("the session is closed")

    # --- events

    def __aiter__(self) -> RealtimeSession:
        return self

    async def __anext__(self) -> RealtimeEvent:
        item = await self._events.get()
        if self._events.qsize() < self._max_unread:
            self._room.set()
        if isinstance(item, _End):
            self._events.put_nowait(item)  # every later reader ends too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        if self.client.e2ee is not None:  # decrypted, to-device applied (parley.client.e2ee)
            return await self.client.e2ee.handle_event(item)
        return item

    async def next_event(self, timeout: float | None = None) -> RealtimeEvent:
        return await asyncio.wait_for(self.__anext__(), timeout)

    # --- calls

    async def call(self, method: str, params: JSON | None = None, *, timeout: float = 30.0) -> JSON:
        """Send a call and wait for its ``ack`` data (waits for a connection first)."""
        deadline = time.monotonic() + timeout
        await self.wait_ready(timeout)
        ws = self._ws
        if ws is None or self.state is not SessionState.READY:
            raise ConnectionLost("not connected")
        ref = str(next(self._refs))
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending[ref] = (method, future)
        frame = {"op": "call", "ref": ref, "method": method, "params": params or {}}
        try:
            await ws.send(json.dumps(frame, separators=(",", ":")))
            return await asyncio.wait_for(asyncio.shield(future), deadline - time.monotonic())
        except ConnectionClosed:
            if self._ws is ws:
                # Not ready any more, even before the connection loop has noticed: a caller
                # retrying (send_message) must wait for the reconnect, not spin on this
                # closed socket (which raises without ever yielding to the event loop).
                self._ready.clear()
            raise ConnectionLost(f"{method}: the connection dropped") from None
        finally:
            self._pending.pop(ref, None)

    async def send_message(
        self,
        conversation_id: str,
        content: str,
        *,
        client_msg_id: str | None = None,
        reply_to_id: str | None = None,
        thread_root_id: str | None = None,
        thread_broadcast: bool = False,
        retry: bool = True,
        timeout: float = 30.0,
    ) -> JSON:
        """Send over the socket; returns the ack data ``{message, created}``. With ``retry``,
        a drop is answered by resending the same ``client_msg_id`` once reconnected."""
        params: JSON = {
            "conversation_id": conversation_id,
            "content": content,
            "client_msg_id": client_msg_id or uuid.uuid4().hex,
        }
        if reply_to_id is not None:
            params["reply_to_id"] = reply_to_id
        if thread_root_id is not None:  # a reply in a thread (DESIGN §6.5)
            params |= {"thread_root_id": thread_root_id, "thread_broadcast": thread_broadcast}
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.call("message.send", params, timeout=deadline - time.monotonic())
            except ConnectionLost:
                if not retry or time.monotonic() >= deadline:
                    raise

    async def edit_message(self, message_id: str, content: str) -> JSON:
        return await self.call("message.edit", {"message_id": message_id, "content": content})

    async def delete_message(self, message_id: str) -> JSON:
        return await self.call("message.delete", {"message_id": message_id})

    async def add_reaction(self, message_id: str, emoji: str) -> JSON:
        return await self.call("reaction.add", {"message_id": message_id, "emoji": emoji})

    async def remove_reaction(self, message_id: str, emoji: str) -> JSON:
        return await self.call("reaction.remove", {"message_id": message_id, "emoji": emoji})

    async def start_typing(self, conversation_id: str) -> None:
        await self.call("typing.start", {"conversation_id": conversation_id})

    async def stop_typing(self, conversation_id: str) -> None:
        await self.call("typing.stop", {"conversation_id": conversation_id})

    async def mark_read(self, conversation_id: str, seq: int) -> JSON:
        return await self.call("read.mark", {"conversation_id": conversation_id, "seq": seq})

    async def mark_delivered(self, conversation_id: str, seq: int) -> JSON:
        return await self.call("delivered.mark", {"conversation_id": conversation_id, "seq": seq})

    async def set_presence(self, status: str) -> JSON:
        return await self.call("presence.set", {"status": status})

    def _fail_pending(self, error: Exception) -> None:
        pending, self._pending = self._pending, {}
        for _, future in pending.values():
            if not future.done():
                future.set_exception(error)

    # --- the connection loop

    async def _run(self) -> None:
        attempt = 0
        while not self._closed.is_set():
            reached_ready, code = False, None
            try:
                reached_ready, code = await self._connect_once()
            except (OSError, TimeoutError, WebSocketException, httpx.TransportError) as exc:
                log.debug("realtime connection failed", extra={"error": repr(exc)})
            except ApiError as exc:  # refreshing the token failed: the session is over
                self._end(SessionClosed(f"cannot refresh the access token: {exc.code}"))
                return
            self._ws = None
            self._ready.clear()
            self._fail_pending(ConnectionLost("the connection dropped"))
            self.close_codes.append(code)
            if self._closed.is_set():  # closed by the app meanwhile
                return
            if code == CloseCode.AUTHENTICATION_FAILED:
                self._end(SessionClosed("the server refused the credentials", code))
                return
            if reached_ready:
                attempt = 0
            if code == CloseCode.TOKEN_EXPIRED and self.client.tokens and self.client.tokens.refresh_token:
                try:
                    await self.client.refresh(stale_access_token=self.client.tokens.access_token)
                    continue
                except (ApiError, httpx.TransportError) as exc:
                    log.debug("token refresh failed", extra={"error": repr(exc)})
            self.state = SessionState.BACKOFF
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _connect_once(self) -> tuple[bool, int | None]:
        self.state = SessionState.CONNECTING
        token = await self.client.access_token()
        async with connect(
            self.client.websocket_url,
            open_timeout=self.open_timeout,
            max_size=MAX_SERVER_FRAME_BYTES,
            close_timeout=2,
        ) as ws:
            self._ws = ws
            self.connections += 1
            await ws.send(json.dumps({"op": "identify", "token": token}))
            try:
                ready = await asyncio.wait_for(self._await_ready(ws), self.open_timeout)
                if ready is None:
                    return False, ws.close_code
                self._on_ready(ready)
                heartbeat = asyncio.create_task(self._heartbeat(ws, ready))
                try:
                    async for raw in ws:
                        await self._on_frame(raw)
                        if not self._room.is_set():
                            await self._room.wait()  # the app is behind: stop reading
                finally:
                    heartbeat.cancel()
                    await asyncio.gather(heartbeat, return_exceptions=True)
            except ConnectionClosed:
                pass
            return True, ws.close_code

    async def _await_ready(self, ws: ClientConnection) -> JSON | None:
        """Frames up to ``ready``; None when the server closed instead (bad token)."""
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("op") == "ready":
                    return dict(frame["data"])
                if frame.get("op") == "error":
                    log.info("identify refused", extra={"error": frame.get("error")})
        except ConnectionClosed:
            pass
        return None

    def _on_ready(self, ready: JSON) -> None:
        assert self._tracker is not None
        self.ready_data = ready
        self.state = SessionState.READY
        outcome = self._tracker.on_ready(ready["conversations"])
        self._apply(outcome)
        self._ready.set()
        if self._first_ready is not None and not self._first_ready.done():
            self._first_ready.set_result(None)

    async def _heartbeat(self, ws: ClientConnection, ready: JSON) -> None:
        interval = max(int(ready.get("heartbeat_interval_ms", 25_000)) / 1000, 0.05)
        ping = json.dumps({"op": "ping"})
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                await ws.send(ping)

    async def _on_frame(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        op = frame.get("op")
        if op == "event":
            assert self._tracker is not None
            event = RealtimeEvent(str(frame["type"]), dict(frame.get("data") or {}))
            self._apply(self._tracker.on_event(event))
        elif op in ("ack", "error"):
            entry = self._pending.pop(str(frame.get("ref")), None)
            if entry is None:
                if op == "error":
                    log.warning("gateway error", extra={"error": frame.get("error")})
                return
            method, future = entry
            if future.done():
                return
            if op == "ack":
                future.set_result(dict(frame.get("data") or {}))
            else:
                future.set_exception(CallError(method, dict(frame.get("error") or {})))

    # --- delivery to the app (synchronous: tracker state and queue order never diverge)

    def _apply(self, outcome: Outcome) -> None:
        for event in outcome.deliver:
            self._emit(event)
        for conversation_id in outcome.fill:
            self._start_fill(conversation_id)

    def _emit(self, event: RealtimeEvent) -> None:
        self._events.put_nowait(event)
        if self._events.qsize() >= self._max_unread:
            self._room.clear()
        message = event.message
        conversation_id = event.conversation_id
        if (
            self.auto_delivered
            and event.type == "message.created"
            and message is not None
            and conversation_id is not None
            and message.get("sender_id") not in (None, self.client.user_id)
        ):
            position = self.position(conversation_id)
            if position is not None and position > self._marks.get(conversation_id, 0):
                self._marks[conversation_id] = position
                self._marks_waiting.set()

    def _start_fill(self, conversation_id: str) -> None:
        running = self._fills.get(conversation_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._fill(conversation_id), name="parley-fill")
        self._fills[conversation_id] = task

    async def _fill(self, conversation_id: str) -> None:
        assert self._tracker is not None
        attempt = 0
        while self.state is not SessionState.CLOSED:
            after = self._tracker.fill_from(conversation_id)
            if after is None:
                return
            try:
                window = await self.client.changes_window(conversation_id, after)
            except ApiError as exc:
                if exc.status == 404:  # not ours any more
                    self._tracker.forget(conversation_id)
                    return
                if exc.status < 500 and exc.code != "RATE_LIMITED":
                    # Not transient: leave the conversation held; the next ready retries.
                    log.warning(
                        "fill failed", extra={"conversation_id": conversation_id, "error": exc.code}
                    )
                    self._fills.pop(conversation_id, None)
                    return
            except httpx.TransportError:
                pass
            else:
                outcome = self._tracker.fill_done(
                    conversation_id,
                    window.messages,
                    window.last_seq,
                    expired_through_seq=window.expired_through_seq,
                )
                self._fills.pop(conversation_id, None)
                self._apply(outcome)
                return
            # Transient: try again shortly (a reconnect's ready also restarts the fill).
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _mark_delivered_loop(self) -> None:
        while True:
            await self._marks_waiting.wait()
            await asyncio.sleep(DELIVERED_COALESCE_SECONDS)
            await self._ready.wait()
            self._marks_waiting.clear()
            marks, self._marks = self._marks, {}
            for conversation_id, seq in marks.items():
                try:
                    await self.call(
                        "delivered.mark", {"conversation_id": conversation_id, "seq": seq}
                    )
                except ConnectionLost:
                    self._marks.setdefault(conversation_id, seq)  # again after reconnecting
                    self._marks_waiting.set()
                except (CallError, TimeoutError) as exc:
                    log.debug("delivered.mark failed", extra={"error": repr(exc)})
