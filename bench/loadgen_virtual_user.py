"""One virtual user of the load generator: a :class:`Client` is an ``asyncio.Protocol``
driving the ``websockets`` library's sans-I/O ``ClientProtocol`` (handshake, framing,
masking, and permessage-deflate negotiated exactly as the SDK's ``websockets.connect`` and
browsers negotiate it) — with no task, queue or reader per socket, so that one process holds
thousands. Received frames are classified by their first bytes and the send time is read out
of the message text, so a receiver costs a few microseconds per frame and the generator
stays cheaper than the servers it measures.

Frames from the server are read by websockets' parser during the handshake and whenever
permessage-deflate was negotiated; once a connection is open without compression (Parley's
default, ``PARLEY_GATEWAY_COMPRESSION=false``), a few lines below read the unmasked server
frames straight off the buffer — same bytes, a third of the cost — while sending, pongs and
the closing handshake stay with websockets.

What a client counts (deliveries, acks, errors, pongs) it reports to its
:class:`loadgen_worker.Worker`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from typing import TYPE_CHECKING

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response

if TYPE_CHECKING:  # the worker creates its clients: a runtime import would be circular
    from loadgen_worker import Worker

EVENT_CREATED = b'{"op":"event","type":"message.created"'
ACK = b'{"op":"ack"'
READY = b'{"op":"ready"'
ERROR = b'{"op":"error"'
PONG = b'{"op":"pong"'
CONTENT = b'"content":"'
REF = b'"ref":"'
PING_FRAME = b'{"op":"ping"}'


class Client(asyncio.Protocol):
    """One WebSocket to ``/ws``: handshake, identify, then frames in and out."""

    def __init__(self, worker: Worker, key: int, token: str) -> None:
        self.worker = worker
        self.key = key
        self.token = token
        extensions = enable_client_permessage_deflate(None) if worker.deflate else None
        self.ws = ClientProtocol(worker.uri, extensions=extensions, max_size=None)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[float] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.heartbeat_seconds = 25.0
        self.next_ping = math.inf
        self.inflight = 0
        self.sent_at: dict[bytes, int] = {}
        self.refs = itertools.count(1)
        self.conversation_id = ""  # where this client sends during a step
        self.close_code: int | None = None
        self.fast = False  # reading frames with read_frames() instead of websockets' parser
        self.buffer = b""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self.fast:
            self.read_frames(data)
            return
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                if event.opcode is Opcode.TEXT:
                    self._on_text(event.data)
                elif event.opcode is Opcode.CLOSE:
                    self.close_code = ws.close_code
            elif isinstance(event, Response):
                if ws.handshake_exc is not None:
                    self._fail(ws.handshake_exc)
                else:
                    # Nothing follows the handshake until identify is answered, so the
                    # parser sits at a frame boundary with an empty buffer: safe to switch.
                    self.fast = not ws.extensions and not ws.reader.buffer
                    self.send(b'{"op":"identify","token":"' + self.token.encode() + b'"}')
        self._flush()

    def read_frames(self, data: bytes) -> None:
        """Unmasked, unfragmented, uncompressed server frames (RFC 6455 §5.2)."""
        buffer = self.buffer + data if self.buffer else data
        end = len(buffer)
        position = 0
        while end - position >= 2:
            first = buffer[position]
            length = buffer[position + 1] & 0x7F
            head = 2
            if length == 126:
                if end - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                head = 4
            elif length == 127:
                if end - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                head = 10
            stop = position + head + length
            if stop > end:
                break
            payload = buffer[position + head : stop]
            position = stop
            opcode = first & 0x0F
            if opcode == 1 and first & 0x80:
                self._on_text(payload)
            elif opcode == 9:  # ping: websockets builds the masked pong
                self.ws.send_pong(payload)
                self._flush()
            elif opcode == 8:  # close: answer it and hang up
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self.fast = False
                if self.transport is not None:
                    self.transport.close()
                return
            elif opcode != 10:
                raise ValueError(f"unexpected frame opcode {opcode} (fin={first >> 7})")
        self.buffer = buffer[position:] if position < end else b""

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.on_lost(self)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready ({self.close_code})"))
        if not self.lost.done():
            self.lost.set_result(None)

    # frames

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            else:  # the protocol wants the TCP connection closed
                transport.close()
                return

    def _fail(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, frame: bytes) -> None:
        self.ws.send_text(frame)
        self._flush()

    def send_message(self, content_pad: str) -> None:
        worker = self.worker
        ref = str(next(self.refs)).encode()
        now = time.monotonic_ns()
        self.sent_at[ref] = now
        self.inflight += 1
        worker.sent += 1
        frame = (
            b'{"op":"call","ref":"' + ref + b'","method":"message.send","params":{"conversation_id":"'
            + self.conversation_id.encode() + b'","content":"' + str(now).encode() + b" "
            + content_pad.encode() + b'","client_msg_id":"' + worker.nonce
            + str(self.key).encode() + b"." + ref + b'"}}'
        )
        self.send(frame)

    def _on_text(self, data: bytes) -> None:
        worker = self.worker
        if data.startswith(EVENT_CREATED):
            start = data.find(CONTENT) + len(CONTENT)
            end = data.find(b" ", start)
            try:
                sent = int(data[start:end])
            except ValueError:  # a message the benchmark did not write
                worker.other += 1
                return
            worker.on_delivery(time.monotonic_ns(), sent)
        elif data.startswith(ACK):
            start = data.find(REF) + len(REF)
            ref = bytes(data[start : data.find(b'"', start)])
            sent = self.sent_at.pop(ref, None)
            if sent is not None:
                self.inflight -= 1
                worker.on_ack(self, time.monotonic_ns(), sent)
        elif data.startswith(READY):
            if not self.ready.done():
                at = time.monotonic()
                self.ready.set_result(at)
                self.heartbeat_seconds = _heartbeat_seconds(data)
                # Pings spread over the interval, as independent clients' would be.
                self.next_ping = at + random.uniform(0.2, 1.0) * self.heartbeat_seconds
        elif data.startswith(ERROR):
            worker.errors += 1
            if len(worker.error_samples) < 5:
                worker.error_samples.append(data[:300].decode(errors="replace"))
            start = data.find(REF)
            if start >= 0 and data[start + len(REF) - 1 : start + len(REF)] == b'"':
                ref = bytes(data[start + len(REF) : data.find(b'"', start + len(REF))])
                if self.sent_at.pop(ref, None) is not None:
                    self.inflight -= 1
        elif data.startswith(PONG):
            worker.pongs += 1
        else:
            worker.other += 1

    def ping(self) -> None:
        self.send(PING_FRAME)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.ws.send_close(1000)
                self._flush()
            except Exception:  # already closing on the protocol's side
                pass
            self.transport.close()


def _heartbeat_seconds(ready: bytes) -> float:
    marker = b'"heartbeat_interval_ms":'
    start = ready.find(marker)
    if start < 0:
        return 25.0
    start += len(marker)
    end = start
    while end < len(ready) and ready[end : end + 1].isdigit():
        end += 1
    return int(ready[start:end]) / 1000 if end > start else 25.0
