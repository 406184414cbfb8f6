"""Web Push in the integration tests: the push service stand-in
(``tests/support/notify_helpers.py``) trusting the test server's VAPID key, and a browser
subscribing to it through the API.

A test module takes the fixture with
``from tests.support.push_subscriptions import pushes  # noqa: F401 (fixture)``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from parley.container import Container
from tests.conftest import UserHandle
from tests.support.notify_helpers import BrowserKeys, PushService, push_service


@pytest.fixture
async def pushes(container: Container) -> AsyncIterator[PushService]:
    """A push service that checks the VAPID signatures of this test's server."""
    async with push_service() as service:
        service.server_key = container.notifications.vapid.public_key
        yield service


async def subscribe(
    client: httpx.AsyncClient, user: UserHandle, service: PushService, token: str
) -> tuple[str, BrowserKeys]:
    """A browser of ``user`` subscribes at ``service`` under ``token``: the subscription's id,
    and the browser's keys (to decrypt what is pushed)."""
    keys = BrowserKeys()
    response = await client.post(
        "/api/v1/push/subscriptions", json=keys.subscription(service.endpoint(token)), headers=user.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["subscription"]["id"], keys
