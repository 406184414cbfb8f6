"""The to-device inbox (DESIGN §6.1): stored per device, pushed as ``to_device``,
idempotent by message id, deleted on ack, bounded with a metric — on SQLite and
PostgreSQL, with bad input and a concurrent burst; one test over a real socket."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.container import Container
from parley.e2ee import formats
from tests.conftest import UserHandle, make_user
from tests.support.chat_helpers import open_direct, open_group
from tests.support.container_events import EventLog
from tests.support.e2ee_helpers import register_device
from tests.support.gateway_helpers import new_user, open_log, running_server

pytestmark = pytest.mark.usefixtures("backend")

BLOB = formats.b64encode(b"pairwise ciphertext bytes")


def out(user: UserHandle, device: str, message_id: str, blob: str = BLOB) -> dict[str, str]:
    return {"user_id": user.id, "device_id": device, "message_id": message_id, "ciphertext": blob}


async def post(client: httpx.AsyncClient, sender: UserHandle, *messages: dict[str, str], **extra: Any) -> httpx.Response:
    return await client.post(
        "/api/v1/to-device", json={"messages": list(messages), **extra}, headers=sender.headers
    )


async def test_store_push_resend_and_ack(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await open_direct(client, alice, bob)
    await register_device(client, alice, "a1")
    await register_device(client, bob, "b1")
    await register_device(client, bob, "b2")
    captured = EventLog(container)
    sent = await post(client, alice, out(bob, "b1", "m1"), out(bob, "b2", "m1"), out(bob, "gone", "m1"))
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert sorted(s["device_id"] for s in body["sent"]) == ["b1", "b2"]
    assert body["missing"] == [{"user_id": bob.id, "device_id": "gone"}]
    pushed = captured.of("to_device")
    assert [(e.data["device_id"], e.user_ids) for e in pushed] == [("b1", (bob.id,)), ("b2", (bob.id,))]
    message = pushed[0].data["messages"][0]
    assert message["sender_id"] == alice.id and message["sender_device_id"] == "a1"
    assert message["ciphertext"] == BLOB
    # A resend (lost answer) stores and pushes nothing new, and answers the same ids.
    again = await post(client, alice, out(bob, "b1", "m1"))
    assert again.json()["sent"][0]["id"] == message["id"]
    assert len(captured.of("to_device")) == 2
    inbox = (await client.get("/api/v1/to-device", params={"device_id": "b1"}, headers=bob.headers)).json()
    assert [m["id"] for m in inbox["messages"]] == [message["id"]] and inbox["has_more"] is False
    # Another user cannot read or ack bob's inbox.
    assert (await client.get("/api/v1/to-device", params={"device_id": "b1"}, headers=alice.headers)).status_code == 404
    assert (await client.post("/api/v1/to-device/ack", json={"ids": [message["id"]]}, headers=alice.headers)).json() == {"deleted": 0}
    acked = await client.post("/api/v1/to-device/ack", json={"ids": [message["id"]]}, headers=bob.headers)
    assert acked.json() == {"deleted": 1}
    assert (await client.post("/api/v1/to-device/ack", json={"ids": [message["id"]]}, headers=bob.headers)).json() == {"deleted": 0}
    inbox = (await client.get("/api/v1/to-device", params={"device_id": "b1"}, headers=bob.headers)).json()
    assert inbox["messages"] == []


async def test_only_reachable_active_devices_receive(client: httpx.AsyncClient) -> None:
    alice, bob, mallory = [await make_user(client, n) for n in ("alice", "bob", "mallory")]
    await register_device(client, alice, "a1")
    await register_device(client, bob, "b1")
    await register_device(client, mallory, "m1")
    # Mallory shares no conversation with bob: his devices are "missing" to her.
    refused = (await post(client, mallory, out(bob, "b1", "spam"))).json()
    assert refused["sent"] == [] and refused["missing"] == [{"user_id": bob.id, "device_id": "b1"}]
    # Her own other devices are reachable.
    await register_device(client, mallory, "m2")
    assert len((await post(client, mallory, out(mallory, "m2", "x"))).json()["sent"]) == 1
    # A device whose session logged out is gone mid-distribution: missing, not an error.
    await open_group(client, alice, [bob])
    assert (await client.post("/api/v1/auth/logout", headers=bob.headers)).status_code == 204
    gone = (await post(client, alice, out(bob, "b1", "late"))).json()
    assert gone["missing"] == [{"user_id": bob.id, "device_id": "b1"}]


async def test_bad_to_device_input(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await open_direct(client, alice, bob)
    await register_device(client, bob, "b1")
    no_device = await post(client, alice, out(bob, "b1", "m1"))
    assert no_device.status_code == 400
    assert no_device.json()["error"]["details"][0]["field"] == "sender_device_id"
    await register_device(client, alice, "a1")
    cases = [
        (out(bob, "b1", "m1", "not base64!"), "messages[0].ciphertext"),
        (out(bob, "b1", "m1", ""), "messages[0].ciphertext"),
        (out(bob, "b1", "m1", "A" * 20_000), "messages[0].ciphertext"),
        (out(bob, "b1", "bad id with spaces"), "messages[0].message_id"),
        (out(bob, "b 1", "m1"), "messages[0].device_id"),
        (out(bob, "b1", "m\x001"), "message_id"),
    ]
    for message, field in cases:
        response = await post(client, alice, message)
        assert response.status_code == 400, (message, response.text)
        assert field in response.json()["error"]["details"][0]["field"], response.text
    assert (await post(client, alice)).status_code == 400  # empty
    assert (await post(client, alice, out(bob, "b1", "m1"), sender_device_id="b1")).status_code == 400
    ack = await client.post("/api/v1/to-device/ack", json={"ids": ["nope"]}, headers=bob.headers)
    assert ack.status_code == 400
    assert (await client.get("/api/v1/to-device", headers=bob.headers)).status_code == 400
    limit = await client.get("/api/v1/to-device", params={"device_id": "b1", "limit": 2**70}, headers=bob.headers)
    assert limit.status_code == 400


@pytest.mark.settings(e2ee_inbox_max=10)
async def test_inbox_is_bounded_and_drops_are_counted(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await open_direct(client, alice, bob)
    await register_device(client, alice, "a1")
    await register_device(client, bob, "b1")
    # A burst of concurrent senders: every message stored once, the inbox never past 10.
    results = await asyncio.gather(*(post(client, alice, out(bob, "b1", f"m{i}")) for i in range(25)))
    assert all(r.status_code == 200 for r in results)
    inbox = (await client.get("/api/v1/to-device", params={"device_id": "b1"}, headers=bob.headers)).json()
    kept = [m["message_id"] for m in inbox["messages"]]
    assert len(kept) == 10
    assert container.metrics.e2ee.to_device_dropped._value.get() == 15
    assert container.metrics.e2ee.to_device_stored._value.get() == 25
    assert len(set(kept)) == 10
    # What is kept is the newest: the ten highest (time-ordered) server ids stored.
    stored_ids = sorted(r.json()["sent"][0]["id"] for r in results)
    assert [m["id"] for m in inbox["messages"]] == stored_ids[-10:]


async def test_to_device_is_pushed_over_a_real_socket(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        try:
            await alice.create_direct(bob.user_id)
            for client, device in ((alice, "a1"), (bob, "b1")):
                from tests.support.e2ee_helpers import DeviceKeys

                keys = DeviceKeys(client.user_id, device)
                await client.request("PUT", f"/api/v1/devices/{device}/keys", json=keys.body(range(1, 3)))
            log = await open_log(bob)
            try:
                await alice.request(
                    "POST",
                    "/api/v1/to-device",
                    json={"messages": [{"user_id": bob.user_id, "device_id": "b1", "message_id": "k1", "ciphertext": BLOB}]},
                )
                [event] = await log.wait_type("to_device")
                assert event.data["device_id"] == "b1"
                assert event.data["messages"][0]["ciphertext"] == BLOB
            finally:
                await log.close()
        finally:
            await alice.aclose()
            await bob.aclose()
