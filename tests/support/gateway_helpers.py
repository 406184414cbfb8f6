"""Helpers for the gateway and SDK tests: a real server process, SDK users, raw sockets,
an event log that waits with timeouts, and a TCP proxy that can cut connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from parley.client import Backoff, ParleyClient, RealtimeEvent, RealtimeSession
from tests.conftest import TEST_PASSWORD
from tests.support.server_process import ServerProcess

SECRET = "gateway-test-secret-" + "s" * 40
WAIT = 10.0  # seconds any single expected thing may take before the test fails
FAST_BACKOFF = Backoff(initial=0.2, maximum=1.0)


def server_env(tmp_path: Path, database_url: str, **settings: object) -> dict[str, str]:
    env = {
        "PARLEY_DATABASE_URL": database_url,
        "PARLEY_DATA_DIR": str(tmp_path / "data"),
        "PARLEY_SECRET_KEY": SECRET,
        "PARLEY_ARGON2_MEMORY_KIB": "1024",
        "PARLEY_ARGON2_TIME_COST": "1",
        "PARLEY_ARGON2_PARALLELISM": "1",
        "PARLEY_ACCESS_LOG": "false",
        "PARLEY_GROUP_COMMIT_WINDOW_MS": "1",
        # Tests drive traffic far above human rates; the limits have their own tests.
        "PARLEY_MESSAGE_RATE_PER_SECOND": "10000",
        "PARLEY_MESSAGE_BURST": "10000",
        "PARLEY_CONVERSATION_MESSAGE_RATE_PER_SECOND": "10000",
        "PARLEY_CONVERSATION_MESSAGE_BURST": "10000",
        "PARLEY_API_RATE_PER_SECOND": "10000",
        "PARLEY_API_BURST": "10000",
        "PARLEY_REGISTRATIONS_PER_ADDRESS": "1000000",
        "PARLEY_LOGIN_ADDRESS_FAILURES_ALLOWED": "1000000",
        "PARLEY_GATEWAY_FRAME_RATE_PER_SECOND": "10000",
        "PARLEY_GATEWAY_FRAME_BURST": "10000",
    }
    env.update({f"PARLEY_{key.upper()}": str(value) for key, value in settings.items()})
    return env


@contextlib.asynccontextmanager
async def running_server(
    tmp_path: Path, database_url: str, port: int, **settings: object
) -> AsyncIterator[ServerProcess]:
    server = ServerProcess(port, server_env(tmp_path, database_url, **settings), tmp_path)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        server.kill()


async def new_user(base_url: str, username: str, *, device: str | None = None) -> ParleyClient:
    client = ParleyClient(base_url, device_name=device)
    try:
        await client.register(username, TEST_PASSWORD)
        await client.login(username, TEST_PASSWORD)
    except BaseException:
        await client.aclose()
        raise
    return client


def create_admin(server: ServerProcess, username: str) -> str:
    """``parley create-admin`` against ``server``'s database, as an operator would (blocking:
    call it in a thread from async code). Returns what the command printed."""
    done = subprocess.run(
        [sys.executable, "-m", "parley", "create-admin", username, "--password-stdin"],
        input=TEST_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=server.env,
        cwd=server.cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def login(base_url: str, username: str, *, device: str | None = None) -> ParleyClient:
    """Another device of an existing user."""
    client = ParleyClient(base_url, device_name=device)
    await client.login(username, TEST_PASSWORD)
    return client


class EventLog:
    """Consumes a session's events in the background; tests wait on what arrived."""

    def __init__(self, session: RealtimeSession) -> None:
        self.session = session
        self.events: list[RealtimeEvent] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for event in self.session:
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[RealtimeEvent]], bool], timeout: float = WAIT
    ) -> list[RealtimeEvent]:
        async def satisfied() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.events))

        try:
            await asyncio.wait_for(satisfied(), timeout)
        except TimeoutError:
            seen = [(e.type, e.data.get("seq")) for e in self.events[-20:]]
            raise AssertionError(f"not seen in {timeout}s; last events: {seen}") from None
        return self.events

    async def wait_type(self, event_type: str, count: int = 1) -> list[RealtimeEvent]:
        await self.wait_for(lambda events: len(self.of(event_type)) >= count)
        return self.of(event_type)

    def of(self, *types: str) -> list[RealtimeEvent]:
        return [e for e in self.events if e.type in types]

    async def close(self) -> None:
        await self.session.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, WAIT)


async def open_log(client: ParleyClient, **options: Any) -> EventLog:
    options.setdefault("backoff", FAST_BACKOFF)
    session = RealtimeSession(client, **options)
    await session.start()
    return EventLog(session)


class RawSocket:
    """A bare WebSocket client speaking the protocol frame by frame."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, base_url: str, **options: Any) -> RawSocket:
        url = re.sub(r"^http", "ws", base_url) + "/ws"
        return cls(await connect(url, **options))

    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        result: dict[str, Any] = json.loads(raw)
        return result

    async def recv_op(self, op: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next frame with ``op``, skipping events (presence and the like)."""
        while True:
            frame = await self.recv(timeout)
            if frame["op"] == op:
                return frame
            if frame["op"] != "event":
                raise AssertionError(f"expected {op}, got {frame}")

    async def identify(self, token: str) -> dict[str, Any]:
        await self.send({"op": "identify", "token": token})
        frame = await self.recv()
        assert frame["op"] == "ready", frame
        return dict(frame["data"])

    async def call(self, ref: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.send({"op": "call", "ref": ref, "method": method, "params": params})
        while True:
            frame = await self.recv()
            if frame.get("ref") == ref:
                return frame

    async def closed_with(self, timeout: float = WAIT) -> int | None:
        """Read until the server closes; the close code."""

        async def drain() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.ws.recv()

        await asyncio.wait_for(drain(), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


class TcpProxy:
    """Forwards a local port to the server; :meth:`cut` drops every live connection at
    once, the way a network failure does (no close frame, no FIN from the server)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pipes.add(pair)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, pair))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(pair)

    def _drop(self, pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        if pair in self._pipes:
            self._pipes.discard(pair)
            for writer in pair:
                writer.transport.abort()

    def cut(self) -> int:
        """Abort every live connection; how many there were."""
        pairs = list(self._pipes)
        for pair in pairs:
            self._drop(pair)
        return len(pairs)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def is_linux() -> bool:
    return os.path.exists("/proc/self/status")
