"""A socket's waiting frames go out together: the outbox hands its writer every frame that
waits, and on uvicorn's websockets-sansio protocol (what ``parley serve`` runs) they are one
write to the kernel. Against a real uvicorn server over loopback and a real client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected
from websockets.asyncio.client import connect

from parley.gateway.connection_host import Disconnected
from parley.gateway.endpoint import StarletteSocket
from parley.gateway.outbox import BATCH_CHARS, Outbox
from parley.gateway.uvicorn_frames import sansio_protocol, write_frames
from tests.support.gateway_helpers import WAIT
from tests.support.integration_helpers import serving

FRAMES = ['{"op":"ack","ref":"1"}', '{"op":"event","text":"東京 👍🏽 naïve"}', "x" * 5000]


class CountingTransport:
    """The real transport, with its writes counted (asyncio's and uvloop's transports take
    no new attributes, so the count wraps them)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Endpoint:
    """An ASGI app of one WebSocket route that writes what each test asks, as Parley's
    endpoint does (through :class:`StarletteSocket`)."""

    def __init__(self) -> None:
        self.socket: StarletteSocket | None = None
        self.protocol: Any = None
        self.transport: CountingTransport | None = None
        self.ready = asyncio.Event()
        self.gone = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        self.socket = StarletteSocket(websocket, receive, send)
        self.protocol = sansio_protocol(send)
        if self.protocol is not None:
            self.transport = CountingTransport(self.protocol.transport)
            self.protocol.transport = self.transport
        self.ready.set()
        while not isinstance(await self.socket.receive(), Disconnected):
            pass
        self.gone.set()


def as_parley_serves(deflate: bool) -> dict[str, Any]:
    # The WebSocket options `parley serve` passes (src/parley/cli.py); uvicorn picks the
    # implementation itself (ws="auto") as it does there.
    return {"ws_max_size": 1_048_576, "ws_per_message_deflate": deflate, "ws_ping_interval": None}


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "permessage-deflate"])
async def test_waiting_frames_are_one_write_and_arrive_whole_in_order(deflate: bool) -> None:
    endpoint = Endpoint()
    async with serving(endpoint, **as_parley_serves(deflate)) as port:
        compression = "deflate" if deflate else None
        async with connect(f"ws://127.0.0.1:{port}/ws", compression=compression) as client:
            await asyncio.wait_for(endpoint.ready.wait(), WAIT)
            # The installed uvicorn is the one the fast path reaches into: if an upgrade
            # changed what it uses, this fails instead of Parley writing a frame at a time.
            assert endpoint.protocol is not None and endpoint.transport is not None
            assert endpoint.socket is not None
            await endpoint.socket.send_frames(FRAMES)
            assert endpoint.transport.writes == 1
            received = [await asyncio.wait_for(client.recv(), WAIT) for _ in FRAMES]
            assert received == FRAMES
            assert (client.protocol.extensions != []) is deflate  # compressed when offered


async def test_a_write_after_the_peer_left_says_disconnected_and_writes_nothing() -> None:
    endpoint = Endpoint()
    async with serving(endpoint, **as_parley_serves(False)) as port:
        async with connect(f"ws://127.0.0.1:{port}/ws") as client:
            await asyncio.wait_for(endpoint.ready.wait(), WAIT)
        del client
        await asyncio.wait_for(endpoint.gone.wait(), WAIT)
        assert endpoint.transport is not None
        writes = endpoint.transport.writes
        with pytest.raises(ClientDisconnected):
            await write_frames(endpoint.protocol, ["late"])
        assert endpoint.transport.writes == writes


async def test_without_uvicorns_protocol_each_frame_is_an_asgi_send() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:  # an ASGI server's send that is not uvicorn's
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    scope: dict[str, Any] = {"type": "websocket", "path": "/ws", "headers": []}
    socket = StarletteSocket(WebSocket(scope, receive, send), receive, send)
    await socket.send_frames(["a", "b"])
    assert sent == [{"type": "websocket.send", "text": "a"}, {"type": "websocket.send", "text": "b"}]


class Batches:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()

    async def send_frames(self, frames: Sequence[str]) -> None:
        self.calls.append(list(frames))
        await self.release.wait()  # a socket whose buffer is full, until released

    async def close(self, code: int, reason: str) -> None:
        self.calls.append([f"close {code}"])


async def test_the_outbox_writes_what_waits_as_one_batch_within_its_bound() -> None:
    outbox = Outbox(1_000)
    writer = Batches()
    finished = outbox.start(writer)
    outbox.offer("first")
    for _ in range(100):  # the writer task takes "first" and waits on the socket
        if writer.calls:
            break
        await asyncio.sleep(0)
    assert writer.calls == [["first"]]
    big = "y" * (BATCH_CHARS // 2)
    for frame in ["a", "b", big, big, "c"]:
        outbox.offer(frame)
    writer.release.set()
    outbox.close(1000, "bye")
    await asyncio.wait_for(finished, WAIT)
    # Everything that waited, in order; a batch stops once it holds BATCH_CHARS.
    assert writer.calls == [["first"], ["a", "b", big, big], ["c"], ["close 1000"]]
    assert outbox.sent == 6

