"""Pins and forwarding (DESIGN §6.5) over REST on SQLite and PostgreSQL: the pin is a new
version of the message plus a system line, listed newest first and gone with the message;
a forward is a new message in each target with ``forwarded_from``, access checked on both
sides, files shared (the blobs outlive the original while a forward uses them)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import select

from parley.container import Container
from parley.services.attachment_records import record_from_row
from parley.services.pins import MAX_PINS
from parley.store.tables.media import attachments
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.attachment_helpers import png_bytes, upload_ok
from tests.support.chat_helpers import code, open_direct, open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def test_pin_unpin_and_list(client: httpx.AsyncClient) -> None:
    alice, bob, carol = await make_user(client, "alice"), await make_user(client, "bob"), await make_user(client, "carol")
    group = await open_group(client, alice, [bob])
    cid = group["id"]
    first = await send(client, alice, cid, "remember this")
    second = await send(client, bob, cid, "and this")

    pinned = await client.put(f"/api/v1/messages/{first['id']}/pin", headers=bob.headers)
    assert pinned.status_code == 200, pinned.text
    message = pinned.json()["message"]
    assert message["pinned"]["by"] == bob.id and message["version_seq"] == second["seq"] + 1
    again = await client.put(f"/api/v1/messages/{first['id']}/pin", headers=bob.headers)
    assert again.json()["message"]["version_seq"] == message["version_seq"]  # idempotent
    await client.put(f"/api/v1/messages/{second['id']}/pin", headers=alice.headers)

    listing = await client.get(f"/api/v1/conversations/{cid}/pins", headers=alice.headers)
    assert [m["id"] for m in listing.json()["pins"]] == [second["id"], first["id"]]
    # The system lines, after each new version, in the timeline and the changes feed.
    changes = (
        await client.get(f"/api/v1/conversations/{cid}/changes", params={"after_seq": second["seq"]}, headers=alice.headers)
    ).json()["messages"]
    lines = [m["system_event"] for m in changes if m["kind"] == "system"]
    assert lines == [
        {"type": "message.pinned", "actor_id": bob.id, "message_id": first["id"]},
        {"type": "message.pinned", "actor_id": alice.id, "message_id": second["id"]},
    ]

    unpinned = await client.delete(f"/api/v1/messages/{first['id']}/pin", headers=alice.headers)
    assert unpinned.status_code == 200 and unpinned.json()["message"]["pinned"] is None
    # Deleting a pinned message unpins it.
    await client.delete(f"/api/v1/messages/{second['id']}", headers=bob.headers)
    assert (await client.get(f"/api/v1/conversations/{cid}/pins", headers=alice.headers)).json()["pins"] == []

    # Outsiders and bad input.
    for response in (
        await client.put(f"/api/v1/messages/{first['id']}/pin", headers=carol.headers),
        await client.get(f"/api/v1/conversations/{cid}/pins", headers=carol.headers),
        await client.put(f"/api/v1/messages/{'0' * 26}/pin", headers=alice.headers),
        await client.put("/api/v1/messages/not-an-id/pin", headers=alice.headers),
    ):
        assert response.status_code == 404, response.text
    deleted = await client.put(f"/api/v1/messages/{second['id']}/pin", headers=alice.headers)
    assert deleted.status_code == 409 and code(deleted) == "MESSAGE_DELETED"
    system = next(m for m in changes if m["kind"] == "system")
    refused = await client.put(f"/api/v1/messages/{system['id']}/pin", headers=alice.headers)
    assert refused.status_code == 400 and code(refused) == "VALIDATION_ERROR"


async def test_the_pin_limit_holds_under_a_burst(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    sent = [await send(client, alice, dm["id"], f"m{i}") for i in range(MAX_PINS + 5)]
    answers = await asyncio.gather(
        *(client.put(f"/api/v1/messages/{m['id']}/pin", headers=(alice, bob)[i % 2].headers) for i, m in enumerate(sent))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == MAX_PINS and statuses.count(409) == 5, statuses
    assert all(code(a) == "PIN_LIMIT" for a in answers if a.status_code == 409)
    listing = await client.get(f"/api/v1/conversations/{dm['id']}/pins", headers=bob.headers)
    assert len(listing.json()["pins"]) == MAX_PINS


async def test_forward_to_several_conversations(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob, carol = await make_user(client, "alice"), await make_user(client, "bob"), await make_user(client, "carol")
    source = await open_group(client, alice, [bob], name="Source")
    team = await open_group(client, bob, [carol], name="Team")
    dm = await open_direct(client, bob, carol)
    picture = await upload_ok(client, alice, png_bytes(), "red.png", "image/png")
    original = await send(client, alice, source["id"], "look at **this**", attachment_ids=[picture["id"]])

    response = await client.post(
        f"/api/v1/messages/{original['id']}/forward",
        json={"conversation_ids": [team["id"], dm["id"]]},
        headers=bob.headers,
    )
    assert response.status_code == 201, response.text
    copies = response.json()["messages"]
    assert [m["conversation_id"] for m in copies] == [team["id"], dm["id"]]
    for copy in copies:
        assert copy["sender_id"] == bob.id and copy["content"] == "look at **this**"
        assert copy["forwarded_from"] == {
            "message_id": original["id"],
            "conversation_id": source["id"],
            "sender_id": alice.id,
            "created_at": original["created_at"],
        }
        [shared] = copy["attachments"]
        assert shared["id"] != picture["id"] and shared["name"] == "red.png"
    # Carol (not in the source) can read the shared file through her conversation.
    shared_url = copies[0]["attachments"][0]["variants"]["original"]["url"]
    download = await client.get(shared_url, headers=carol.headers)
    assert download.status_code == 200 and download.content == png_bytes()

    # Forwarding a forward keeps the first attribution.
    onward = await client.post(
        f"/api/v1/messages/{copies[0]['id']}/forward", json={"conversation_ids": [dm["id"]]}, headers=carol.headers
    )
    assert onward.json()["messages"][0]["forwarded_from"]["message_id"] == original["id"]

    # The blobs are shared: deleting the original keeps them while a forward uses them.
    async with container.db.read() as conn:
        row = (await conn.execute(select(attachments).where(attachments.c.id == picture["id"]))).one()
    keys = record_from_row(row).blob_keys()
    await client.delete(f"/api/v1/messages/{original['id']}", headers=alice.headers)
    await container.attachments.sweep()
    assert all([await container.blobs.exists(k) for k in keys])
    assert (await client.get(shared_url, headers=carol.headers)).status_code == 200
    for copy in [*copies, onward.json()["messages"][0]]:
        deleted = await client.delete(f"/api/v1/messages/{copy['id']}", headers=bob.headers if copy in copies else carol.headers)
        assert deleted.status_code == 200, deleted.text
    await container.attachments.sweep()
    assert not any([await container.blobs.exists(k) for k in keys])


async def test_forward_checks_both_ends_and_bad_input(client: httpx.AsyncClient) -> None:
    alice, bob, carol = await make_user(client, "alice"), await make_user(client, "bob"), await make_user(client, "carol")
    source = await open_group(client, alice, [bob], name="Source")
    theirs = await open_group(client, carol, [], name="Carol's")
    mine = await open_group(client, bob, [], name="Bob's")
    original = await send(client, alice, source["id"], "secret")
    url = f"/api/v1/messages/{original['id']}/forward"

    # Not a member of the source: the message does not exist for Carol.
    outsider = await client.post(url, json={"conversation_ids": [theirs["id"]]}, headers=carol.headers)
    assert outsider.status_code == 404
    # Not a member of a target: nothing is sent anywhere.
    foreign = await client.post(url, json={"conversation_ids": [mine["id"], theirs["id"]]}, headers=bob.headers)
    assert foreign.status_code == 404
    history = (await client.get(f"/api/v1/conversations/{mine['id']}/messages", headers=bob.headers)).json()
    assert [m for m in history["messages"] if m["kind"] == "text"] == []

    for body in (
        {"conversation_ids": []},
        {"conversation_ids": [mine["id"], mine["id"]]},
        {"conversation_ids": [mine["id"]] * 11},
        {"conversation_ids": ["nope"]},
        {"conversation_ids": [mine["id"] + "\x00"]},
        {"conversation_ids": mine["id"]},
        {"conversation_ids": [mine["id"]], "comment": "extra"},
        {},
    ):
        response = await client.post(url, content=json.dumps(body), headers=bob.headers | {"content-type": "application/json"})
        assert response.status_code == 400, (body, response.text)
    await client.delete(f"/api/v1/messages/{original['id']}", headers=alice.headers)
    gone = await client.post(url, json={"conversation_ids": [mine["id"]]}, headers=bob.headers)
    assert gone.status_code == 409 and code(gone) == "MESSAGE_DELETED"


async def test_concurrent_pins_of_one_message_change_it_once(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    message = await send(client, alice, dm["id"], "pin me")
    answers = await asyncio.gather(
        *(client.put(f"/api/v1/messages/{message['id']}/pin", headers=(alice, bob)[i % 2].headers) for i in range(20))
    )
    assert {a.status_code for a in answers} == {200}
    changes = (
        await client.get(f"/api/v1/conversations/{dm['id']}/changes", params={"after_seq": message["seq"]}, headers=bob.headers)
    ).json()["messages"]
    assert [m["kind"] for m in changes] == ["text", "system"]  # one new version, one line
