"""``parley chat tail`` and ``parley chat send`` as separate processes against a real
server: two terminals chatting in real time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.support.gateway_helpers import WAIT, new_user, running_server

pytestmark = pytest.mark.usefixtures("backend")


async def chat(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley",
        "chat",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_chat_tail_sees_chat_send(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        try:
            await alice.create_group("General", [bob.user_id], slug="general")
        finally:
            await alice.aclose()
            await bob.aclose()
        env = os.environ | {"PARLEY_SERVER": server.base_url, "PARLEY_PASSWORD": TEST_PASSWORD}
        tail = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "parley",
            "chat",
            "--username",
            "bob",
            "tail",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            assert tail.stderr is not None and tail.stdout is not None
            ready = await asyncio.wait_for(tail.stderr.readline(), WAIT)
            assert ready.decode().strip() == "connected as bob"

            code, out, _ = await chat(
                env, "--username", "alice", "send", "--to", "bob", "hello", "bob"
            )
            assert code == 0 and out.startswith("sent ")
            line = await asyncio.wait_for(tail.stdout.readline(), WAIT)
            assert line.decode().strip() == "@alice alice: hello bob"

            code, _, _ = await chat(
                env, "--username", "alice", "send", "--conversation", "general", "hi all"
            )
            assert code == 0
            line = await asyncio.wait_for(tail.stdout.readline(), WAIT)
            assert line.decode().strip() == "#General alice: hi all"

            code, _, err = await chat(env, "--username", "alice", "send", "--to", "nobody", "hi")
            assert code == 2 and "NOT_FOUND" in err
            code, _, err = await chat(
                env | {"PARLEY_PASSWORD": "wrong password!"},
                "--username",
                "alice",
                "send",
                "--to",
                "bob",
                "x",
            )
            assert code == 2 and "INVALID_CREDENTIALS" in err
        finally:
            if tail.returncode is None:
                tail.send_signal(signal.SIGINT)
            await asyncio.wait_for(tail.wait(), WAIT)
        assert tail.returncode in (0, 130)
