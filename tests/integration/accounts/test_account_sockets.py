"""Account changes cut live connections at once, on a real server over loopback (SQLite and
PostgreSQL): a password change closes the user's other sockets with 4001 and keeps the
caller's; an administrator made by ``parley create-admin`` deactivates a user and every
socket of theirs closes with 4001; the user is told nothing more."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, make_user
from tests.support.gateway_helpers import RawSocket, create_admin, running_server, server_env
from tests.support.socket_revocation import AUTHENTICATION_FAILED, PROMPTLY, identified, login, still_open

pytestmark = pytest.mark.usefixtures("backend")


async def test_password_change_and_deactivation_close_sockets(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        out = await asyncio.to_thread(create_admin, server, "root")
        assert "created administrator root" in out
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            root = await login(http, "root")
            assert root["user"]["role"] == "admin"
            alice = await make_user(http, "alice")
            phone, laptop = await login(http, "alice"), await login(http, "alice")
            sockets: list[RawSocket] = []
            try:
                phone_socket = await identified(server.base_url, phone["access_token"])
                laptop_socket = await identified(server.base_url, laptop["access_token"])
                sockets += [phone_socket, laptop_socket]
                changed = await http.post(
                    "/api/v1/users/me/password",
                    json={"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"},
                    headers={"Authorization": f"Bearer {laptop['access_token']}"},
                )
                assert changed.status_code == 200 and changed.json()["sessions_revoked"] == 2
                assert await phone_socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                assert await still_open(laptop_socket)

                deactivated = await http.patch(
                    f"/api/v1/admin/users/{alice.id}",
                    json={"deactivated": True},
                    headers={"Authorization": f"Bearer {root['access_token']}"},
                )
                assert deactivated.status_code == 200
                assert await laptop_socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                again = await RawSocket.open(server.base_url)
                sockets.append(again)
                await again.send({"op": "identify", "token": laptop["access_token"]})
                assert await again.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
            finally:
                for socket in sockets:
                    await socket.close()


def run_parley(tmp_path: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **server_env(tmp_path, database_url, public_url="https://chat.example.org")}
    return subprocess.run(
        [sys.executable, "-m", "parley", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


async def test_operator_commands(tmp_path: Path, database_url: str, free_port: int) -> None:
    """``parley admin reset-link`` and ``set-role``: recovery from the server's shell, for
    a server whose only administrator forgot the password and that has no SMTP."""
    async with running_server(tmp_path, database_url, free_port, public_url="https://chat.example.org") as server:
        await asyncio.to_thread(create_admin, server, "root")
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await make_user(http, "alice")
            promoted = await asyncio.to_thread(run_parley, tmp_path, database_url, "admin", "set-role", "alice", "moderator")
            assert promoted.returncode == 0 and "alice is now moderator" in promoted.stdout
            assert (await login(http, "alice"))["user"]["role"] == "moderator"
            last = await asyncio.to_thread(run_parley, tmp_path, database_url, "admin", "set-role", "root", "user")
            assert last.returncode == 2 and "LAST_ADMIN" in last.stderr
            missing = await asyncio.to_thread(run_parley, tmp_path, database_url, "admin", "reset-link", "nobody")
            assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr

            made = await asyncio.to_thread(run_parley, tmp_path, database_url, "admin", "reset-link", "root")
            assert made.returncode == 0, made.stderr
            link = made.stdout.split()[0]
            assert link.startswith("https://chat.example.org/reset-password?token=")
            token = link.rpartition("token=")[2]
            done = await http.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "a fresh operator passphrase"})
            assert done.status_code == 200, done.text
            relogin = await http.post("/api/v1/auth/login", json={"username": "root", "password": "a fresh operator passphrase"})
            assert relogin.status_code == 200
