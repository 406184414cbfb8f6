"""``parley chat`` in an encrypted conversation, as separate processes against a real
server: ``devices`` registers a device and shows safety numbers (the same on both
sides), ``tail`` prints what ``send --encrypted`` sent, decrypted, and the state files are
private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import TEST_PASSWORD
from tests.support.chat_cli import chat, chat_tail
from tests.support.gateway_helpers import new_user, running_server

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
        async with chat_tail(bob_env, "bob") as tail:
            code, out, err = await chat(
                alice_env, "--username", "alice", "send", "--to", "bob", "--encrypted", "for", "your", "eyes"
            )
            assert code == 0, err
            assert await tail.line() == "@alice alice: for your eyes"
            code, out, err = await chat(alice_env, "--username", "alice", "send", "--to", "bob", "again")
            assert code == 0, err
            assert await tail.line() == "@alice alice: again"
        code, alice_view, err = await chat(alice_env, "--username", "alice", "devices", "--user", "bob")
        assert code == 0, err
        code, bob_view, err = await chat(bob_env, "--username", "bob", "devices", "--user", "alice")
        assert code == 0, err
        number = alice_view.split("safety number with bob:")[1].strip()
        assert number and number == bob_view.split("safety number with alice:")[1].strip()
