"""The load generator: virtual users on bare asyncio transports, speaking the gateway protocol.

Thousands of sockets per process: each virtual user is one :class:`Client` — an
``asyncio.Protocol`` driving the ``websockets`` library's sans-I/O ``ClientProtocol``
(handshake, framing, masking, and permessage-deflate negotiated exactly as the SDK's
``websockets.connect`` and browsers negotiate it) — with no task, queue or reader per
socket. Received frames are classified by their first bytes and the send time is read out
of the message text, so a receiver costs a few microseconds per frame and the generator
stays cheaper than the servers it measures.

Frames from the server are read by websockets' parser during the handshake and whenever
permessage-deflate was negotiated; once a connection is open without compression (Parley's
default, ``PARLEY_GATEWAY_COMPRESSION=false``), a few lines below read the unmasked server
frames straight off the buffer — same bytes, a third of the cost — while sending, pongs and
the closing handshake stay with websockets.

A worker is one process with one event loop (uvloop when installed) and many clients.
The harness (``gateway_bench.py``) starts several with :class:`LoadGenerator` and gives
them commands over a pipe: connect these users, run a step (these senders, this rate,
this long), reconnect everyone at once, close.

Latency: every ``message.send`` carries ``time.monotonic_ns()`` at the start of its
content; every receiver subtracts it from its own clock when the ``message.created`` event
arrives (CLOCK_MONOTONIC is one clock for every process on the machine). Latencies go into
a log-scale histogram (2 % buckets), merged across workers for p50 / p95 / p99.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import os
import random
import resource
import secrets
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

# --- histograms

HIST_BASE = 1.02  # bucket width: 2 %
_LOG_BASE = math.log(HIST_BASE)
HIST_BUCKETS = 1200  # 1.02 ** 1200 µs is about 6 hours: nothing overflows


def bucket(micros: int) -> int:
    if micros < 1:
        return 0
    index = int(math.log(micros) / _LOG_BASE)
    return index if index < HIST_BUCKETS else HIST_BUCKETS - 1


def new_histogram() -> list[int]:
    return [0] * HIST_BUCKETS


def merge(histograms: list[list[int]]) -> list[int]:
    return [sum(column) for column in zip(*histograms, strict=True)] if histograms else new_histogram()


def percentile_ms(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in milliseconds, to within the 2 % bucket width."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            return round(HIST_BASE ** (index + 0.5) / 1000, 3)
    return None


def summary(histogram: list[int]) -> dict[str, float | int | None]:
    return {
        "count": sum(histogram),
        "p50_ms": percentile_ms(histogram, 0.50),
        "p95_ms": percentile_ms(histogram, 0.95),
        "p99_ms": percentile_ms(histogram, 0.99),
        "max_ms": percentile_ms(histogram, 1.0),
    }


# --- one virtual user

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


# --- one process


@dataclass
class StepPlan:
    senders: list[tuple[int, str]]  # (client key, conversation id)
    rate: float  # messages per second from this worker; math.inf: closed loop
    duration: float
    inflight_cap: int
    start_at: float  # monotonic
    content_chars: int
    settle: float


class Worker:
    def __init__(self, index: int, uri: str, deflate: bool) -> None:
        self.index = index
        self.uri = parse_uri(uri)
        self.host = self.uri.host
        self.port = self.uri.port
        self.deflate = deflate
        self.nonce = (secrets.token_hex(3) + f"w{index}.").encode()
        self.clients: dict[int, Client] = {}
        self.tokens: dict[int, str] = {}
        self.disconnects = 0
        self.closing = False
        self._reset(0, 0)

    def _reset(self, start_ns: int, end_ns: int) -> None:
        self.window_start = start_ns
        self.window_end = end_ns
        self.latency = new_histogram()
        self.ack_latency = new_histogram()
        self.deliveries = 0
        self.deliveries_in_window = 0
        self.acks_in_window = 0
        self.acks = 0
        self.sent = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.other = 0
        self.pongs = 0
        self.last_delivery = 0
        self.refill = False

    # callbacks from clients

    def on_delivery(self, now: int, sent: int) -> None:
        self.deliveries += 1
        self.last_delivery = now
        if self.window_start <= sent < self.window_end:
            micros = (now - sent) // 1000
            self.latency[bucket(micros)] += 1
        if self.window_start <= now < self.window_end:
            self.deliveries_in_window += 1

    def on_ack(self, client: Client, now: int, sent: int) -> None:
        self.acks += 1
        if self.window_start <= sent < self.window_end:
            self.ack_latency[bucket((now - sent) // 1000)] += 1
        if self.window_start <= now < self.window_end:
            self.acks_in_window += 1
            if self.refill:  # closed loop: the next message as soon as one is accepted
                client.send_message(self.content_pad)

    def on_lost(self, client: Client) -> None:
        if self.clients.get(client.key) is client:
            if not self.closing:
                self.disconnects += 1
            del self.clients[client.key]

    # commands

    async def _open(self, key: int, token: str, timeout: float) -> float:
        loop = asyncio.get_running_loop()
        _, client = await asyncio.wait_for(
            loop.create_connection(lambda: Client(self, key, token), self.host, self.port),
            timeout,
        )
        self.clients[key] = client
        return await asyncio.wait_for(asyncio.shield(client.ready), timeout)

    async def cmd_connect(
        self, users: list[tuple[int, str]], concurrency: int, timeout: float, retry_until: float = 0.0
    ) -> dict[str, Any]:
        """Open a socket per user and identify; returns when every one has ``ready`` (or
        failed). ``concurrency`` bounds handshakes in flight (0: all at once); failures
        are retried after 50-250 ms until monotonic ``retry_until``."""
        self.closing = False
        self.tokens.update(users)
        limit = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        started = time.monotonic()
        attempts = 0
        last_error: list[str] = []

        async def one(key: int, token: str) -> float | None:
            nonlocal attempts
            while True:
                attempts += 1
                try:
                    if limit is None:
                        return await self._open(key, token, timeout)
                    async with limit:
                        return await self._open(key, token, timeout)
                except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
                    old = self.clients.pop(key, None)
                    if old is not None and old.transport is not None:
                        old.transport.close()
                    last_error[:] = [f"{type(exc).__name__}: {exc}"]
                    if time.monotonic() >= retry_until:
                        return None
                    await asyncio.sleep(random.uniform(0.05, 0.25))

        times = await asyncio.gather(*(one(key, token) for key, token in users))
        done = [t - started for t in times if t is not None]
        return {
            "ok": len(done),
            "failed": len(times) - len(done),
            "attempts": attempts,
            "seconds": time.monotonic() - started,
            "ready_after": sorted(done),
            "last_error": last_error[0] if last_error else None,
        }

    async def cmd_step(self, plan: dict[str, Any]) -> dict[str, Any]:
        step = StepPlan(**plan)
        senders = [(self.clients.get(key), conversation) for key, conversation in step.senders]
        active = [client for client, _ in senders if client is not None]
        for client, conversation in senders:
            if client is not None:
                client.conversation_id = conversation
        self.content_pad = "x" * max(0, step.content_chars - 20)
        await asyncio.sleep(max(0.0, step.start_at - time.monotonic()))
        start = time.monotonic_ns()
        end = start + int(step.duration * 1e9)
        self._reset(start, end)
        offered = 0
        if not active:
            await asyncio.sleep(step.duration)
        elif math.isinf(step.rate):
            self.refill = True
            for client in active:
                for _ in range(step.inflight_cap):
                    client.send_message(self.content_pad)
            offered = -1
            await asyncio.sleep(step.duration)
            self.refill = False
        else:
            cursor = 0
            skipped = 0
            while True:
                now = time.monotonic_ns()
                if now >= end:
                    break
                due = int((now - start) / 1e9 * step.rate) - offered
                for _ in range(due):
                    offered += 1
                    client = active[cursor % len(active)]
                    cursor += 1
                    if client.inflight >= step.inflight_cap:
                        skipped += 1
                    else:
                        client.send_message(self.content_pad)
                await asyncio.sleep(0.002)
        # Settle: wait for what is in flight, then for the last deliveries to arrive.
        deadline = time.monotonic() + step.settle
        while time.monotonic() < deadline:
            quiet = time.monotonic_ns() - max(self.last_delivery, end) > 300_000_000
            if quiet and all(client.inflight == 0 for client in active):
                break
            await asyncio.sleep(0.02)
        pending = sum(client.inflight for client in active)
        for client in active:  # late acks of this step must not count in the next
            client.sent_at.clear()
            client.inflight = 0
        return {
            "worker": self.index,
            "offered": offered,
            "sent": self.sent,
            "acks": self.acks,
            "acks_in_window": self.acks_in_window,
            "unacked": pending,
            "deliveries": self.deliveries,
            "deliveries_in_window": self.deliveries_in_window,
            "latency": self.latency,
            "ack_latency": self.ack_latency,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "disconnects": self.disconnects,
            "connected": len(self.clients),
        }

    async def cmd_idle(self, seconds: float) -> dict[str, Any]:
        self._reset(0, 0)
        await asyncio.sleep(seconds)
        return {"pongs": self.pongs, "connected": len(self.clients), "disconnects": self.disconnects}

    async def cmd_wait_lost(self, timeout: float) -> dict[str, Any]:
        """Wait until every client's connection is gone (the server went down)."""
        clients = list(self.clients.values())
        if clients:
            await asyncio.wait([c.lost for c in clients], timeout=timeout)
        return {"still_connected": sum(1 for c in clients if not c.lost.done())}

    async def cmd_close(self, keys: list[int] | None = None) -> dict[str, Any]:
        self.closing = True
        chosen = list(self.clients.values()) if keys is None else [
            self.clients[k] for k in keys if k in self.clients
        ]
        for client in chosen:
            client.close()
        if chosen:
            await asyncio.wait([c.lost for c in chosen], timeout=10)
        self.closing = False
        return {"closed": len(chosen), "connected": len(self.clients)}

    async def heartbeat(self) -> None:
        """Every ready client pings once per heartbeat interval, spread over the interval."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for client in list(self.clients.values()):
                if client.next_ping <= now:
                    client.next_ping = now + client.heartbeat_seconds
                    client.ping()

    async def serve(self, pipe: Connection) -> None:
        loop = asyncio.get_running_loop()
        beat = asyncio.create_task(self.heartbeat())
        try:
            while True:
                command = await loop.run_in_executor(None, pipe.recv)
                name = command.pop("cmd")
                if name == "exit":
                    break
                try:
                    result = await getattr(self, f"cmd_{name}")(**command)
                except Exception as exc:  # reported to the harness, which stops the run
                    result = {"exception": f"{type(exc).__name__}: {exc}"}
                pipe.send(result)
        finally:
            beat.cancel()
            self.closing = True
            for client in list(self.clients.values()):
                client.close()
            pipe.send({"exited": True})


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def worker_main(pipe: Connection, index: int, uri: str, deflate: bool, cores: list[int] | None) -> None:
    if cores:
        os.sched_setaffinity(0, cores)
    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    worker = Worker(index, uri, deflate)
    if uvloop is not None:
        uvloop.run(worker.serve(pipe))
    else:
        asyncio.run(worker.serve(pipe))


# --- the harness's handle on the workers


class LoadGenerator:
    """``processes`` worker processes, each with its share of the virtual users."""

    def __init__(self, uri: str, processes: int, *, deflate: bool = True, cores: list[int] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.uri = uri
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(processes):
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main, args=(child, index, uri, deflate, cores), daemon=True
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def worker_of(self, key: int) -> int:
        return key % len(self.pipes)

    def send(self, index: int, command: dict[str, Any]) -> None:
        self.pipes[index].send(command)

    async def receive(self, index: int, timeout: float = 600.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        pipe = self.pipes[index]
        ready = await loop.run_in_executor(None, pipe.poll, timeout)
        if not ready:
            raise TimeoutError(f"load worker {index} did not answer in {timeout} s")
        result: dict[str, Any] = pipe.recv()
        if "exception" in result:
            raise RuntimeError(f"load worker {index}: {result['exception']}")
        return result

    async def broadcast(self, commands: list[dict[str, Any]], timeout: float = 600.0) -> list[dict[str, Any]]:
        """Send one command per worker, then collect every answer."""
        for index, command in enumerate(commands):
            self.send(index, command)
        return [await self.receive(index, timeout) for index in range(len(commands))]

    def split(self, items: list[Any], key: Any = lambda item: item[0]) -> list[list[Any]]:
        """Items (keyed by client key) for each worker."""
        shares: list[list[Any]] = [[] for _ in self.pipes]
        for item in items:
            shares[self.worker_of(key(item))].append(item)
        return shares

    async def connect(
        self, users: list[tuple[int, str]], *, concurrency: int = 64, timeout: float = 30.0, retry_seconds: float = 0.0
    ) -> dict[str, Any]:
        retry_until = time.monotonic() + retry_seconds
        shares = self.split(users)
        per_worker = max(0, concurrency // len(self.pipes)) if concurrency else 0
        results = await self.broadcast(
            [
                {"cmd": "connect", "users": share, "concurrency": per_worker, "timeout": timeout, "retry_until": retry_until}
                for share in shares
            ]
        )
        times = sorted(t for r in results for t in r["ready_after"])
        return {
            "ok": sum(r["ok"] for r in results),
            "failed": sum(r["failed"] for r in results),
            "attempts": sum(r["attempts"] for r in results),
            "seconds": max(r["seconds"] for r in results),
            "ready_after": times,
            "last_error": next((r["last_error"] for r in results if r["last_error"]), None),
        }

    async def close_all(self) -> None:
        await self.broadcast([{"cmd": "close"} for _ in self.pipes], timeout=60)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send({"cmd": "exit"})
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
