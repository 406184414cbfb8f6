"""E2EE, server side (DESIGN §6.1): the policy, encrypted conversations, devices and key
bundles — upload, list, claim (atomic one-time prekeys, under bursts), counts, removal and
``device.updated`` — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from parley.container import Container
from parley.e2ee import formats
from tests.conftest import make_user
from tests.support.account_helpers import make_staff
from tests.support.chat_helpers import code, open_direct, open_group
from tests.support.container_events import EventLog
from tests.support.e2ee_helpers import DeviceKeys, one_time_prekeys, register_device

pytestmark = pytest.mark.usefixtures("backend")


# --- conversations


async def test_encrypted_conversations_are_created_and_switched_on_never_off(
    client: httpx.AsyncClient,
) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    group = await open_group(client, alice, [bob, carol], encrypted=True)
    assert group["encrypted"] is True
    plain = await open_group(client, alice, [bob, carol], name="plain")
    assert plain["encrypted"] is False
    url = f"/api/v1/conversations/{plain['id']}"
    refused = await client.patch(url, json={"encrypted": True}, headers=bob.headers)
    assert refused.status_code == 403  # a member, not an admin
    no_op = await client.patch(url, json={"encrypted": False}, headers=alice.headers)
    assert no_op.status_code == 200 and no_op.json()["conversation"]["encrypted"] is False
    on = await client.patch(url, json={"encrypted": True}, headers=alice.headers)
    assert on.status_code == 200 and on.json()["conversation"]["encrypted"] is True
    again = await client.patch(url, json={"encrypted": True}, headers=alice.headers)
    assert again.json()["conversation"]["last_seq"] == on.json()["conversation"]["last_seq"]
    off = await client.patch(url, json={"encrypted": False}, headers=alice.headers)
    assert off.status_code == 409 and code(off) == "ENCRYPTION_PERMANENT"
    history = (await client.get(f"{url}/messages", headers=carol.headers)).json()["messages"]
    assert history[-1]["system_event"]["changes"] == {"encrypted": True}
    # A direct conversation: either side switches it on, also by asking for an encrypted DM.
    dm = await open_direct(client, alice, bob)
    assert dm["encrypted"] is False
    again_dm = await client.post(
        "/api/v1/conversations",
        json={"type": "direct", "user_id": alice.id, "encrypted": True},
        headers=bob.headers,
    )
    assert again_dm.status_code == 200
    assert again_dm.json()["conversation"] == again_dm.json()["conversation"] | {
        "id": dm["id"],
        "encrypted": True,
    }


async def test_a_burst_of_switches_encrypts_once_and_is_audited_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    root = await make_staff(client, container, "root", "admin")
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    group = await open_group(client, alice, [bob, carol])
    url = f"/api/v1/conversations/{group['id']}"
    promoted = await client.patch(f"{url}/members/{bob.id}", json={"role": "admin"}, headers=alice.headers)
    assert promoted.status_code == 204, promoted.text
    captured = EventLog(container)
    # A member is refused, and leaves no trace.
    refused = await client.patch(url, json={"encrypted": True}, headers=carol.headers)
    assert refused.status_code == 403 and code(refused) == "FORBIDDEN"
    # Two admins at once, eight times: one switch, one timeline line, one event, one entry.
    answers = await asyncio.gather(
        *(client.patch(url, json={"encrypted": True}, headers=(alice, bob)[i % 2].headers) for i in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert all(a.json()["conversation"]["encrypted"] is True for a in answers)
    history = (await client.get(f"{url}/messages", headers=carol.headers)).json()["messages"]
    switches = [m for m in history if (m.get("system_event") or {}).get("changes") == {"encrypted": True}]
    assert len(switches) == 1 and switches[0]["system_event"]["actor_id"] in (alice.id, bob.id)
    updates = [e for e in captured.of("conversation.updated") if e.data.get("changes") == {"encrypted": True}]
    assert len(updates) == 1 and updates[0].conversation_id == group["id"]
    audit = (await client.get("/api/v1/admin/audit", headers=root.headers)).json()["entries"]
    entries = [(e["action"], e["actor_id"], e["target_id"]) for e in audit if e["action"] == "conversation.encrypted"]
    assert entries == [("conversation.encrypted", switches[0]["system_event"]["actor_id"], group["id"])]


@pytest.mark.settings(e2ee="off")
async def test_policy_off_refuses_encryption(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    response = await client.post(
        "/api/v1/conversations",
        json={"type": "group", "name": "x", "member_ids": [bob.id], "encrypted": True},
        headers=alice.headers,
    )
    assert response.status_code == 403 and code(response) == "E2EE_DISABLED"
    plain = await open_group(client, alice, [bob])
    switched = await client.patch(
        f"/api/v1/conversations/{plain['id']}", json={"encrypted": True}, headers=alice.headers
    )
    assert code(switched) == "E2EE_DISABLED"
    keys = DeviceKeys(alice.id, "laptop")
    upload = await client.put("/api/v1/devices/laptop/keys", json=keys.body(), headers=alice.headers)
    assert upload.status_code == 403 and code(upload) == "E2EE_DISABLED"


@pytest.mark.settings(e2ee="required")
async def test_policy_required_encrypts_every_new_conversation(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    assert (await open_group(client, alice, [bob]))["encrypted"] is True
    assert (await open_direct(client, alice, bob))["encrypted"] is True
    refused = await client.post(
        "/api/v1/conversations",
        json={"type": "group", "name": "x", "member_ids": [], "encrypted": False},
        headers=alice.headers,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["field"] == "encrypted"


# --- devices and keys


async def test_upload_list_count_and_rotate(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    captured = EventLog(container)
    await open_direct(client, alice, bob)
    keys = await register_device(client, alice, "laptop", range(1, 11))
    listed = (await client.get(f"/api/v1/users/{alice.id}/devices", headers=bob.headers)).json()
    assert [d["device_id"] for d in listed["devices"]] == ["laptop"]
    assert listed["devices"][0]["identity_keys"] == keys.identity_keys()
    mine = (await client.get("/api/v1/devices", headers=alice.headers)).json()["devices"]
    assert mine == listed["devices"]
    queried = await client.post(
        "/api/v1/keys/query", json={"user_ids": [alice.id, bob.id, "0" * 26]}, headers=bob.headers
    )
    assert queried.json()["devices"] == {alice.id: listed["devices"], bob.id: [], "0" * 26: []}
    assert (await client.post("/api/v1/keys/query", json={"user_ids": []}, headers=bob.headers)).status_code == 400
    assert (await client.post("/api/v1/keys/query", json={"user_ids": ["x"]}, headers=bob.headers)).status_code == 400
    count = (await client.get("/api/v1/keys/count", headers=alice.headers)).json()
    assert count == {"device_id": "laptop", "one_time_prekeys": 10, "signed_prekey_id": 1}
    # The same upload again adds nothing; new prekeys are added; the signed prekey rotates.
    again = await client.put("/api/v1/devices/laptop/keys", json=keys.body(range(0)), headers=alice.headers)
    assert again.json()["one_time_prekey_count"] == 10
    keys.spk_id = 2
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys.spk = X25519PrivateKey.generate()
    rotated = await client.put(
        "/api/v1/devices/laptop/keys",
        json={"signed_prekey": keys.signed_prekey(), "one_time_prekeys": one_time_prekeys(range(11, 16))},
        headers=alice.headers,
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["one_time_prekey_count"] == 15
    assert rotated.json()["device"]["signed_prekey"]["key_id"] == 2
    changes = [(e.data["change"], set(e.user_ids)) for e in captured.of("device.updated")]
    assert changes == [("added", {alice.id, bob.id}), ("updated", {alice.id, bob.id})]


async def test_bad_key_uploads_are_refused(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    keys = DeviceKeys(alice.id, "laptop")
    url = "/api/v1/devices/laptop/keys"

    async def put(body: dict[str, Any], path: str = url) -> httpx.Response:
        return await client.put(path, json=body, headers=alice.headers)

    first = await put({"one_time_prekeys": one_time_prekeys(range(3))})
    assert first.status_code == 400 and first.json()["error"]["details"][0]["field"] == "identity_keys"
    forged = keys.body() | {"identity_keys": keys.identity_keys() | {"identity_key": formats.b64encode(b"\1" * 32)}}
    assert code(await put(forged)) == "INVALID_SIGNATURE"
    other_device = DeviceKeys(alice.id, "phone")  # signed for another device id
    assert code(await put(other_device.body())) == "INVALID_SIGNATURE"
    for bad_key in ("short", "A" * 44, "+" * 43, "A" * 42 + "=", "é" * 43):
        body = keys.body() | {"identity_keys": keys.identity_keys() | {"signing_key": bad_key}}
        response = await put(body)
        assert response.status_code == 400, bad_key
        assert response.json()["error"]["details"][0]["field"] == "identity_keys.signing_key"
    huge = keys.body() | {"one_time_prekeys": [{"key_id": 2**80, "public_key": "A" * 43}]}
    assert (await put(huge)).status_code == 400
    negative = keys.body() | {"one_time_prekeys": [{"key_id": -1, "public_key": "A" * 43}]}
    assert (await put(negative)).status_code == 400
    repeated = keys.body() | {"one_time_prekeys": one_time_prekeys(range(1)) * 2}
    assert (await put(repeated)).status_code == 400
    too_many = keys.body() | {"one_time_prekeys": one_time_prekeys(range(201))}
    assert (await put(too_many)).status_code == 400
    nul = keys.body() | {"display_name": "lap\x00top"}
    assert (await put(nul)).status_code == 400
    bad_spk = keys.body() | {"signed_prekey": keys.signed_prekey() | {"key_id": 7}}
    assert code(await put(bad_spk)) == "INVALID_SIGNATURE"
    for device_id in ("a" * 65, "lap top", "lap.top"):
        assert (await put(keys.body(), f"/api/v1/devices/{device_id}/keys")).status_code == 404
    assert (await put(keys.body())).status_code == 200
    changed = DeviceKeys(alice.id, "laptop")
    response = await put(changed.body())
    assert response.status_code == 409 and code(response) == "DEVICE_KEYS_CHANGED"
    # A key id already stored with another key is refused; nothing partial was written.
    reuse = {"one_time_prekeys": [{"key_id": 0, "public_key": formats.b64encode(b"\2" * 32)}]}
    await put({"one_time_prekeys": one_time_prekeys(range(1))})
    assert (await put(reuse)).status_code == 400


async def test_claims_consume_each_prekey_once_then_fall_back(client: httpx.AsyncClient) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    await register_device(client, bob, "phone", range(1, 3))
    await register_device(client, bob, "laptop", range(1, 2))
    claim = await client.post(
        "/api/v1/keys/claim",
        json={"devices": [{"user_id": bob.id, "device_id": "phone"}], "user_ids": [bob.id, carol.id]},
        headers=alice.headers,
    )
    assert claim.status_code == 200, claim.text
    body = claim.json()
    got = sorted((b["device_id"], b["one_time_prekey"]["key_id"]) for b in body["bundles"])
    assert got == [("laptop", 1), ("phone", 1)]
    assert body["users_without_devices"] == [carol.id] and body["missing"] == []
    second = (
        await client.post("/api/v1/keys/claim", json={"user_ids": [bob.id]}, headers=alice.headers)
    ).json()
    by_device = {b["device_id"]: b["one_time_prekey"] for b in second["bundles"]}
    assert by_device["phone"]["key_id"] == 2 and by_device["laptop"] is None  # exhausted
    assert all(b["signed_prekey"]["key_id"] == 1 for b in second["bundles"])
    missing = (
        await client.post(
            "/api/v1/keys/claim",
            json={"devices": [{"user_id": bob.id, "device_id": "tablet"}]},
            headers=alice.headers,
        )
    ).json()
    assert missing == {"bundles": [], "missing": [{"user_id": bob.id, "device_id": "tablet"}], "users_without_devices": []}
    bad = await client.post(
        "/api/v1/keys/claim", json={"devices": [{"user_id": bob.id, "device_id": "no pe"}]}, headers=alice.headers
    )
    assert bad.status_code == 400
    unknown_user = await client.post("/api/v1/keys/claim", json={"user_ids": ["0" * 26]}, headers=alice.headers)
    assert unknown_user.json()["users_without_devices"] == ["0" * 26]


async def test_a_burst_of_parallel_claims_never_hands_out_a_prekey_twice(
    client: httpx.AsyncClient, app: Any
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await register_device(client, bob, "phone", range(1, 21))
    claimers = [await make_user(client, f"claimer{i}") for i in range(6)]

    async def claim(user: Any) -> Any:
        response = await client.post(
            "/api/v1/keys/claim",
            json={"devices": [{"user_id": bob.id, "device_id": "phone"}]},
            headers=user.headers,
        )
        assert response.status_code == 200, response.text
        return response.json()["bundles"][0]["one_time_prekey"]

    results = await asyncio.gather(*(claim(claimers[i % 6]) for i in range(30)))
    handed = [r["key_id"] for r in results if r is not None]
    assert sorted(handed) == list(range(1, 21))  # every prekey once, none twice
    assert results.count(None) == 10
    count = (await client.get("/api/v1/keys/count", params={"device_id": "phone"}, headers=bob.headers)).json()
    assert count["one_time_prekeys"] == 0


async def test_removed_and_logged_out_devices_disappear(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await open_direct(client, alice, bob)
    await register_device(client, bob, "phone")
    await register_device(client, bob, "laptop")
    captured = EventLog(container)
    removed = await client.delete("/api/v1/devices/phone", headers=bob.headers)
    assert removed.status_code == 204
    assert (await client.delete("/api/v1/devices/phone", headers=bob.headers)).status_code == 404
    listed = (await client.get(f"/api/v1/users/{bob.id}/devices", headers=alice.headers)).json()
    assert [d["device_id"] for d in listed["devices"]] == ["laptop"]
    assert [(e.data["device_id"], e.data["change"]) for e in captured.of("device.updated")] == [
        ("phone", "removed")
    ]
    # Logging the session out takes its device out of lists and claims.
    assert (await client.post("/api/v1/auth/logout", headers=bob.headers)).status_code == 204
    listed = (await client.get(f"/api/v1/users/{bob.id}/devices", headers=alice.headers)).json()
    assert listed["devices"] == []
    claim = (await client.post("/api/v1/keys/claim", json={"user_ids": [bob.id]}, headers=alice.headers)).json()
    assert claim["bundles"] == [] and claim["users_without_devices"] == [bob.id]
    unknown = await client.get(f"/api/v1/users/{'0' * 26}/devices", headers=alice.headers)
    assert unknown.status_code == 404


async def test_a_burst_of_first_uploads_registers_one_device(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    keys = DeviceKeys(alice.id, "laptop")
    body = keys.body(range(1, 11))
    results = await asyncio.gather(
        *(client.put("/api/v1/devices/laptop/keys", json=body, headers=alice.headers) for _ in range(8))
    )
    assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
    assert {r.json()["one_time_prekey_count"] for r in results} <= set(range(1, 11)) | {10}
    assert results[-1].json()["device"]["identity_keys"] == keys.identity_keys()
    count = (await client.get("/api/v1/keys/count", headers=alice.headers)).json()
    assert count["one_time_prekeys"] == 10
    assert len((await client.get("/api/v1/devices", headers=alice.headers)).json()["devices"]) == 1
