"""``parley chat tail`` and ``parley chat send`` as separate processes against a real
server: two terminals chatting in real time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.support.chat_cli import chat, chat_tail
from tests.support.gateway_helpers import new_user, running_server

pytestmark = pytest.mark.usefixtures("backend")


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
        async with chat_tail(env, "bob") as tail:
            code, out, _ = await chat(
                env, "--username", "alice", "send", "--to", "bob", "hello", "bob"
            )
            assert code == 0 and out.startswith("sent ")
            assert await tail.line() == "@alice alice: hello bob"

            code, _, _ = await chat(
                env, "--username", "alice", "send", "--conversation", "general", "hi all"
            )
            assert code == 0
            assert await tail.line() == "#General alice: hi all"

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
        assert tail.process.returncode in (0, 130)
