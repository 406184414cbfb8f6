"""``/ws``: the entry of WebSocket upgrades, and the adapter from Starlette's socket to
the gateway's narrow :class:`~parley.gateway.connection.Socket`.

This is the only gateway module that imports Starlette; everything past it sees text
frames in and text frames out.

``/ws`` is not a route: the app (``parley.app.ParleyApp``) hands an upgrade of it to
:func:`serve_upgrade` before FastAPI's middleware stack and router see it. Every frame a
socket sends passes through each layer its ``send`` was wrapped in, and each socket holds the
suspended calls of every layer it went through for its whole life. None of those layers does
anything for a WebSocket that Parley uses: security headers, CORS and body limits are HTTP's;
FastAPI's error and body-limit layers pass a socket through; the request observer only names
the request; FastAPI's native telemetry (a span per socket, its exceptions recorded) runs only
when an OpenTelemetry provider is configured, which Parley does not do — its sockets are
observed by the gateway's own metrics and its "gateway session closed" line. And routing an
upgrade past a hundred API routes cost connect time (docs/benchmarks.md, rounds two and nine).
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from parley.errors import OriginNotAllowed
from parley.gateway.connection_host import Disconnected, Inbound
from parley.gateway.node import Gateway
from parley.gateway.uvicorn_frames import sansio_protocol, writable, write_frames, write_frames_now
from parley.observability.requests import request_id_from

PATH = "/ws"

# What Starlette reports when the peer vanished without a close frame.
ABNORMAL_CLOSURE = 1006


class StarletteSocket:
    """After the handshake, frames go straight to the server's ASGI ``receive`` and ``send``
(or, on uvicorn's websockets-sansio protocol, several at a time to its transport):
    Starlette's ``WebSocket`` only checks its state on each (nothing a frame can change, once
    accepted) and was a coroutine more per frame and per idle socket. It still accepts,
    refuses, closes and names the peer."""

    __slots__ = ("_websocket", "_receive", "_send", "_gone", "_protocol")

    def __init__(self, websocket: WebSocket, receive: Receive, send: Send) -> None:
        self._websocket = websocket
        self._receive = receive
        self._send = send
        self._gone = False
        # uvicorn's protocol when several frames can go out in one write (uvicorn_frames).
        self._protocol = sansio_protocol(send)

    async def receive(self) -> Inbound:
        if self._gone:  # asked again after the disconnect (the server has nothing more)
            return Disconnected(ABNORMAL_CLOSURE)
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._gone = True
            return Disconnected(int(message.get("code", ABNORMAL_CLOSURE)))
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    @property
    def client(self) -> str | None:
        # Read when the session ends, not kept: ten thousand idle sockets need no copy.
        peer = self._websocket.client
        return f"{peer.host}:{peer.port}" if peer is not None else None

    async def send_frames(self, frames: Sequence[str]) -> None:
        if self._protocol is not None:
            await write_frames(self._protocol, frames)
            return
        for text in frames:
            await self._send({"type": "websocket.send", "text": text})

    def write_now(self, frames: Sequence[str]) -> bool:
        protocol = self._protocol
        if protocol is None or not writable(protocol):
            return False
        write_frames_now(protocol, frames)
        return True

    async def close(self, code: int, reason: str) -> None:
        if self._websocket.application_state is WebSocketState.CONNECTED:
            await self._websocket.close(code, reason[:120])  # a close reason fits 123 bytes


async def gateway_socket(websocket: WebSocket, receive: Receive, send: Send) -> None:
    """The real-time gateway (protocol: ``docs/protocol.md``). No token in the URL: the
    first frame identifies."""
    gateway: Gateway = websocket.app.state.gateway
    if not gateway.origins.allows(websocket.headers.get("origin"), websocket.headers.get("host")):
        await refuse(websocket, OriginNotAllowed())
        return
    await websocket.accept()
    await gateway.serve(StarletteSocket(websocket, receive, send))


def is_upgrade(scope: Scope) -> bool:
    """Whether ``scope`` is a WebSocket upgrade of ``/ws`` (anything else is the app's)."""
    return scope["type"] == "websocket" and _route_path(scope) == PATH


def serve_upgrade(scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
    """Serve an upgrade :func:`is_upgrade` accepted. ``scope["app"]`` is the app, as
    Starlette sets it for its routes. Not a coroutine itself: a socket's whole life is
    spent inside this call, and one frame less per socket is what this module is for."""
    # What the request observer would have recorded: refusals carry the request id.
    scope.setdefault("state", {})["request_id"] = request_id_from(scope)
    return gateway_socket(WebSocket(scope, receive, send), receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def refuse(websocket: WebSocket, error: OriginNotAllowed) -> None:
    """Refuse the upgrade with the error body every other refusal has (HTTP 403), or, on a
    server without the denial-response extension, with a bare 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        request_id = websocket.scope.get("state", {}).get("request_id", "")
        response = JSONResponse({"error": {**error.to_dict(), "request_id": request_id}}, status_code=error.status)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(1008)  # before accept: the server answers 403
