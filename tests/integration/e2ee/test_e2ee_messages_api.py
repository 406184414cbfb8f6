"""Encrypted messages on the wire (DESIGN §6.1): ciphertext + envelope instead of content,
refused where they do not belong, stored, ordered, resumed, deduplicated and edited like
plain ones, never indexed; opaque encrypted uploads; the key backup — SQLite and
PostgreSQL, bad input and a concurrent burst included."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest

from parley.e2ee import formats
from tests.conftest import UserHandle, make_user
from tests.support.chat_helpers import code, open_group, post_message, send
from tests.support.e2ee_helpers import sealed

pytestmark = pytest.mark.usefixtures("backend")

async def world(client: httpx.AsyncClient) -> tuple[UserHandle, UserHandle, dict[str, Any], dict[str, Any]]:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    secret = await open_group(client, alice, [bob], name="secret", encrypted=True)
    plain = await open_group(client, alice, [bob], name="plain")
    return alice, bob, secret, plain


async def test_encrypted_messages_are_stored_served_and_deduplicated(client: httpx.AsyncClient) -> None:
    alice, bob, secret, _ = await world(client)
    body = sealed() | {"client_msg_id": "c1"}
    first = await post_message(client, alice, secret["id"], **body)
    assert first.status_code == 201, first.text
    message = first.json()["message"]
    assert message["content"] == "" and message["ciphertext"] == body["ciphertext"]
    assert message["e2ee"] == body["e2ee"] and message["mentions"] == []
    again = await post_message(client, alice, secret["id"], **body)
    assert again.status_code == 200 and again.json()["message"]["id"] == message["id"]
    other = await post_message(client, alice, secret["id"], **sealed(), client_msg_id="c1")
    assert other.status_code == 409 and code(other) == "IDEMPOTENCY_CONFLICT"
    history = (await client.get(f"/api/v1/conversations/{secret['id']}/messages", headers=bob.headers)).json()
    assert history["messages"][-1]["ciphertext"] == body["ciphertext"]
    changes = (
        await client.get(f"/api/v1/conversations/{secret['id']}/changes", params={"after_seq": 0}, headers=bob.headers)
    ).json()
    assert [m["id"] for m in changes["messages"] if m["kind"] == "text"] == [message["id"]]
    listed = (await client.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    mine = next(c for c in listed if c["id"] == secret["id"])
    assert mine["unread_count"] == 1 and mine["last_message"]["content"] == ""
    reply = await post_message(client, bob, secret["id"], **sealed(1), reply_to_id=message["id"])
    assert reply.status_code == 201 and reply.json()["message"]["reply_to"]["content"] == ""


async def test_plaintext_and_ciphertext_only_where_they_belong(client: httpx.AsyncClient) -> None:
    alice, bob, secret, plain = await world(client)
    refused = await post_message(client, alice, secret["id"], content="in the clear")
    assert refused.status_code == 409 and code(refused) == "ENCRYPTION_REQUIRED"
    wrong = await post_message(client, alice, plain["id"], **sealed())
    assert wrong.status_code == 409 and code(wrong) == "NOT_ENCRYPTED"
    # Switched on: from the next message on, plaintext is refused.
    await send(client, alice, plain["id"], "before the switch")
    switched = await client.patch(f"/api/v1/conversations/{plain['id']}", json={"encrypted": True}, headers=alice.headers)
    assert switched.status_code == 200
    assert code(await post_message(client, bob, plain["id"], content="after")) == "ENCRYPTION_REQUIRED"
    assert (await post_message(client, bob, plain["id"], **sealed())).status_code == 201


async def test_malformed_envelopes_are_refused_with_their_field(client: httpx.AsyncClient) -> None:
    alice, _, secret, _ = await world(client)
    good = sealed()
    envelope = good["e2ee"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ciphertext": good["ciphertext"]}, "e2ee"),
        ({"e2ee": envelope}, "ciphertext"),
        (good | {"content": "both"}, "content"),
        (good | {"ciphertext": "not base64 !"}, "ciphertext"),
        (good | {"ciphertext": formats.b64encode(b"short")}, "ciphertext"),
        (good | {"ciphertext": "A" * 60_004}, "ciphertext"),
        (good | {"ciphertext": "QQ="}, "ciphertext"),
        (good | {"ciphertext": "QR"}, "ciphertext"),  # non-canonical trailing bits
        (good | {"ciphertext": "ab\x00cd"}, "ciphertext"),
        (good | {"e2ee": "a string"}, "e2ee"),
        (good | {"e2ee": envelope | {"v": 2}}, "e2ee.v"),
        (good | {"e2ee": envelope | {"v": True}}, "e2ee.v"),
        (good | {"e2ee": envelope | {"alg": "rot13"}}, "e2ee.alg"),
        (good | {"e2ee": envelope | {"index": -1}}, "e2ee.index"),
        (good | {"e2ee": envelope | {"index": 2**32}}, "e2ee.index"),
        (good | {"e2ee": envelope | {"index": 2**80}}, "e2ee.index"),
        (good | {"e2ee": envelope | {"index": "3"}}, "e2ee.index"),
        (good | {"e2ee": envelope | {"session_id": "A" * 42}}, "e2ee.session_id"),
        (good | {"e2ee": envelope | {"sender_device_id": "lap top"}}, "e2ee.sender_device_id"),
        (good | {"e2ee": envelope | {"extra": 1}}, "e2ee.extra"),
        (good | {"e2ee": {k: v for k, v in envelope.items() if k != "index"}}, "e2ee.index"),
    ]
    for body, field in cases:
        response = await post_message(client, alice, secret["id"], **body)
        assert response.status_code == 400, (field, response.text)
        assert response.json()["error"]["details"][0]["field"] == field, (field, response.text)
    history = (await client.get(f"/api/v1/conversations/{secret['id']}/messages", headers=alice.headers)).json()
    assert [m for m in history["messages"] if m["kind"] == "text"] == []  # nothing half-written


async def test_a_burst_of_encrypted_sends_keeps_strict_order(client: httpx.AsyncClient) -> None:
    alice, bob, secret, _ = await world(client)
    results = await asyncio.gather(
        *(
            post_message(client, alice if i % 2 else bob, secret["id"], **sealed(i), client_msg_id=f"b{i}")
            for i in range(40)
        )
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results if r.status_code != 201]
    seqs = sorted(r.json()["message"]["seq"] for r in results)
    assert seqs == list(range(seqs[0], seqs[0] + 40))


async def test_edits_and_deletes_of_encrypted_messages(client: httpx.AsyncClient) -> None:
    alice, bob, secret, plain = await world(client)
    message = (await post_message(client, alice, secret["id"], **sealed())).json()["message"]
    url = f"/api/v1/messages/{message['id']}"
    update = sealed(1)
    edited = await client.patch(url, json=update, headers=alice.headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["message"]["ciphertext"] == update["ciphertext"]
    assert edited.json()["message"]["version_seq"] > message["version_seq"]
    assert code(await client.patch(url, json={"content": "clear"}, headers=alice.headers)) == "ENCRYPTION_REQUIRED"
    assert (await client.patch(url, json=sealed(), headers=bob.headers)).status_code == 403
    assert (await client.patch(url, json={"ciphertext": "QUFB"}, headers=alice.headers)).status_code == 400
    plain_message = await send(client, alice, plain["id"], "clear")
    refused = await client.patch(f"/api/v1/messages/{plain_message['id']}", json=sealed(), headers=alice.headers)
    assert code(refused) == "NOT_ENCRYPTED"
    # Once the conversation is encrypted, an old plain message takes no new plaintext, but
    # may be replaced by ciphertext.
    await client.patch(f"/api/v1/conversations/{plain['id']}", json={"encrypted": True}, headers=alice.headers)
    old_url = f"/api/v1/messages/{plain_message['id']}"
    assert code(await client.patch(old_url, json={"content": "new clear"}, headers=alice.headers)) == "ENCRYPTION_REQUIRED"
    converted = await client.patch(old_url, json=sealed(), headers=alice.headers)
    assert converted.status_code == 200 and converted.json()["message"]["content"] == ""
    # Reactions stay metadata.
    assert (await client.put(f"{url}/reactions/👍", headers=bob.headers)).status_code == 200
    deleted = await client.delete(url, headers=alice.headers)
    tombstone = deleted.json()["message"]
    assert tombstone["deleted"] and tombstone["ciphertext"] is None and tombstone["e2ee"] is None


async def test_search_never_finds_encrypted_messages(client: httpx.AsyncClient) -> None:
    alice, bob, secret, plain = await world(client)
    body = sealed()
    await post_message(client, alice, secret["id"], **body)
    await send(client, alice, plain["id"], "findable words here")
    fragment = body["ciphertext"][:12]
    for q in (fragment, "findable"):
        hits = (await client.get("/api/v1/search", params={"q": q}, headers=bob.headers)).json()
        assert all(hit["message"]["conversation_id"] != secret["id"] for hit in hits["results"]), hits
    found = (await client.get("/api/v1/search", params={"q": "findable"}, headers=bob.headers)).json()
    assert [h["message"]["conversation_id"] for h in found["results"]] == [plain["id"]]


@pytest.mark.settings(max_attachment_bytes=4096)
async def test_encrypted_uploads_are_opaque_and_kept_apart(client: httpx.AsyncClient) -> None:
    alice, bob, secret, plain = await world(client)
    png_looking = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    upload = await client.post(
        "/api/v1/uploads",
        params={"encrypted": "true"},
        files={"file": ("holiday.png", png_looking, "image/png")},
        headers=alice.headers,
    )
    assert upload.status_code == 201, upload.text
    attachment = upload.json()["attachment"]
    assert attachment["encrypted"] is True and attachment["content_type"] == "application/octet-stream"
    assert attachment["name"] == "encrypted.bin" and list(attachment["variants"]) == ["original"]
    clear = await client.post(
        "/api/v1/uploads", files={"file": ("notes.txt", b"notes\n", "text/plain")}, headers=alice.headers
    )
    clear_id = clear.json()["attachment"]["id"]
    refused = await post_message(client, alice, secret["id"], **sealed(), attachment_ids=[clear_id])
    assert code(refused) == "ENCRYPTION_REQUIRED"
    wrong = await post_message(client, alice, plain["id"], content="x", attachment_ids=[attachment["id"]])
    assert code(wrong) == "NOT_ENCRYPTED"
    sent = await post_message(client, alice, secret["id"], **sealed(), attachment_ids=[attachment["id"]])
    assert sent.status_code == 201 and sent.json()["message"]["attachments"][0]["encrypted"] is True
    blob = await client.get(f"/api/v1/attachments/{attachment['id']}/original", headers=bob.headers)
    assert blob.status_code == 200 and blob.content == png_looking
    too_big = await client.post(
        "/api/v1/uploads", params={"encrypted": "true"}, files={"file": ("x", os.urandom(5000))}, headers=alice.headers
    )
    assert too_big.status_code == 413


async def test_key_backup(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    assert (await client.get("/api/v1/key-backup", headers=alice.headers)).status_code == 404
    first = await client.put("/api/v1/key-backup", json={"data": "blob-1", "if_version": 0}, headers=alice.headers)
    assert first.status_code == 200 and first.json()["backup"]["version"] == 1
    stale = await client.put("/api/v1/key-backup", json={"data": "blob-x", "if_version": 0}, headers=alice.headers)
    assert stale.status_code == 409 and code(stale) == "BACKUP_VERSION_MISMATCH"
    second = await client.put("/api/v1/key-backup", json={"data": "blob-2", "if_version": 1}, headers=alice.headers)
    assert second.json()["backup"]["version"] == 2
    got = (await client.get("/api/v1/key-backup", headers=alice.headers)).json()["backup"]
    assert got["data"] == "blob-2" and got["version"] == 2
    assert (await client.get("/api/v1/key-backup", headers=bob.headers)).status_code == 404
    for body in ({"data": ""}, {"data": "x" * 900_001}, {"data": "a\x00b"}, {"data": "ok", "if_version": 2**70}):
        assert (await client.put("/api/v1/key-backup", json=body, headers=alice.headers)).status_code in (400, 413)
    # Concurrent first backups: exactly one wins.
    results = await asyncio.gather(
        *(client.put("/api/v1/key-backup", json={"data": f"b{i}", "if_version": 0}, headers=bob.headers) for i in range(8))
    )
    assert sorted(r.status_code for r in results) == [200] + [409] * 7
    assert (await client.delete("/api/v1/key-backup", headers=alice.headers)).status_code == 204
    assert (await client.get("/api/v1/key-backup", headers=alice.headers)).status_code == 404
