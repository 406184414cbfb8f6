"""``/ws``: the Starlette WebSocket route, and the adapter from Starlette's socket to the
gateway's narrow :class:`~parley.gateway.connection.Socket`.

This is the only gateway module that imports Starlette; everything past it sees text
frames in and text frames out.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketState

from parley.errors import OriginNotAllowed
from parley.gateway.connection import Disconnected, Inbound
from parley.gateway.node import Gateway

router = APIRouter()

# What Starlette reports when the peer vanished without a close frame.
ABNORMAL_CLOSURE = 1006


class StarletteSocket:
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

    async def send_text(self, text: str) -> None:
        await self._websocket.send_text(text)

    async def close(self, code: int, reason: str) -> None:
        if self._websocket.application_state is WebSocketState.CONNECTED:
            await self._websocket.close(code, reason[:120])  # a close reason fits 123 bytes


@router.websocket("/ws")
async def gateway_socket(websocket: WebSocket) -> None:
    """The real-time gateway (protocol: ``docs/protocol.md``). No token in the URL: the
    first frame identifies."""
    gateway: Gateway = websocket.app.state.gateway
    if not gateway.origins.allows(websocket.headers.get("origin"), websocket.headers.get("host")):
        await refuse(websocket, OriginNotAllowed())
        return
    await websocket.accept()
    await gateway.serve(StarletteSocket(websocket))


async def refuse(websocket: WebSocket, error: OriginNotAllowed) -> None:
    """Refuse the upgrade with the error body every other refusal has (HTTP 403), or, on a
    server without the denial-response extension, with a bare 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        request_id = websocket.scope.get("state", {}).get("request_id", "")
        response = JSONResponse({"error": {**error.to_dict(), "request_id": request_id}}, status_code=error.status)
        await websocket.send_denial_response(response)
    else:
        await websocket.close(1008)  # before accept: the server answers 403
