"""``parley chat`` in an encrypted conversation, as separate processes against a real
server: ``devices`` registers a device and shows safety numbers (the same on both
sides), ``tail`` prints what ``send --encrypted`` sent, decrypted, and the state files are
private."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.integration.client.test_client_cli import chat
from tests.support.gateway_helpers import WAIT, new_user, running_server

pytestmark = pytest.mark.usefixtures("backend")


async def test_chat_send_tail_and_devices_encrypted(tmp_path: Path, database_url: str, free_port: int) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        for name in ("alice", "bob"):
            await (await new_user(server.base_url, name)).aclose()
        env = os.environ | {"PARLEY_SERVER": server.base_url, "PARLEY_PASSWORD": TEST_PASSWORD}
        alice_env = env | {"PARLEY_STATE_DIR": str(tmp_path / "alice-state")}
        bob_env = env | {"PARLEY_STATE_DIR": str(tmp_path / "bob-state")}
        code, out, err = await chat(bob_env, "--username", "bob", "devices")
        assert code == 0, err
        assert "(this device)" in out
        for state in (tmp_path / "bob-state").iterdir():
            assert stat.S_IMODE(state.stat().st_mode) == 0o600, state
        tail = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parley", "chat", "--username", "bob", "tail",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=bob_env,
        )  # fmt: skip
        try:
            assert tail.stderr is not None and tail.stdout is not None
            ready = await asyncio.wait_for(tail.stderr.readline(), WAIT)
            assert ready.decode().strip() == "connected as bob"
            code, out, err = await chat(
                alice_env, "--username", "alice", "send", "--to", "bob", "--encrypted", "for", "your", "eyes"
            )
            assert code == 0, err
            line = await asyncio.wait_for(tail.stdout.readline(), WAIT)
            assert line.decode().strip() == "@alice alice: for your eyes"
            code, out, err = await chat(alice_env, "--username", "alice", "send", "--to", "bob", "again")
            assert code == 0, err
            line = await asyncio.wait_for(tail.stdout.readline(), WAIT)
            assert line.decode().strip() == "@alice alice: again"
        finally:
            if tail.returncode is None:
                tail.send_signal(signal.SIGINT)
            await asyncio.wait_for(tail.wait(), WAIT)
        code, alice_view, err = await chat(alice_env, "--username", "alice", "devices", "--user", "bob")
        assert code == 0, err
        code, bob_view, err = await chat(bob_env, "--username", "bob", "devices", "--user", "alice")
        assert code == 0, err
        number = alice_view.split("safety number with bob:")[1].strip()
        assert number and number == bob_view.split("safety number with alice:")[1].strip()
