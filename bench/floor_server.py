"""The floor: a bare broadcast server on Parley's stack, to measure Parley against.

Starlette on uvicorn, started with the same uvicorn options as ``parley serve`` (same event
loop, same WebSocket implementation, same maximum frame size), speaking the same frames as
Parley's gateway (``docs/protocol.md``) — and doing nothing else: no authentication, no
validation beyond ``json.loads``, no persistence, no per-connection queue, no rate limits.

- ``POST /floor/rooms`` ``{"id": ..., "member_ids": [...]}`` makes a room (what creating a
  group or a direct conversation is in Parley). ``GET /healthz`` says it is up.
- ``POST /api/v1/conversations/{id}/messages`` ``{"content": ..., "client_msg_id": ...}``
  sends as Parley's REST route does: the ``message.created`` event to every member's
  connections, then ``201`` with the message. The sender is the bearer token (a user id).
- ``/ws``: the first frame is ``identify``, whose ``token`` is simply the user id; the
  answer is a ``ready`` frame. A ``call`` of ``message.send`` builds a ``message.created``
  event with every field Parley's has (same keys, same id and timestamp formats, so the
  same size), encodes it once, queues it for every connection of every member of the room,
  then acknowledges with an ``ack`` carrying the message, as Parley does.

Each connection has the least a broadcast server needs so that one slow receiver does not
stall everyone: a deque of frames and a writer task draining it. (Awaiting ``send_text``
for each recipient in turn instead blocks the whole broadcast on any socket whose buffer
is full; measured here it delivered about a third less at 1,000 members than Parley.) ``ping`` gets
  ``pong``; any other call is acknowledged with ``{}``.

permessage-deflate follows Parley's setting (``PARLEY_GATEWAY_COMPRESSION``, off by
default), so both servers compress — or not — alike.

    python bench/floor_server.py [--port 8765] [--compression]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """A 26-character time-ordered id, the same shape as Parley's (``parley.ids``)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class Outlet:
    """One connection's queued frames and the task that writes them."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.frames: deque[str] = deque()
        self.wakeup = asyncio.Event()

    def push(self, frame: str) -> None:
        self.frames.append(frame)
        self.wakeup.set()

    async def drain(self) -> None:
        try:
            while True:
                while self.frames:
                    await self.websocket.send_text(self.frames.popleft())
                self.wakeup.clear()
                await self.wakeup.wait()
        except Exception:  # the socket went away: the reader cleans up
            pass


class Floor:
    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {}
        self.seqs: dict[str, itertools.count[int]] = {}
        self.sockets: dict[str, list[Outlet]] = {}

    def message(self, room: str, sender: str, params: dict[str, Any]) -> dict[str, Any]:
        seq = next(self.seqs[room])
        return {
            "id": new_id(),
            "conversation_id": room,
            "seq": seq,
            "version_seq": seq,
            "sender_id": sender,
            "kind": "text",
            "content": params.get("content", ""),
            "client_msg_id": params.get("client_msg_id"),
            "reply_to_id": None,
            "reply_to": None,
            "mentions": [],
            "system_event": None,
            "reactions": [],
            "attachments": [],
            "created_at": now_iso(),
            "edited_at": None,
            "deleted_at": None,
            "deleted": False,
        }

    def broadcast(self, room: str, frame: str) -> None:
        for member in self.rooms.get(room, ()):
            for outlet in self.sockets.get(member, ()):
                outlet.push(frame)


floor = Floor()


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def make_room(request: Request) -> JSONResponse:
    body = await request.json()
    room = str(body["id"])
    floor.rooms[room] = [str(m) for m in body["member_ids"]]
    floor.seqs.setdefault(room, itertools.count(1))
    return JSONResponse({"id": room, "member_count": len(floor.rooms[room])}, status_code=201)


async def send_message(request: Request) -> JSONResponse:
    room = request.path_params["room"]
    if room not in floor.rooms:
        return JSONResponse({"error": {"code": "NOT_FOUND"}}, status_code=404)
    sender = request.headers.get("authorization", "").partition(" ")[2]
    message = floor.message(room, sender, await request.json())
    event = {"conversation_id": room, "seq": message["seq"], "message": message}
    floor.broadcast(room, encode({"op": "event", "type": "message.created", "data": event}))
    return JSONResponse({"message": message}, status_code=201)


async def gateway(websocket: WebSocket) -> None:
    await websocket.accept()
    user = ""
    outlet = Outlet(websocket)
    writer = asyncio.create_task(outlet.drain())
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            op = frame.get("op")
            if op == "ping":
                outlet.push('{"op":"pong"}')
            elif op == "identify":
                user = str(frame.get("token", ""))
                floor.sockets.setdefault(user, []).append(outlet)
                ready = {
                    "user": {"id": user, "username": user, "display_name": user},
                    "session_id": new_id(),
                    "heartbeat_interval_ms": 25000,
                    "max_frame_bytes": 65536,
                    "conversations": [],
                    "presences": [],
                }
                outlet.push(encode({"op": "ready", "data": ready}))
            elif op == "call" and frame.get("method") == "message.send":
                params = frame.get("params") or {}
                room = str(params.get("conversation_id"))
                message = floor.message(room, user, params)
                event = {"conversation_id": room, "seq": message["seq"], "message": message}
                floor.broadcast(room, encode({"op": "event", "type": "message.created", "data": event}))
                ack = {"op": "ack", "ref": frame.get("ref"), "data": {"message": message, "created": True}}
                outlet.push(encode(ack))
            elif op == "call":
                outlet.push(encode({"op": "ack", "ref": frame.get("ref"), "data": {}}))
    except WebSocketDisconnect:
        pass
    finally:
        writer.cancel()
        if user and outlet in floor.sockets.get(user, ()):
            floor.sockets[user].remove(outlet)


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/floor/rooms", make_room, methods=["POST"]),
        Route("/api/v1/conversations/{room}/messages", send_message, methods=["POST"]),
        WebSocketRoute("/ws", gateway),
    ]
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLOOR_PORT", "8765")))
    parser.add_argument(
        "--compression",
        action="store_true",
        default=os.environ.get("PARLEY_GATEWAY_COMPRESSION", "").lower() in ("1", "true", "yes"),
        help="negotiate permessage-deflate (default: as PARLEY_GATEWAY_COMPRESSION, off)",
    )
    args = parser.parse_args()
    # The options ``parley serve`` passes (src/parley/cli.py), so only the app differs.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # Parley's default (PARLEY_TRUST_PROXY_HEADERS=false)
        timeout_graceful_shutdown=10,
        ws_max_size=1_048_576,
        ws_per_message_deflate=args.compression,
        ws_ping_interval=None,  # as parley serve: the gateway heartbeat finds dead peers
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
