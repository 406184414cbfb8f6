"""Several WebSocket frames in one write to the kernel, on uvicorn's websockets-sansio
protocol (what ``parley serve`` runs: uvicorn's ``ws="auto"`` with websockets installed).

ASGI takes one message per ``send``, and uvicorn writes each one to its transport at once:
a ``send`` system call per frame. At saturation that call was most of the event loop's time
(docs/benchmarks.md, rounds six and ten), and a socket often has several frames waiting at
once: the ``ack`` of a message and its ``message.created``; a burst of committed messages
into a busy group, each a frame for every member. :func:`write_frames_now` frames them all with
the protocol's own sans-I/O state machine — the same calls its ``send`` makes, so the bytes
on the wire are the ones a ``send`` per frame would write, compressed or not — and hands the
transport one buffer. Without compression a frame's bytes are the same on every socket, so
each is serialized once per loop turn, by websockets' ``Frame.serialize``, however many
sockets it goes to.

This reaches into uvicorn's protocol object (``send`` is its bound method): ``conn``,
``transport``, ``writable``, ``disconnected``, ``close_sent``, ``handshake_complete``. They are
not public API, so :func:`sansio_protocol` takes the fast path only for that exact class with
every one of them present, and ``tests/integration/gateway/test_gateway_frame_batches.py``
asserts the fast path is taken with the uvicorn installed: an upgrade that changes them fails
that test instead of quietly writing a frame at a time again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.types import Send

try:
    from uvicorn.protocols.utils import ClientDisconnected
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.exceptions import InvalidState
    from websockets.frames import Frame, Opcode
    from websockets.protocol import State
except ImportError:  # another server, or uvicorn without websockets: a send per frame
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

# What write_frames touches, checked once per socket (the class is uvicorn's, not ours).
_USED = ("conn", "transport", "writable", "disconnected", "close_sent", "handshake_complete")

# Uncompressed text frames serialized in this turn of the event loop, by their text: a
# fan-out writes one frame to every member's socket in the same turn. Emptied at the turn's
# end, so it holds no more than the outboxes it was written from.
_this_turn: dict[str, bytes] = {}


def _shared_frame(frame: str) -> bytes:
    """``frame`` as websockets serializes an unmasked text frame without extensions (what a
    server's ``send_text`` writes when nothing was negotiated)."""
    data = _this_turn.get(frame)
    if data is None:
        if not _this_turn:
            asyncio.get_running_loop().call_soon(_this_turn.clear)
        data = _this_turn[frame] = Frame(Opcode.TEXT, frame.encode()).serialize(mask=False)
    return data


def sansio_protocol(send: Send) -> Any | None:
    """The uvicorn protocol behind ``send`` when :func:`write_frames` can write to it."""
    protocol = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or type(protocol) is not WebSocketsSansIOProtocol:
        return None
    if not all(hasattr(protocol, name) for name in _USED):
        return None
    return protocol


def writable(protocol: Any) -> bool:
    """Whether the transport is below its high-water mark (uvicorn's ``send`` would not
    wait): :func:`write_frames_now` may write."""
    return bool(protocol.writable.is_set())


async def write_frames(protocol: Any, frames: Sequence[str]) -> None:
    """Write ``frames`` as text frames, in order, in one transport write, once the transport
    is below its high-water mark (as uvicorn's ``send`` waits)."""
    await protocol.writable.wait()
    write_frames_now(protocol, frames)


def write_frames_now(protocol: Any, frames: Sequence[str]) -> None:
    """Write ``frames`` as text frames, in order, in one transport write, now. Raises
    uvicorn's ``ClientDisconnected`` where its ``send`` would: the peer is gone or the socket
    is closing (the caller then writes nothing more)."""
    if protocol.disconnected or protocol.close_sent or not protocol.handshake_complete:
        raise ClientDisconnected()
    conn = protocol.conn
    if not conn.extensions and not conn.expect_continuation_frame and conn.state is State.OPEN:
        # No compression: a text frame's bytes are the same on every socket. Each frame is
        # built once per loop turn however many sockets it goes to (and all before any write,
        # so a frame that cannot be encoded writes nothing); what send_text would have checked
        # is checked above, and conn's own buffer, normally empty, goes first.
        data = b"".join([_shared_frame(frame) for frame in frames])
        pending = conn.data_to_send()
        protocol.transport.write(b"".join([*pending, data]) if pending else data)
        return
    # Encoded before the state machine is touched, as uvicorn's send does: a frame that
    # cannot be encoded must not leave the ones before it framed and unwritten in ``conn``.
    payloads = [frame.encode() for frame in frames]
    try:
        for payload in payloads:
            conn.send_text(payload)
    except InvalidState:  # the close handshake began: uvicorn's send says the same
        raise ClientDisconnected() from None
    protocol.transport.write(b"".join(conn.data_to_send()))
