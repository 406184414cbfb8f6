"""The SDK's end-to-end encryption over REST, in process (the app behind an ASGI
transport): key backup and restore on a new device, a removed device dropping out of the
next epoch, replayed ciphertext refused, a wrong passphrase refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from parley.client import ParleyClient
from parley.client.e2ee import primitives as p
from parley.client.e2ee.backup import unseal
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
async def sdk(app: FastAPI, tmp_path: Path) -> AsyncIterator[object]:
    made: list[ParleyClient] = []

    async def make(username: str, *, register: bool = True, state: str | None = None) -> ParleyClient:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        client = ParleyClient("http://parley.test", transport=transport)
        made.append(client)
        if register:
            await client.register(username, TEST_PASSWORD)
        await client.login(username, TEST_PASSWORD)
        await client.enable_e2ee(tmp_path / (state or username))
        return client

    yield make
    for client in made:
        await client.aclose()


def texts(page: dict[str, object]) -> list[dict[str, object]]:
    return [m for m in page["messages"] if m["kind"] == "text"]  # type: ignore[index, union-attr]


async def test_backup_restores_history_on_a_new_device(sdk: object) -> None:
    make = sdk  # type: ignore[assignment]
    alice = await make("alice")  # type: ignore[operator]
    bob = await make("bob")  # type: ignore[operator]
    dm = await alice.create_direct(bob.user_id, encrypted=True)
    early = await bob.send_message(dm["id"], "before the new device")
    assert [m["content"] for m in texts(await alice.history(dm["id"]))] == ["before the new device"]
    version = await alice.e2ee.back_up_keys("correct horse battery staple")
    assert version == 1
    blob = (await alice.request("GET", "/api/v1/key-backup"))["backup"]["data"]
    assert "before the new device" not in blob
    with pytest.raises(p.DecryptionError):
        unseal("wrong passphrase", blob)
    phone = await make("alice", register=False, state="alice-phone")  # type: ignore[operator]
    [unreadable] = texts(await phone.history(dm["id"]))
    assert unreadable["decrypted"] is False
    assert await phone.e2ee.restore_keys("correct horse battery staple") >= 1
    [restored] = texts(await phone.history(dm["id"]))
    assert restored["id"] == early["id"] and restored["content"] == "before the new device"
    # A second backup from the phone merges (conditional on the version it read).
    assert await phone.e2ee.back_up_keys("correct horse battery staple") == 2


async def test_removed_device_gets_no_key_for_the_next_epoch(sdk: object) -> None:
    make = sdk  # type: ignore[assignment]
    alice = await make("alice")  # type: ignore[operator]
    bob = await make("bob")  # type: ignore[operator]
    bob_laptop = await make("bob", register=False, state="bob-laptop")  # type: ignore[operator]
    group = await alice.create_group("g", [bob.user_id], encrypted=True)
    first = await alice.send_message(group["id"], "everyone")
    assert {m["id"]: m["content"] for m in texts(await bob_laptop.history(group["id"]))}[first["id"]] == "everyone"
    await bob.request("DELETE", f"/api/v1/devices/{bob_laptop.e2ee.device_id}")
    second = await alice.send_message(group["id"], "not the laptop")
    raw = (await alice.request("GET", f"/api/v1/messages/{second['id']}"))["message"]
    raw_first = (await alice.request("GET", f"/api/v1/messages/{first['id']}"))["message"]
    assert raw["e2ee"]["session_id"] != raw_first["e2ee"]["session_id"]  # a new epoch
    assert (await bob_laptop.e2ee.decrypt_message(raw))["decrypted"] is False
    assert {m["id"]: m["content"] for m in texts(await bob.history(group["id"]))}[second["id"]] == "not the laptop"


async def test_replayed_ciphertext_is_refused(sdk: object) -> None:
    make = sdk  # type: ignore[assignment]
    alice = await make("alice")  # type: ignore[operator]
    bob = await make("bob")  # type: ignore[operator]
    dm = await alice.create_direct(bob.user_id, encrypted=True)
    sent = await alice.send_message(dm["id"], "pay bob 10")
    raw = (await alice.request("GET", f"/api/v1/messages/{sent['id']}"))["message"]
    assert (await bob.e2ee.decrypt_message(raw))["content"] == "pay bob 10"
    # The same ciphertext stored again (by a client, or served again by a server) is a
    # second message with the same (session, index): read once, refused the second time.
    copy = await alice.request(
        "POST",
        f"/api/v1/conversations/{dm['id']}/messages",
        json={"ciphertext": raw["ciphertext"], "e2ee": raw["e2ee"]},
    )
    replayed = await bob.e2ee.decrypt_message(copy["message"])
    assert replayed["decrypted"] is False and "already read" in replayed["decryption_error"]
    # Re-reading the original (history) is fine.
    assert (await bob.e2ee.decrypt_message(raw))["content"] == "pay bob 10"


async def test_a_new_device_gets_history_keys_from_the_users_other_device(sdk: object) -> None:
    make = sdk  # type: ignore[assignment]
    alice = await make("alice")  # type: ignore[operator]
    bob = await make("bob")  # type: ignore[operator]
    mallory = await make("mallory")  # type: ignore[operator]
    group = await alice.create_group("g", [bob.user_id, mallory.user_id], encrypted=True)
    early = await bob.send_message(group["id"], "before the phone")
    assert texts(await alice.history(group["id"]))[0]["content"] == "before the phone"
    phone = await make("alice", register=False, state="alice-phone")  # type: ignore[operator]
    [first_try] = texts(await phone.history(group["id"]))
    assert first_try["decrypted"] is False  # and a key request went to alice's laptop
    # Mallory (another user) asks alice's laptop for the same key, the way a device would.
    await mallory.e2ee.sync_inbox()
    envelope = first_try["e2ee"]
    await mallory.e2ee._send_to_devices(
        [(alice.user_id, alice.e2ee.device_id)],
        {"type": "key_request", "content": {
            "conversation_id": group["id"], "sender_user_id": bob.user_id,
            "sender_device_id": envelope["sender_device_id"], "session_id": envelope["session_id"],
        }},
    )  # fmt: skip
    await alice.e2ee.sync_inbox()  # the laptop answers its own phone, and only it
    [second_try] = texts(await phone.history(group["id"]))
    assert second_try["id"] == early["id"] and second_try["content"] == "before the phone"
    assert await mallory.e2ee.sync_inbox() == 0  # nothing came back to mallory


async def test_a_changed_device_key_is_flagged_and_not_used(sdk: object) -> None:
    make = sdk  # type: ignore[assignment]
    alice = await make("alice")  # type: ignore[operator]
    bob = await make("bob")  # type: ignore[operator]
    assert [d["device_id"] for d in await alice.e2ee.user_devices(bob.user_id)] == [bob.e2ee.device_id]
    before = await alice.e2ee.safety_number(bob.user_id)
    assert before == await bob.e2ee.safety_number(alice.user_id)
    # What alice's client remembers no longer matches what the server lists (as if a
    # server had swapped the device's keys): the device is left out and the change flagged.
    with alice.e2ee._store.transaction() as state:
        slot = f"{bob.user_id}|{bob.e2ee.device_id}"
        state["known_devices"][slot]["identity_key"] = "A" * 43
    assert await alice.e2ee.user_devices(bob.user_id) == []
    [change] = alice.e2ee.identity_changes()
    assert change["user_id"] == bob.user_id and change["device_id"] == bob.e2ee.device_id
