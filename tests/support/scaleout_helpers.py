"""Helpers for the scale-out tests: a private Redis, a real nginx in front of several
``parley serve`` nodes, a link to PostgreSQL that can be severed, and waiting on
conditions with timeouts.

Everything runs as child processes on free loopback ports and is killed at the end; the
machine's shared Redis and PostgreSQL are never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from parley.client import ParleyClient
from tests.support.free_ports import free_port
from tests.support.gateway_helpers import EventLog, TcpProxy, metric, open_log, server_env
from tests.support.loopback import START_TIMEOUT, need_binary
from tests.support.nginx_edge import Nginx
from tests.support.server_process import ServerProcess

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    every: float = 0.05,
) -> T:
    """Call ``probe`` until ``accept`` likes its result; fail with ``what`` after
    ``timeout`` seconds, naming the last result seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if accept(last):
                return last
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        await asyncio.sleep(every)


class RedisDeployment(Protocol):
    """What the scale-out tests need of Redis: one server, a Sentinel group or a cluster
    (``tests/support/redis_topologies.py``)."""

    @property
    def url(self) -> str: ...

    def start(self) -> Any: ...

    def kill(self) -> None: ...


class RedisServer:
    """A redis-server of the test's own, without persistence: restarting it loses
    everything, the worst case for the nodes."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        need_binary("redis-server", REDIS_SERVER, "Install redis-server.")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class DatabaseLink(TcpProxy):
    """A TCP proxy between the nodes and PostgreSQL. :meth:`sever` drops every live
    connection and refuses new ones (as if the database went down); :meth:`restore`
    listens again on the same port. The machine's PostgreSQL itself never stops."""

    async def sever(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.cut()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the loopback ``port``."""
    return re.sub(r"@[^/@]+/", f"@127.0.0.1:{port}/", url, count=1)


# Fast presence so that offline-after-TTL fits in a test: entries live 2 s, rewritten
# every 0.67 s; expired ones are swept every 0.1 s; reconnects within 1 s change nothing.
FAST_PRESENCE: dict[str, object] = {
    "presence_ttl_seconds": 2.0,
    "presence_sweep_interval_seconds": 0.1,
    "presence_offline_grace_seconds": 1.0,
}


@dataclass
class Cluster:
    """Nodes on one PostgreSQL and one Redis, behind nginx."""

    tmp_path: Path
    database_url: str
    redis: RedisDeployment
    settings: dict[str, object]
    nodes: list[ServerProcess] = field(default_factory=list)
    nginx: Nginx | None = None
    prefix: str = field(default_factory=lambda: f"scaleout-{secrets.token_hex(4)}")

    @property
    def base_url(self) -> str:
        assert self.nginx is not None
        return self.nginx.base_url

    def start_node(self, index: int, port: int | None = None) -> ServerProcess:
        directory = self.tmp_path / f"node{index}"
        directory.mkdir(parents=True, exist_ok=True)
        env = server_env(
            directory,
            self.database_url,
            redis_url=self.redis.url,
            redis_key_prefix=self.prefix,
            trust_proxy_headers="true",
            **{**FAST_PRESENCE, **self.settings},
        )
        node = ServerProcess(port or free_port(), env, directory).start()
        if index < len(self.nodes):
            self.nodes[index] = node
        else:
            self.nodes.append(node)
        return node

    async def metric(self, index: int, name: str) -> float:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(self.nodes[index].base_url + "/metrics")).text
        try:
            return metric(text, name)
        except KeyError:
            return 0.0

    async def sessions(self) -> list[int]:
        return [
            int(await self.metric(index, "parley_gateway_sessions"))
            for index in range(len(self.nodes))
        ]

    async def ready(self, index: int) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(self.nodes[index].base_url + "/readyz")
        body: dict[str, Any] = response.json()
        body["http_status"] = response.status_code
        return body

    def logs(self) -> str:
        parts = [f"--- node {i} ---\n{node.log()[-6000:]}" for i, node in enumerate(self.nodes)]
        if self.nginx is not None:
            parts.append(f"--- nginx ---\n{self.nginx.log()[-3000:]}")
        return "\n".join(parts)


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path,
    database_url: str,
    *,
    nodes: int = 2,
    redis_deployment: RedisDeployment | None = None,
    **settings: object,
) -> AsyncIterator[Cluster]:
    redis = redis_deployment or RedisServer(tmp_path / "redis")
    cluster = Cluster(tmp_path, database_url, redis, settings)
    try:
        await asyncio.to_thread(redis.start)
        # Started in turn: each migrates (a no-op) and creates nothing shared.
        for index in range(nodes):
            await asyncio.to_thread(cluster.start_node, index)
        cluster.nginx = Nginx(tmp_path / "nginx", [node.port for node in cluster.nodes])
        await asyncio.to_thread(cluster.nginx.start)
        yield cluster
    except BaseException:
        print(cluster.logs())  # shown by pytest for a failing test
        raise
    finally:
        if cluster.nginx is not None:
            cluster.nginx.stop()
        for node in cluster.nodes:
            node.kill()
        redis.kill()


@dataclass
class Located:
    log: EventLog
    node: int


async def open_located(cluster: Cluster, client: ParleyClient, **options: Any) -> Located:
    """Open a realtime session through nginx and find out which node took it (the one
    whose session count went up; sessions are opened one at a time)."""
    before = await cluster.sessions()
    log = await open_log(client, **options)
    after = await eventually(
        cluster.sessions,
        lambda counts: sum(counts) > sum(before),
        timeout=10,
        what="the new session is counted",
    )
    node = next(i for i, (a, b) in enumerate(zip(before, after, strict=True)) if b > a)
    return Located(log, node)


async def open_on(cluster: Cluster, client: ParleyClient, node: int, **options: Any) -> EventLog:
    """A session that landed on ``node``: round-robin sends every other connection there,
    so reconnecting a few times is enough (the attempts are bounded)."""
    for _ in range(8):
        before = await cluster.sessions()
        located = await open_located(cluster, client, **options)
        if located.node == node:
            return located.log
        await located.log.close()
        await eventually(
            cluster.sessions,
            lambda counts, before=before: counts == before,
            timeout=5,
            what="closed",
        )
    raise AssertionError(f"no session landed on node {node} through nginx")


class SteadySenders:
    """Each session sends to one conversation at a steady rate, under its own
    ``client_msg_id`` sequence, until stopped. What was acknowledged, and what failed
    with which code, is kept per ``client_msg_id``."""

    def __init__(self, logs: list[EventLog], conversation_id: str, *, interval: float) -> None:
        self.logs = logs
        self.conversation_id = conversation_id
        self.interval = interval
        self.acked: dict[str, str] = {}  # client_msg_id → message id
        self.failed: dict[str, str] = {}  # client_msg_id → error code (or exception name)
        self.latencies: list[float] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> SteadySenders:
        self._tasks = [
            asyncio.create_task(self._send_from(index, log)) for index, log in enumerate(self.logs)
        ]
        return self

    async def _send_from(self, index: int, log: EventLog) -> None:
        number = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            client_msg_id = f"s{index}-{number}"
            number += 1
            try:
                ack = await log.session.send_message(
                    self.conversation_id, f"steady {client_msg_id}", client_msg_id=client_msg_id,
                    timeout=20,
                )
                self.acked[client_msg_id] = ack["message"]["id"]
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failed[client_msg_id] = str(getattr(exc, "code", None) or type(exc).__name__)
            self.latencies.append(time.monotonic() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), max(0.0, self.interval - (time.monotonic() - began))
                )

    async def stop(self) -> None:
        """Stop sending; sends in progress finish (their retries included)."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)

    def count(self) -> int:
        return len(self.acked) + len(self.failed)


def created_ids(log: EventLog, conversation_id: str) -> list[str]:
    """Ids of the messages a session was given, every time it was given one."""
    return [
        e.data["message"]["id"]
        for e in log.of("message.created")
        if e.conversation_id == conversation_id
    ]
