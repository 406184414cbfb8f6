"""Helpers for the integration tests (bots, webhooks, slash commands): bots through the
API, and a real HTTP receiver on loopback that records requests and answers as told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import UserHandle

WAIT = 10.0
T = TypeVar("T")


@dataclass
class BotHandle:
    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.token}"}


async def make_bot(
    client: httpx.AsyncClient, owner: UserHandle, username: str, display_name: str | None = None
) -> BotHandle:
    body: dict[str, Any] = {"username": username}
    if display_name is not None:
        body["display_name"] = display_name
    response = await client.post("/api/v1/bots", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    data = response.json()
    return BotHandle(data["bot"]["id"], data["bot"]["username"], data["token"])


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Received], Response]


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 (a webhook or slash-command endpoint): every POST is
    recorded; ``answers[path]`` says how to answer (default 200 with an empty body)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: Request) -> Response:
        seen = Received(
            request.url.path, {k.lower(): v for k, v in request.headers.items()}, await request.body()
        )
        self.received.append(seen)
        self._arrived.set()
        answer = self.answers.get(seen.path)
        return answer(seen) if answer is not None else Response(status_code=200)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int = 1, timeout: float = WAIT) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{count} request(s) to {path} not within {timeout}s: {self.received}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.2))
        return self.at(path)


def json_answer(body: Any, status: int = 200) -> Answer:
    return lambda _: Response(json.dumps(body), status_code=status, media_type="application/json")


def status_answer(status: int) -> Answer:
    return lambda _: Response("no", status_code=status)


@contextlib.asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[int]:
    """``app`` on a real uvicorn server in this event loop, on a loopback port the kernel
    picks (bound, never probed); yields the port and stops the server at the end."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + WAIT
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the test's uvicorn server did not start")
        await asyncio.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, WAIT)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/{path:path}", state._handle, methods=["POST"])])
    async with serving(app) as port:
        state.port = port
        yield state


async def eventually(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = WAIT) -> T:
    """Read (an API call) until ``check`` holds, for state a background job changes — the
    job sends no event to wait on; each read is the real answer at that moment."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s; last read: {value!r}"[:2000])
        await asyncio.sleep(0.05)
