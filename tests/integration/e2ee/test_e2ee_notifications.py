"""An encrypted conversation notifies without text (DESIGN §6.1, §6.2): the push a member
gets says "New message", and nothing of the ciphertext travels to the push service."""

from __future__ import annotations

import httpx
import pytest

from parley.container import Container
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import open_direct, post_message
from tests.support.e2ee_helpers import sealed
from tests.support.notify_helpers import PushService
from tests.support.push_subscriptions import (
    pushes,  # noqa: F401 (fixture)
    subscribe,
)

pytestmark = [
    pytest.mark.usefixtures("backend"),
    pytest.mark.settings(
        push_delay_seconds=0.3, push_coalesce_seconds=1.5, outbound_allow_private=True, **NO_SEND_LIMITS
    ),
]


async def test_encrypted_messages_are_pushed_without_text(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    _, keys = await subscribe(client, bob, pushes, "bob-phone")
    dm = await open_direct(client, alice, bob)
    switched = await client.patch(f"/api/v1/conversations/{dm['id']}", json={"encrypted": True}, headers=alice.headers)
    assert switched.status_code == 200
    body = sealed()
    response = await post_message(client, alice, dm["id"], **body)
    assert response.status_code == 201, response.text
    [delivery] = await pushes.wait_for("bob-phone")
    payload = keys.decrypt(delivery.body)
    assert payload["body"] == "New message"
    assert payload["message_id"] == response.json()["message"]["id"]
    assert body["ciphertext"] not in str(payload) and body["ciphertext"][:16] not in str(payload)
