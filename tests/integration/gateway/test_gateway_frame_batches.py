"""A socket's waiting frames go out together: the outbox hands its writer every frame that
waits, and on uvicorn's websockets-sansio protocol (what ``parley serve`` runs) they are one
write to the kernel — at the end of the loop turn they came in, without a task, while the
transport takes them. Against a real uvicorn server over loopback and a real client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected
from websockets.asyncio.client import ClientConnection, connect

from parley.gateway.connection_host import Disconnected
from parley.gateway.endpoint import StarletteSocket
from parley.gateway.outbox import BATCH_CHARS, Flusher, Outbox
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


@contextlib.asynccontextmanager
async def connected(*, deflate: bool = False) -> AsyncIterator[tuple[Endpoint, ClientConnection]]:
    """An :class:`Endpoint` on a real uvicorn server and a real client connected to it,
    offering permessage-deflate when ``deflate``."""
    endpoint = Endpoint()
    async with serving(endpoint, **as_parley_serves(deflate)) as port:
        compression = "deflate" if deflate else None
        async with connect(f"ws://127.0.0.1:{port}/ws", compression=compression) as client:
            await asyncio.wait_for(endpoint.ready.wait(), WAIT)
            yield endpoint, client


async def turns_until(done: Callable[[], object]) -> None:
    """Let the event loop turn (a writer task, a flush) until ``done()``: at most 100 turns,
    and the caller asserts what it waited for."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0)


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "permessage-deflate"])
async def test_waiting_frames_are_one_write_and_arrive_whole_in_order(deflate: bool) -> None:
    async with connected(deflate=deflate) as (endpoint, client):
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
    async with connected() as (endpoint, client):
        await client.close()
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


async def test_frames_offered_in_one_turn_leave_at_its_end_in_one_write_without_a_task() -> None:
    async with connected() as (endpoint, client):
        assert endpoint.socket is not None and endpoint.transport is not None
        outbox = Outbox(100, flusher=Flusher())
        finished = outbox.start(endpoint.socket)
        for frame in FRAMES:
            outbox.offer(frame)
        assert outbox.writing is None and endpoint.transport.writes == 0  # not yet
        received = [await asyncio.wait_for(client.recv(), WAIT) for _ in FRAMES]
        assert received == FRAMES
        assert endpoint.transport.writes == 1 and outbox.writing is None
        assert outbox.sent == len(FRAMES)
        outbox.offer("after")  # the next turn's frames: the next write
        assert await asyncio.wait_for(client.recv(), WAIT) == "after"
        assert endpoint.transport.writes == 2
        outbox.offer("last")
        outbox.close(1000, "bye")  # frames first, then the close frame (a writer task)
        assert await asyncio.wait_for(client.recv(), WAIT) == "last"
        await asyncio.wait_for(finished, WAIT)
        await asyncio.wait_for(client.wait_closed(), WAIT)
        assert client.close_code == 1000


class Batches:
    """A socket that takes frames at once only while ``open``; else they wait for
    ``release``, as a full transport's do."""

    def __init__(self, *, open: bool = False, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.open = open
        self.fail = fail
        self.attempts = 0  # write_now calls
        self.waited = 0  # send_frames calls: a writer task's

    def write_now(self, frames: Sequence[str]) -> bool:
        self.attempts += 1
        if self.fail:
            raise ConnectionResetError("peer gone")
        if not self.open:
            return False
        self.calls.append(list(frames))
        return True

    async def send_frames(self, frames: Sequence[str]) -> None:
        self.calls.append(list(frames))
        self.waited += 1
        await self.release.wait()  # a socket whose buffer is full, until released

    async def close(self, code: int, reason: str) -> None:
        self.calls.append([f"close {code}"])


async def test_the_outbox_writes_what_waits_as_one_batch_within_its_bound() -> None:
    outbox = Outbox(1_000)
    writer = Batches()
    finished = outbox.start(writer)
    outbox.offer("first")
    await turns_until(lambda: writer.calls)  # the writer task takes "first" and waits on the socket
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


async def test_a_socket_that_cannot_take_frames_at_once_gets_a_writer_that_waits() -> None:
    flusher = Flusher()
    outbox = Outbox(100, flusher=flusher)
    writer = Batches(open=False)
    finished = outbox.start(writer)
    outbox.offer("a")
    outbox.offer("b")
    await turns_until(lambda: writer.calls)  # the flush at the turn's end hands both to a writer task
    assert writer.calls == [["a", "b"]] and outbox.writing is not None
    outbox.offer("c")  # the waiting writer takes it after, in order
    writer.open = True
    writer.release.set()
    await turns_until(lambda: outbox.writing is None)
    assert writer.calls == [["a", "b"], ["c"]] and outbox.writing is None
    waited = writer.waited
    outbox.offer("d")  # the socket takes frames at once again: written in place, no task
    assert outbox.writing is None
    await asyncio.sleep(0)
    assert writer.calls[-1] == ["d"] and writer.waited == waited and outbox.writing is None
    assert not finished.done()


async def test_a_full_transport_hands_the_frames_to_a_writer_that_waits_for_it() -> None:
    async with connected() as (endpoint, client):
        assert endpoint.socket is not None and endpoint.transport is not None
        outbox = Outbox(100, flusher=Flusher())
        outbox.start(endpoint.socket)
        endpoint.protocol.pause_writing()  # what the transport calls above its high-water mark
        outbox.offer("one")
        outbox.offer("two")
        await turns_until(lambda: outbox.writing is not None)  # the flush found it full
        assert outbox.writing is not None and endpoint.transport.writes == 0
        outbox.offer("three")
        endpoint.protocol.resume_writing()  # below the low-water mark again
        received = [await asyncio.wait_for(client.recv(), WAIT) for _ in range(3)]
        assert received == ["one", "two", "three"]


async def test_stamped_frames_written_in_place_are_timed() -> None:
    observed: list[float] = []
    writer = Batches(open=True)
    outbox = Outbox(100, observed.append, Flusher())
    outbox.start(writer)
    outbox.offer("a")
    outbox.offer("b")
    outbox.stamp(time.time() - 0.5)  # "b" was committed half a second ago
    outbox.offer("c")
    await turns_until(lambda: writer.calls)
    assert writer.calls == [["a", "b", "c"]] and writer.waited == 0
    assert len(observed) == 1 and 0.5 <= observed[0] < 60


async def test_a_flush_left_pending_on_a_loop_that_stopped_does_not_hold_later_ones() -> None:
    flusher = Flusher()
    stopped = asyncio.new_event_loop()
    stopped.close()
    flusher._scheduled_on = stopped  # a flush was scheduled there and never ran
    writer = Batches(open=True)
    outbox = Outbox(100, flusher=flusher)
    outbox.start(writer)
    outbox.offer("still written")
    await turns_until(lambda: writer.calls)
    assert writer.calls == [["still written"]]


async def test_one_sockets_failed_write_leaves_the_others_written() -> None:
    flusher = Flusher()
    broken, healthy = Batches(fail=True), Batches(open=True)
    gone, fine = Outbox(100, flusher=flusher), Outbox(100, flusher=flusher)
    gone_finished, fine_finished = gone.start(broken), fine.start(healthy)
    gone.offer("to the gone peer")
    fine.offer("to the reader")
    await asyncio.wait_for(gone_finished, WAIT)  # the failed socket is finished with
    await turns_until(lambda: healthy.calls)
    assert healthy.calls == [["to the reader"]] and not fine_finished.done()
    assert gone.offer("later")  # dropped: nothing more is written to a failed socket
    for _ in range(10):
        await asyncio.sleep(0)
    assert broken.attempts == 1 and gone.writing is None


async def test_one_frame_fanned_out_in_a_turn_reaches_every_socket_whole() -> None:
    # Uncompressed frames are built once per turn and shared by every socket they go to;
    # the three header sizes of RFC 6455 (7-bit, 16-bit and 64-bit lengths) among them.
    frames = ["short 東京", "m" * 300, "L" * 70_000]
    async with connected() as (first, one), connected() as (second, two):
        flusher = Flusher()
        outboxes = [Outbox(100, flusher=flusher) for _ in (first, second)]
        for outbox, endpoint in zip(outboxes, (first, second), strict=True):
            assert endpoint.socket is not None
            outbox.start(endpoint.socket)
        for frame in frames:
            for outbox in outboxes:
                outbox.offer(frame)
        for client in (one, two):
            assert [await asyncio.wait_for(client.recv(), WAIT) for _ in frames] == frames
