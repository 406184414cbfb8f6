"""Socket fuzzing: hypothesis-generated frames against the real server.

Random JSON, wrong types, deep nesting, huge strings, binary frames, identify floods and
rapid open / close — before and after identifying. Whatever arrives, the node answers with
an ``error`` frame or closes with a protocol close code, stays up, keeps serving a bystander
session, and logs no unhandled exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import TEST_PASSWORD
from tests.support.free_ports import free_port
from tests.support.gateway_helpers import server_env
from tests.support.server_process import ServerProcess

FRAME_LIMIT = 8192
ALLOWED_CLOSE_CODES = {1000, 1002, 1003, 1007, 1009, 4001, 4002, 4003, 4008, 4010}
EXAMPLES = 120

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
methods = st.sampled_from(
    ["message.send", "message.edit", "message.delete", "reaction.add", "reaction.remove",
     "typing.start", "typing.stop", "read.mark", "delivered.mark", "presence.set", "nope", ""]
)
protocol_like = st.fixed_dictionaries(
    {
        "op": st.sampled_from(["identify", "ping", "call", "pong", "event", "ready", 7, None]),
        "ref": st.one_of(st.text(max_size=20), st.integers(), st.none()),
        "method": methods,
        "params": st.one_of(json_values, st.dictionaries(st.sampled_from(
            ["conversation_id", "message_id", "content", "seq", "emoji", "status", "client_msg_id"]
        ), json_values, max_size=4)),
        "token": st.one_of(st.text(max_size=50), st.integers()),
    }
).map(lambda d: {k: v for k, v in d.items() if v is not None or k == "op"})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


frames = st.one_of(
    json_values.map(json.dumps),
    protocol_like.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=5000).map(nested),
    st.integers(min_value=FRAME_LIMIT - 10, max_value=FRAME_LIMIT * 3).map(lambda n: "x" * n),
    st.just('{"op":"identify","token":"' + "a" * 5000 + '"}'),
)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    directory = tmp_path_factory.mktemp("socket-fuzz")
    port = free_port()
    env = server_env(
        directory,
        f"sqlite:///{directory / 'fuzz.db'}",
        gateway_max_frame_bytes=FRAME_LIMIT,
        gateway_identify_timeout_seconds=2,
        log_level="warning",
    )
    with ServerProcess(port, env, directory) as server:
        with httpx.Client(base_url=server.base_url) as http:
            http.post("/api/v1/auth/register", json={"username": "fuzzer", "password": TEST_PASSWORD})
            token = http.post(
                "/api/v1/auth/login", json={"username": "fuzzer", "password": TEST_PASSWORD}
            ).json()["access_token"]
        yield server, token


def ws_url(server: ServerProcess) -> str:
    return re.sub(r"^http", "ws", server.base_url) + "/ws"


async def exchange(url: str, token: str, identify_first: bool, payloads: list[Any]) -> None:
    """Send the frames; every answer must be a JSON frame, every close a protocol code."""
    async with connect(url, max_size=2**22, open_timeout=10) as ws:
        if identify_first:
            await ws.send(json.dumps({"op": "identify", "token": token}))
            ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ready["op"] == "ready", ready
        try:
            for payload in payloads:
                await ws.send(payload)
            await ws.send(json.dumps({"op": "ping"}))
            while True:  # read until the ping's pong, or until the server closed us
                raw = await asyncio.wait_for(ws.recv(), 10)
                frame = json.loads(raw)
                assert frame.get("op") in {"error", "pong", "ack", "event", "ready"}, frame
                if frame.get("op") == "error":
                    assert isinstance(frame["error"]["code"], str) and frame["error"]["code"]
                if frame.get("op") == "pong":
                    return
        except ConnectionClosed:
            assert ws.close_code in ALLOWED_CLOSE_CODES, ws.close_code


@given(payloads=st.lists(frames, min_size=1, max_size=4), identify_first=st.booleans())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_random_frames_never_hurt_the_node(
    fuzz_target: tuple[ServerProcess, str], payloads: list[Any], identify_first: bool
) -> None:
    server, token = fuzz_target
    asyncio.run(exchange(ws_url(server), token, identify_first, payloads))


def test_floods_and_rapid_open_close_leave_the_node_healthy(
    fuzz_target: tuple[ServerProcess, str],
) -> None:
    server, token = fuzz_target

    async def flood() -> None:
        url = ws_url(server)
        # A bystander, identified before the storm, must still be served after it.
        async with connect(url) as bystander:
            await bystander.send(json.dumps({"op": "identify", "token": token}))
            assert json.loads(await asyncio.wait_for(bystander.recv(), 10))["op"] == "ready"

            async def open_and_drop() -> None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    async with connect(url) as ws:
                        await ws.send(json.dumps({"op": "identify", "token": token}))

            async def identify_flood() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async with connect(url) as ws:
                        for _ in range(50):
                            await ws.send(json.dumps({"op": "identify", "token": token}))
                        await asyncio.wait_for(ws.recv(), 10)

            await asyncio.gather(*(open_and_drop() for _ in range(100)), identify_flood())
            await bystander.send(json.dumps({"op": "ping"}))
            while True:
                frame = json.loads(await asyncio.wait_for(bystander.recv(), 10))
                if frame["op"] == "pong":
                    break

    asyncio.run(flood())
    assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
    log = server.log()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-4000:]
