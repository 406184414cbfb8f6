"""Sessions found open are trusted for ``PARLEY_SESSION_CHECK_CACHE_SECONDS``
(services/session_cache.py), on both databases:

- a revocation through the service (logout, a burst of requests around it) is refused from
  the next request on, however long the cache would keep the session;
- one written behind the service's back (another node, a command in another process: here an
  UPDATE of the row) is refused within the cache's seconds — the documented bound — and at
  once with the cache off.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import update

from parley.clock import utcnow
from parley.container import Container
from parley.store.tables.accounts import sessions
from tests.conftest import UserHandle, make_user

pytestmark = pytest.mark.usefixtures("backend")


async def me(client: httpx.AsyncClient, user: UserHandle) -> int:
    return (await client.get("/api/v1/users/me", headers=user.headers)).status_code


async def revoke_behind_the_service(container: Container, user: UserHandle) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(
            update(sessions).where(sessions.c.id == user.session_id).values(revoked_at=utcnow())
        )


@pytest.mark.settings(session_check_cache_seconds=60)
async def test_a_revocation_through_the_service_takes_effect_at_once(client: httpx.AsyncClient) -> None:
    ann, bob = await make_user(client, "ann"), await make_user(client, "bob")
    assert await me(client, ann) == 200  # found open: trusted for a minute
    before = await asyncio.gather(*(me(client, ann) for _ in range(20)), me(client, bob))
    assert set(before) == {200}
    # Logout in the middle of a burst of the same session's requests.
    burst = [me(client, ann) for _ in range(20)]
    logout = client.post("/api/v1/auth/logout", headers=ann.headers)
    outcomes = await asyncio.gather(*burst[:10], logout, *burst[10:])
    assert outcomes[10].status_code == 204
    assert set(outcomes[:10] + outcomes[11:]) <= {200, 401}
    after = await asyncio.gather(*(me(client, ann) for _ in range(20)))
    assert set(after) == {401}, after
    assert await me(client, bob) == 200  # nobody else's session moved


@pytest.mark.parametrize(
    "cache_seconds",
    [
        pytest.param(1.0, marks=pytest.mark.settings(session_check_cache_seconds=1.0)),
        pytest.param(0.0, marks=pytest.mark.settings(session_check_cache_seconds=0)),
    ],
)
async def test_a_revocation_elsewhere_takes_effect_within_the_cache_seconds(
    client: httpx.AsyncClient, container: Container, cache_seconds: float
) -> None:
    ann = await make_user(client, "ann")
    assert await me(client, ann) == 200
    await revoke_behind_the_service(container, ann)
    if cache_seconds == 0:
        assert await me(client, ann) == 401  # every request reads the session
        return
    revoked_at = time.monotonic()
    while (status := await me(client, ann)) == 200:
        assert time.monotonic() - revoked_at < cache_seconds + 1.5, "still trusted past the bound"
        await asyncio.sleep(0.05)
    assert status == 401
