"""A load worker: one process with one event loop (uvloop when installed) and many virtual
users (:class:`loadgen_virtual_user.Client`), running the harness's commands as they come
over a pipe — connect these users, run a step (these senders, this rate, this long), idle,
wait until the server has dropped everyone, close — and answering each with its counts.

Latency: every ``message.send`` carries ``time.monotonic_ns()`` at the start of its
content; every receiver subtracts it from its own clock when the ``message.created`` event
arrives (CLOCK_MONOTONIC is one clock for every process on the machine). Only messages sent
inside a step's window count, into the histograms of ``loadgen_histogram``.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import resource
import secrets
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from loadgen_histogram import bucket, new_histogram
from loadgen_virtual_user import Client
from websockets.uri import parse_uri


@dataclass
class StepPlan:
    """This worker's part of a step: the ``plan`` of a ``step`` command."""

    senders: list[tuple[int, str]]  # (client key, conversation id)
    rate: float  # messages per second from this worker; math.inf: closed loop
    duration: float
    inflight_cap: int
    start_at: float  # monotonic
    content_chars: int
    settle: float
    # Closed loop only: the window opens once every message of the first round has been
    # acknowledged and at least ``warmup`` seconds have passed (at most ``max_warmup``), and
    # lasts ``window_rounds`` times that first round (at most ``max_window``, at least
    # ``duration``). Acks come back in bursts, a round apart — in a group of 1,000 each
    # sender's ack waits behind every event queued before it on its own socket — so a
    # window of one round may hold no ack at all.
    warmup: float = 0.0
    max_warmup: float = 10.0
    window_rounds: float = 3.0
    max_window: float = 6.0
    # Closed loop: the workers holding senders. Every worker (receivers too) opens the
    # window at the same moment: when the last of these has its first round back.
    round_peers: list[int] | None = None


class Worker:
    """The virtual users of one process and the commands the harness gives them (``cmd_*``)."""

    def __init__(self, index: int, uri: str, deflate: bool, rounds: Any = None) -> None:
        self.index = index
        # Shared with the other workers (a multiprocessing Array of int64, one per worker):
        # when each one's first round of a closed loop came back, monotonic ns.
        self.rounds: Any = rounds if rounds is not None else [0] * (index + 1)
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
        settle = step.settle
        first_round = 0.0
        if math.isinf(step.rate):
            start, end = await self._closed_loop(step, active, start)
            offered = -1
            first_round = (start - int(step.start_at * 1e9)) / 1e9
            settle = max(settle, 1.5 * first_round)  # what is in flight takes a round to drain
        elif not active:
            await asyncio.sleep(step.duration)
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
        deadline = time.monotonic() + settle
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
            "window_start_ns": start,
            "window_end_ns": end,
            "first_round_s": first_round,
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

    async def _closed_loop(self, step: StepPlan, active: list[Client], began: int) -> tuple[int, int]:
        """Keep ``inflight_cap`` messages in flight per sender; returns the window, which
        opens once every sending worker has its first round acknowledged (and ``warmup``
        has passed) and lasts ``window_rounds`` such rounds, within ``duration`` and
        ``max_window``."""
        far = 1 << 62
        self.window_start = self.window_end = far  # nothing counts before the window
        origin = int(step.start_at * 1e9)  # the same instant for every worker
        self.rounds[self.index] = 0
        peers = step.round_peers if step.round_peers is not None else ([self.index] if active else [])
        if active:
            self.refill = True
            for client in active:
                for _ in range(step.inflight_cap):
                    client.send_message(self.content_pad)
        first = len(active) * step.inflight_cap
        give_up = began + int(max(step.max_warmup, step.warmup) * 1e9)
        warm = origin + int(step.warmup * 1e9)
        while True:
            now = time.monotonic_ns()
            if active and self.acks >= first and self.rounds[self.index] < origin:
                self.rounds[self.index] = now  # this worker's first round is back
            backs = [self.rounds[i] for i in peers]
            if (all(b >= origin for b in backs) and now >= warm) or now >= give_up:
                break
            await asyncio.sleep(0.005)
        # Every worker computes the same window from the shared values.
        opened = max([warm, *(b for b in backs if b >= origin)]) if now < give_up else now
        rounds = min(step.window_rounds * (opened - origin), step.max_window * 1e9)
        closed = opened + int(max(step.duration * 1e9, rounds))
        self.window_start, self.window_end = opened, closed
        await asyncio.sleep(max(0.0, (closed - time.monotonic_ns()) / 1e9))
        self.refill = False
        return opened, closed

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


def worker_main(
    pipe: Connection, index: int, uri: str, deflate: bool, cores: list[int] | None, rounds: Any = None
) -> None:
    if cores:
        os.sched_setaffinity(0, cores)
    raise_open_files_limit()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    worker = Worker(index, uri, deflate, rounds)
    if uvloop is not None:
        uvloop.run(worker.serve(pipe))
    else:
        asyncio.run(worker.serve(pipe))
