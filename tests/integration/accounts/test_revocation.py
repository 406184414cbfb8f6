"""Revocation is immediate: logging out, logging out everywhere or revoking a device closes
the sockets of those sessions with 4001 at once — on one node and across two nodes on Redis
— while the user's other sessions stay connected; a deactivated user cannot refresh.

(Before, an open socket kept sending and receiving until its access token expired, about
15 minutes later.)
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from parley.clock import utcnow
from parley.container import Container
from parley.store.tables.accounts import users
from tests.conftest import make_user
from tests.support.gateway_helpers import RawSocket, running_server
from tests.support.scaleout_helpers import running_cluster
from tests.support.socket_revocation import AUTHENTICATION_FAILED, PROMPTLY, identified, login, still_open


@pytest.mark.usefixtures("backend")
async def test_revoked_sessions_lose_their_sockets_at_once(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            await make_user(http, "alice")
            phone, laptop, tablet = [await login(http, "alice") for _ in range(3)]
            phone_sockets = [await identified(server.base_url, phone["access_token"]) for _ in range(2)]
            laptop_socket = await identified(server.base_url, laptop["access_token"])
            tablet_socket = await identified(server.base_url, tablet["access_token"])
            sockets = [*phone_sockets, laptop_socket, tablet_socket]
            try:
                # Logout of one session: both of its sockets go, nobody else's.
                auth = {"Authorization": f"Bearer {phone['access_token']}"}
                assert (await http.post("/api/v1/auth/logout", headers=auth)).status_code == 204
                for socket in phone_sockets:
                    assert await socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                assert await still_open(laptop_socket) and await still_open(tablet_socket)

                # Revoking a device from another one.
                laptop_auth = {"Authorization": f"Bearer {laptop['access_token']}"}
                revoked = await http.delete(f"/api/v1/sessions/{tablet['session_id']}", headers=laptop_auth)
                assert revoked.status_code == 204
                assert await tablet_socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                assert await still_open(laptop_socket)

                # Logout everywhere: the last one too.
                assert (await http.post("/api/v1/auth/logout-all", headers=laptop_auth)).status_code == 204
                assert await laptop_socket.closed_with(PROMPTLY) == AUTHENTICATION_FAILED

                # And a reconnect with the old token is refused.
                again = await RawSocket.open(server.base_url)
                sockets.append(again)
                await again.send({"op": "identify", "token": laptop["access_token"]})
                # The refusal says why before the close, and nothing of the user's reaches
                # the socket (identify subscribed to the user before its session was read).
                refusal = await again.recv(PROMPTLY)
                assert refusal["op"] == "error" and refusal["error"]["code"] == "SESSION_REVOKED"
                assert await again.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
            finally:
                for socket in sockets:
                    await socket.close()


async def test_revocation_closes_sockets_on_every_node(tmp_path: Path, empty_postgres_url: str) -> None:
    """Two nodes on PostgreSQL and Redis: sockets of one session on both nodes, logged out
    through node 0, close on node 1 too (the event crosses the bus)."""
    async with running_cluster(tmp_path, empty_postgres_url) as cluster:
        first, second = (node.base_url for node in cluster.nodes)
        async with httpx.AsyncClient(base_url=first) as http:
            await make_user(http, "bob")
            phone, laptop = await login(http, "bob"), await login(http, "bob")
            on_first = await identified(first, phone["access_token"])
            on_second = await identified(second, phone["access_token"])
            laptop_on_second = await identified(second, laptop["access_token"])
            try:
                auth = {"Authorization": f"Bearer {phone['access_token']}"}
                assert (await http.post("/api/v1/auth/logout", headers=auth)).status_code == 204
                assert await on_first.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                assert await on_second.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
                assert await still_open(laptop_on_second)
                laptop_auth = {"Authorization": f"Bearer {laptop['access_token']}"}
                assert (await http.post("/api/v1/auth/logout-all", headers=laptop_auth)).status_code == 204
                assert await laptop_on_second.closed_with(PROMPTLY) == AUTHENTICATION_FAILED
            finally:
                for socket in (on_first, on_second, laptop_on_second):
                    await socket.close()


@pytest.mark.usefixtures("backend")
async def test_a_deactivated_user_cannot_refresh(client: httpx.AsyncClient, container: Container) -> None:
    carol = await make_user(client, "carol")
    async with container.db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == carol.id).values(deactivated_at=utcnow()))
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": carol.refresh_token})
    assert response.status_code == 401 and response.json()["error"]["code"] == "SESSION_REVOKED"
    assert (await client.get("/api/v1/users/me", headers=carol.headers)).status_code == 401
