"""Watching a revoked session lose its sockets: a REST login (one session each), a raw
socket identified with that session's token, whether a socket still answers, and the close
it must get — 4001, promptly."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TEST_PASSWORD
from tests.support.gateway_helpers import RawSocket

AUTHENTICATION_FAILED = 4001
# Far below the 15-minute access token: a close within this is the revocation, not expiry.
PROMPTLY = 5.0


async def login(http: httpx.AsyncClient, username: str) -> dict[str, Any]:
    """A new session of ``username``: the login response (tokens, session id, user)."""
    response = await http.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def identified(base_url: str, token: str) -> RawSocket:
    socket = await RawSocket.open(base_url)
    await socket.identify(token)
    return socket


async def still_open(socket: RawSocket) -> bool:
    await socket.send({"op": "ping"})
    return (await socket.recv_op("pong"))["op"] == "pong"
