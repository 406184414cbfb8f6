"""The notification API's contract and its bad input, on SQLite and PostgreSQL: levels and
mutes, defaults, Web Push subscriptions, the VAPID key (generated once, kept 0600, or
configured)."""

from __future__ import annotations

import asyncio
import base64
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from parley.config import Settings
from parley.container import Container
from parley.notifications.vapid import VAPID_FILE_NAME, VapidKeys
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import code, open_direct, open_group
from tests.support.notify_helpers import BrowserKeys, send_json

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def test_conversation_settings_and_their_bad_input(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    eve = await make_user(client, "eve")
    dm = await open_direct(client, alice, bob)
    url = f"/api/v1/conversations/{dm['id']}/settings"

    empty = await client.patch(url, json={}, headers=bob.headers)
    assert empty.json()["settings"] == {"conversation_id": dm["id"], "notify": None, "muted_until": None}
    soon = (datetime.now(UTC) + timedelta(hours=8)).replace(microsecond=0)
    muted = await client.patch(
        url, json={"notify": "mentions", "muted_until": soon.isoformat()}, headers=bob.headers
    )
    assert muted.status_code == 200
    assert muted.json()["settings"]["notify"] == "mentions"
    assert datetime.fromisoformat(muted.json()["settings"]["muted_until"].replace("Z", "+00:00")) == soon
    # Only the field sent changes; null returns to the default / unmutes; a past time unmutes.
    level_only = await client.patch(url, json={"notify": None}, headers=bob.headers)
    assert level_only.json()["settings"]["notify"] is None
    assert level_only.json()["settings"]["muted_until"] is not None
    past = await client.patch(url, json={"muted_until": "2001-01-01T00:00:00Z"}, headers=bob.headers)
    assert past.json()["settings"]["muted_until"] is None
    edge = await client.patch(url, json={"muted_until": "9999-12-31T23:00:00-05:00"}, headers=bob.headers)
    assert edge.json()["settings"]["muted_until"] == "9999-12-31T00:00:00.000Z"
    forever = await client.patch(url, json={"muted_until": "forever"}, headers=bob.headers)
    assert forever.json()["settings"]["muted_until"] == "9999-12-31T00:00:00.000Z"
    view = (await client.get(f"/api/v1/conversations/{dm['id']}", headers=bob.headers)).json()
    assert view["conversation"]["muted_until"] == "9999-12-31T00:00:00.000Z"
    # Alice's settings for the same conversation are her own.
    alice_view = (await client.get(f"/api/v1/conversations/{dm['id']}", headers=alice.headers)).json()
    assert alice_view["conversation"]["muted_until"] is None

    bad_bodies: list[object] = [
        {"notify": "loud"},
        {"notify": 5},
        {"notify": ["all"]},
        {"muted_until": "tomorrow"},
        {"muted_until": "2030-01-01T00:00:00"},  # no offset
        {"muted_until": "2030-01-01T00:00:00\x00Z"},
        {"muted_until": "\ud800"},
        {"muted_until": 2**63},
        {"muted_until": 1.5e308},
        {"muted_until": True},
        {"muted_until": "9" * 100},
        {"sound": "loud"},
        ["notify", "all"],
        "all",
    ]
    for body in bad_bodies:
        response = await send_json(client, "PATCH", url, body, bob.headers)
        assert response.status_code == 400, (body, response.text)
        assert code(response) in {"VALIDATION_ERROR", "INVALID_JSON"}
    outsider = await client.patch(url, json={"notify": "all"}, headers=eve.headers)
    assert outsider.status_code == 404
    after = (await client.get(f"/api/v1/conversations/{dm['id']}", headers=bob.headers)).json()
    assert after["conversation"]["muted_until"] == "9999-12-31T00:00:00.000Z"  # nothing bad stuck


async def test_defaults_and_their_bad_input(client: httpx.AsyncClient) -> None:
    bob = await make_user(client, "bob")
    got = await client.get("/api/v1/users/me/notifications", headers=bob.headers)
    assert got.json() == {"notifications": {"notify_default": "all", "email_digest": True}}
    me = await client.get("/api/v1/users/me", headers=bob.headers)
    assert me.json()["user"]["notify_default"] == "all"
    changed = await client.patch(
        "/api/v1/users/me/notifications", json={"notify_default": "mentions", "email_digest": False}, headers=bob.headers
    )
    assert changed.json()["notifications"] == {"notify_default": "mentions", "email_digest": False}
    profile = await client.patch("/api/v1/users/me", json={"notify_default": "none"}, headers=bob.headers)
    assert profile.status_code == 200
    assert profile.json()["user"]["notify_default"] == "none"
    for body in [{"notify_default": "some"}, {"notify_default": None, "x": 1}, {"email_digest": "yes"},
                 {"email_digest": 1}, {"notify_default": 2**64}, {"notify_default": "\ud800"}]:
        response = await send_json(client, "PATCH", "/api/v1/users/me/notifications", body, bob.headers)
        assert response.status_code == 400, (body, response.text)
    bad_profile = await send_json(client, "PATCH", "/api/v1/users/me", {"notify_default": "loud"}, bob.headers)
    assert bad_profile.status_code == 400
    final = await client.get("/api/v1/users/me/notifications", headers=bob.headers)
    assert final.json()["notifications"] == {"notify_default": "none", "email_digest": False}


async def test_subscriptions_and_their_bad_input(client: httpx.AsyncClient) -> None:
    bob = await make_user(client, "bob")
    eve = await make_user(client, "eve")
    keys = BrowserKeys()
    endpoint = "https://push.example.org/send/abc123"
    created = await client.post("/api/v1/push/subscriptions", json=keys.subscription(endpoint), headers=bob.headers)
    assert created.status_code == 201
    again = await client.post("/api/v1/push/subscriptions", json=keys.subscription(endpoint), headers=bob.headers)
    assert again.status_code == 200
    assert again.json()["subscription"]["id"] == created.json()["subscription"]["id"]

    good = keys.subscription("https://push.example.org/send/other")
    bad_subscriptions: list[object] = [
        {**good, "endpoint": "ftp://push.example.org/x"},
        {**good, "endpoint": "http://push.example.org/x"},  # https only here
        {**good, "endpoint": "https://127.0.0.1/x"},  # loopback: never a push service
        {**good, "endpoint": "https://10.1.2.3/x"},
        {**good, "endpoint": "https://user:pw@push.example.org/x"},
        {**good, "endpoint": "https:///nohost"},
        {**good, "endpoint": "https://push.example.org/" + "x" * 1100},
        {**good, "endpoint": "https://push.example.org/\x00"},
        {**good, "endpoint": "https://push.example.org/\ud800"},
        {**good, "endpoint": 2**63},
        {**good, "keys": {"p256dh": "not base64 !!", "auth": keys.auth}},
        {**good, "keys": {"p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode(), "auth": keys.auth}},
        {**good, "keys": {"p256dh": keys.p256dh, "auth": "c2hvcnQ"}},
        {**good, "keys": {"p256dh": keys.p256dh}},
        {"endpoint": good["endpoint"]},
        [good],
    ]
    for body in bad_subscriptions:
        response = await send_json(client, "POST", "/api/v1/push/subscriptions", body, bob.headers)
        assert response.status_code == 400, (body, response.text)
    listed = await client.get("/api/v1/push/subscriptions", headers=bob.headers)
    assert [s["endpoint"] for s in listed.json()["subscriptions"]] == [endpoint]

    # Another account on the same browser takes the endpoint over.
    moved = await client.post("/api/v1/push/subscriptions", json=keys.subscription(endpoint), headers=eve.headers)
    assert moved.status_code == 200
    assert (await client.get("/api/v1/push/subscriptions", headers=bob.headers)).json()["subscriptions"] == []
    subscription_id = moved.json()["subscription"]["id"]
    assert (await client.delete(f"/api/v1/push/subscriptions/{subscription_id}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/push/subscriptions/{subscription_id}", headers=eve.headers)).status_code == 204
    assert (await client.delete(f"/api/v1/push/subscriptions/{subscription_id}", headers=eve.headers)).status_code == 404


async def test_a_burst_of_identical_subscriptions_makes_one(client: httpx.AsyncClient) -> None:
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    keys = BrowserKeys()
    body = keys.subscription("https://push.example.org/send/burst")
    other = BrowserKeys().subscription("https://push.example.org/send/carol")
    responses = await asyncio.gather(
        *(client.post("/api/v1/push/subscriptions", json=body, headers=bob.headers) for _ in range(12)),
        *(client.post("/api/v1/push/subscriptions", json=other, headers=carol.headers) for _ in range(4)),
    )
    assert sorted(r.status_code for r in responses[:12]) == [200] * 11 + [201]
    assert {r.json()["subscription"]["id"] for r in responses[:12]} == {responses[0].json()["subscription"]["id"]}
    assert all(r.status_code in (200, 201) for r in responses[12:])
    assert len((await client.get("/api/v1/push/subscriptions", headers=bob.headers)).json()["subscriptions"]) == 1
    assert len((await client.get("/api/v1/push/subscriptions", headers=carol.headers)).json()["subscriptions"]) == 1


async def test_vapid_key_is_public_generated_once_and_private(
    client: httpx.AsyncClient, container: Container, settings: Settings
) -> None:
    response = await client.get("/api/v1/push/vapid-public-key")  # no login needed
    key = response.json()["public_key"]
    point = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(point) == 65 and point[0] == 4
    path = Path(settings.data_dir) / VAPID_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert VapidKeys.from_settings(settings).public_key == key  # the same key next start
    # Configured (every node the same): the file is not used.
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    configured = settings.model_copy(update={"vapid_private_key": SecretStr(pem)})
    assert VapidKeys.from_settings(configured).public_key != key
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    as_raw = settings.model_copy(
        update={"vapid_private_key": SecretStr(base64.urlsafe_b64encode(raw).decode().rstrip("="))}
    )
    assert VapidKeys.from_settings(as_raw).public_key == VapidKeys.from_settings(configured).public_key


async def test_conversation_list_counts_mentions_quietly(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Quiet")
    await client.patch(
        f"/api/v1/conversations/{group['id']}/settings", json={"muted_until": "forever"}, headers=bob.headers
    )
    for text in ["one", "@bob two", "three", "@bob four `@bob` in code"]:
        response = await client.post(
            f"/api/v1/conversations/{group['id']}/messages", json={"content": text}, headers=alice.headers
        )
        assert response.status_code == 201
    [view] = (await client.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    assert (view["unread_count"], view["unread_mentions"]) == (4, 2)
    assert view["muted_until"] is not None
    [mine] = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["conversations"]
    assert (mine["unread_count"], mine["unread_mentions"]) == (0, 0)
