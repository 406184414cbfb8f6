"""``/ws``: the entry of WebSocket upgrades, and the adapter from Starlette's socket to
the gateway's narrow :class:`~parley.gateway.connection.Socket`.

This is the only gateway module that imports Starlette; everything past it sees text
frames in and text frames out.

``/ws`` is served by :class:`GatewayEntry`, an ASGI middleware outside the HTTP middleware
and the router, not by a route: every frame a socket sends passes through each layer its
``send`` was wrapped in, and each socket holds the suspended calls of every layer it went
through for its whole life. None of those layers does anything for a WebSocket (security
headers, CORS and body limits are HTTP's; the request observer only names the request), and
routing an upgrade past a hundred API routes cost connect time (docs/benchmarks.md, round
two).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from parley.errors import OriginNotAllowed
from parley.gateway.connection_host import Disconnected, Inbound
from parley.gateway.node import Gateway
from parley.observability.requests import request_id_from

PATH = "/ws"

# What Starlette reports when the peer vanished without a close frame.
ABNORMAL_CLOSURE = 1006


class StarletteSocket:
    __slots__ = ("_websocket",)

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive(self) -> Inbound:
        if self._websocket.client_state is WebSocketState.DISCONNECTED:
            return Disconnected(ABNORMAL_CLOSURE)
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
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

    async def send_text(self, text: str) -> None:
        # The ASGI message itself (what send_text builds): one call less per frame.
        await self._websocket.send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if self._websocket.application_state is WebSocketState.CONNECTED:
            await self._websocket.close(code, reason[:120])  # a close reason fits 123 bytes


async def gateway_socket(websocket: WebSocket) -> None:
    """The real-time gateway (protocol: ``docs/protocol.md``). No token in the URL: the
    first frame identifies."""
    gateway: Gateway = websocket.app.state.gateway
    if not gateway.origins.allows(websocket.headers.get("origin"), websocket.headers.get("host")):
        await refuse(websocket, OriginNotAllowed())
        return
    await websocket.accept()
    await gateway.serve(StarletteSocket(websocket))


class GatewayEntry:
    """Pure ASGI: a WebSocket upgrade of ``/ws`` goes to the gateway; anything else to the
    app. Added as the outermost middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == PATH:
            # What the request observer would have recorded: refusals carry the request id.
            scope.setdefault("state", {})["request_id"] = request_id_from(scope)
            await gateway_socket(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


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
