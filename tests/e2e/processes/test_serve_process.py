"""The real ``parley serve`` process over TCP: the path a user takes with ``make run``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import TEST_PASSWORD
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.usefixtures("backend")


def _env(tmp_path: Path, database_url: str, **more: str) -> dict[str, str]:
    return {
        "PARLEY_DATABASE_URL": database_url,
        "PARLEY_DATA_DIR": str(tmp_path / "data"),
        "PARLEY_ARGON2_MEMORY_KIB": "1024",
        "PARLEY_ARGON2_TIME_COST": "1",
        **more,
    }


def test_serve_register_login_refresh_logout(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    server = ServerProcess(free_port, _env(tmp_path, database_url), tmp_path)
    with server:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            created = http.post(
                "/api/v1/auth/register", json={"username": "tcpuser", "password": TEST_PASSWORD}
            )
            assert created.status_code == 201, created.text
            login = http.post(
                "/api/v1/auth/login", json={"username": "tcpuser", "password": TEST_PASSWORD}
            ).json()
            headers = {"Authorization": f"Bearer {login['access_token']}"}
            assert http.get("/api/v1/users/me", headers=headers).json()["user"]["username"] == (
                "tcpuser"
            )
            # Not behind a proxy: a forwarded address is not believed.
            asyncio.run(_identify_and_leave(server.base_url, login["access_token"], forwarded="203.0.113.7"))
            refreshed = http.post(
                "/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
            ).json()
            new_headers = {"Authorization": f"Bearer {refreshed['access_token']}"}
            assert http.post("/api/v1/auth/logout", headers=new_headers).status_code == 204
            assert http.get("/api/v1/users/me", headers=new_headers).status_code == 401
        # SIGTERM shuts down cleanly and quickly.
        assert server.terminate(), server.log()
    if database_url.startswith("sqlite"):
        secret = tmp_path / "data" / "secret.key"
        assert secret.exists() and oct(secret.stat().st_mode)[-3:] == "600"
    lines = [line for line in server.log().splitlines() if '"logger": "parley.access"' in line]
    assert any('"route": "/api/v1/auth/login"' in line for line in lines)
    # A socket is logged once, when it ends: who, from where and why; not with uvicorn's
    # "[accepted]" line nor the websockets library's "connection open" / "closed" lines.
    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in entries]
    closed = [entry for entry in entries if entry["message"] == "gateway session closed"]
    assert len(closed) == 1 and closed[0]["user_id"] == login["user"]["id"], messages
    assert closed[0]["client"].startswith("127.0.0.1:"), closed
    assert not any(message.endswith('"WebSocket /ws" [accepted]') for message in messages), messages
    assert "connection open" not in messages and "connection closed" not in messages, messages
    assert not any("color_message" in entry for entry in entries)  # uvicorn's terminal copy


def test_serve_behind_a_proxy_logs_the_forwarded_address(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    """With ``PARLEY_TRUST_PROXY_HEADERS`` a socket's address is the one the proxy forwards,
    whichever host the proxy is on (here 127.0.0.2, which uvicorn would not trust alone)."""
    server = ServerProcess(
        free_port, _env(tmp_path, database_url, PARLEY_TRUST_PROXY_HEADERS="true"), tmp_path
    )
    with server:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            created = http.post(
                "/api/v1/auth/register", json={"username": "proxied", "password": TEST_PASSWORD}
            )
            assert created.status_code == 201, created.text
            login = http.post(
                "/api/v1/auth/login", json={"username": "proxied", "password": TEST_PASSWORD}
            )
            token = login.json()["access_token"]
        asyncio.run(
            _identify_and_leave(server.base_url, token, forwarded="203.0.113.7", source="127.0.0.2")
        )
        assert server.terminate(), server.log()
    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    closed = [entry for entry in entries if entry["message"] == "gateway session closed"]
    assert len(closed) == 1 and closed[0]["client"].startswith("203.0.113.7:"), closed


async def _identify_and_leave(
    base_url: str, token: str, *, forwarded: str, source: str = "127.0.0.1"
) -> None:
    async with websockets.connect(
        base_url.replace("http", "ws", 1) + "/ws",
        additional_headers={"X-Forwarded-For": forwarded},
        local_addr=(source, 0),
    ) as socket:
        await socket.send(json.dumps({"op": "identify", "token": token}))
        while json.loads(await asyncio.wait_for(socket.recv(), 10))["op"] != "ready":
            pass
