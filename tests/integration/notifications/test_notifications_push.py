"""Web Push end to end, on SQLite and PostgreSQL: a message to someone with no tab open is
pushed — encrypted for their browser's keys (RFC 8291), signed with the server's VAPID key
(RFC 8292) — to a push service, and decrypted there as the browser would; the rules hold
(own messages, read, muted, left, levels, system messages that concern you); coalescing,
retries and 410 behave.

The push service is a stand-in on loopback (``tests/support/notify_helpers.py`` says why): there is
no internet here to reach a real one. Everything else is the real server, its real job
queue and a real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from parley.container import Container
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import open_direct, open_group, send
from tests.support.notify_helpers import BrowserKeys, PushService
from tests.support.push_subscriptions import (
    pushes,  # noqa: F401 (fixture)
    subscribe,
)

pytestmark = [
    pytest.mark.usefixtures("backend"),
    pytest.mark.settings(
        push_delay_seconds=0.3,
        push_coalesce_seconds=1.5,
        outbound_allow_private=True,  # the push service stand-in is on loopback
        **NO_SEND_LIMITS,
    ),
]


async def dm_to_subscriber(
    client: httpx.AsyncClient, service: PushService, token: str
) -> tuple[UserHandle, UserHandle, BrowserKeys, dict[str, Any]]:
    """alice, and bob with one subscribed device, and their direct conversation."""
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    _, keys = await subscribe(client, bob, service, token)
    return alice, bob, keys, await open_direct(client, alice, bob)


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s")


async def settle(container: Container, seconds: float = 0.8) -> None:
    """Let delayed notification jobs that *could* run do so (used only before sending a
    later message whose push proves the earlier one was skipped)."""
    await asyncio.sleep(seconds)


async def test_a_direct_message_is_pushed_encrypted_and_signed(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    _, keys = await subscribe(client, bob, pushes, "bob-phone")
    key = await client.get("/api/v1/push/vapid-public-key")
    assert key.json()["public_key"] == container.notifications.vapid.public_key

    dm = await open_direct(client, alice, bob)
    message = await send(client, alice, dm["id"], "Lunch at **noon**?")

    [delivery] = await pushes.wait_for("bob-phone")
    payload = keys.decrypt(delivery.body)
    assert payload["title"] == "alice"
    assert payload["body"] == "Lunch at noon?"
    assert payload["conversation_id"] == dm["id"]
    assert payload["message_id"] == message["id"]
    assert payload["url"] == f"/c/{dm['id']}/m/{message['id']}"
    assert payload["tag"] == f"conversation:{dm['id']}"
    assert payload["count"] == 1
    assert delivery.headers["urgency"] == "high"  # a direct message
    assert int(delivery.headers["ttl"]) == container.settings.push_ttl_seconds
    assert len(delivery.headers["topic"]) <= 32
    assert pushes.refused == []
    sent = container.metrics.notifications.sent.labels("push")
    await eventually(lambda: sent._value.get() == 1, "the push is counted as sent")
    latency = container.metrics.notifications.latency.labels("push")
    assert latency._sum.get() >= container.settings.push_delay_seconds


async def test_nothing_for_own_muted_read_or_left(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    await subscribe(client, alice, pushes, "alice")
    _, bob_keys = await subscribe(client, bob, pushes, "bob")
    dm = await open_direct(client, alice, bob)

    # Muted: nothing. (Proved by the next, unmuted message being the only push, count 1.)
    muted = await client.patch(
        f"/api/v1/conversations/{dm['id']}/settings", json={"muted_until": "forever"}, headers=bob.headers
    )
    assert muted.status_code == 200 and muted.json()["settings"]["muted_until"].startswith("9999-12-31")
    await send(client, alice, dm["id"], "while muted")
    await settle(container)
    unmuted = await client.patch(
        f"/api/v1/conversations/{dm['id']}/settings", json={"muted_until": None}, headers=bob.headers
    )
    assert unmuted.json()["settings"]["muted_until"] is None
    # Read before the push delay (another device showing the conversation): nothing.
    read_message = await send(client, alice, dm["id"], "read at once")
    marked = await client.post(
        f"/api/v1/conversations/{dm['id']}/read", json={"seq": read_message["seq"]}, headers=bob.headers
    )
    assert marked.status_code == 200
    await settle(container)
    last = await send(client, alice, dm["id"], "this one")
    [delivery] = await pushes.wait_for("bob")
    payload = bob_keys.decrypt(delivery.body)
    assert (payload["message_id"], payload["count"]) == (last["id"], 1)
    assert pushes.for_token("alice") == []  # her own messages

    # Left the group: nothing; still a member: pushed.
    group = await open_group(client, carol, [alice, bob], name="Crew")
    left = await client.delete(f"/api/v1/conversations/{group['id']}/members/{bob.id}", headers=bob.headers)
    assert left.status_code == 204
    await send(client, carol, group["id"], "after bob left")
    await settle(container)
    assert len(pushes.for_token("bob")) == 1
    [to_alice] = await pushes.wait_for("alice")
    assert pushes.refused == []
    assert to_alice.headers["urgency"] == "normal"  # a group message that does not mention her


async def test_levels_and_system_messages(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    _, keys = await subscribe(client, bob, pushes, "bob")

    group = await open_group(client, alice, [], name="Ops")
    added = await client.post(
        f"/api/v1/conversations/{group['id']}/members", json={"user_ids": [bob.id]}, headers=alice.headers
    )
    assert added.status_code == 200
    [first] = await pushes.wait_for("bob")
    assert keys.decrypt(first.body)["body"] == "alice added you in Ops"

    level = await client.patch(
        f"/api/v1/conversations/{group['id']}/settings", json={"notify": "mentions"}, headers=bob.headers
    )
    assert level.json()["settings"]["notify"] == "mentions"
    await send(client, alice, group["id"], "no mention here")
    await settle(container)
    mention = await send(client, alice, group["id"], "@bob please look")
    deliveries = await pushes.wait_for("bob", 2)
    payload = keys.decrypt(deliveries[1].body)
    assert (payload["message_id"], payload["count"], payload["title"]) == (mention["id"], 1, "alice in Ops")

    # The user default applies where the member chose nothing; "none" silences it.
    defaults = await client.patch("/api/v1/users/me", json={"notify_default": "none"}, headers=bob.headers)
    assert defaults.json()["user"]["notify_default"] == "none"
    dm = await open_direct(client, alice, bob)
    await send(client, alice, dm["id"], "silenced by the default")
    await settle(container)
    assert len(pushes.for_token("bob")) == 2
    views = (await client.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    by_id = {v["id"]: v for v in views}
    assert by_id[group["id"]]["notify"] == "mentions"
    assert by_id[dm["id"]]["notify"] is None
    assert by_id[group["id"]]["unread_mentions"] == 1
    assert by_id[group["id"]]["unread_count"] >= 2


async def test_coalesced_per_conversation_and_device(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice, bob, keys, dm = await dm_to_subscriber(client, pushes, "bob")
    await send(client, alice, dm["id"], "one")
    first = await pushes.wait_for("bob")
    # Inside the coalescing window: two more messages become one follow-up push.
    await send(client, alice, dm["id"], "two")
    third = await send(client, alice, dm["id"], "three")
    deliveries = await pushes.wait_for("bob", 2)
    follow_up = keys.decrypt(deliveries[1].body)
    assert (follow_up["message_id"], follow_up["count"], follow_up["body"]) == (third["id"], 2, "three")
    assert follow_up["title"] == "alice (2 new)"
    # The window runs from the first claim (before its HTTP round trip): well over half of it.
    assert deliveries[1].at - first[0].at >= container.settings.push_coalesce_seconds * 0.5
    await settle(container, 2.0)
    assert len(pushes.for_token("bob")) == 2


async def test_a_failed_push_is_retried_and_a_gone_subscription_removed(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice, bob, keys, dm = await dm_to_subscriber(client, pushes, "flaky")
    pushes.answer("flaky", 503)
    message = await send(client, alice, dm["id"], "eventually")
    [delivery] = await pushes.wait_for("flaky")
    assert keys.decrypt(delivery.body)["message_id"] == message["id"]
    failed = container.metrics.notifications.failed.labels("push", "http_503")
    assert failed._value.get() == 1

    gone_id, _ = await subscribe(client, bob, pushes, "gone")
    pushes.answer("gone", 410)
    await send(client, alice, dm["id"], "to a withdrawn subscription")

    async def subscription_ids() -> set[str]:
        listed = await client.get("/api/v1/push/subscriptions", headers=bob.headers)
        return {s["id"] for s in listed.json()["subscriptions"]}

    for _ in range(200):
        if gone_id not in await subscription_ids():
            break
        await asyncio.sleep(0.05)
    assert gone_id not in await subscription_ids()
    assert container.metrics.notifications.subscriptions_removed._value.get() == 1


async def test_a_logged_out_device_gets_nothing(
    client: httpx.AsyncClient, container: Container, pushes: PushService  # noqa: F811
) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    phone = await make_user_session(client, bob)
    _, keys = await subscribe(client, phone, pushes, "phone")
    await subscribe(client, bob, pushes, "laptop")
    logout = await client.post("/api/v1/auth/logout", headers=phone.headers)
    assert logout.status_code == 204
    dm = await open_direct(client, alice, bob)
    await send(client, alice, dm["id"], "only to the laptop")
    await pushes.wait_for("laptop")
    await settle(container)
    assert pushes.for_token("phone") == []
    listed = await client.get("/api/v1/push/subscriptions", headers=bob.headers)
    assert [s["endpoint"] for s in listed.json()["subscriptions"]] == [pushes.endpoint("laptop")]


async def make_user_session(client: httpx.AsyncClient, user: UserHandle) -> UserHandle:
    """Another device (session) of ``user``."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert response.status_code == 200, response.text
    return UserHandle(response.json(), user.password)
