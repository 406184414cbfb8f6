"""Threads (DESIGN §6.5) over REST on SQLite and PostgreSQL: replies keep the
conversation's seq, the root's summary changes with a new version, the timeline keeps
thread-only replies out, following (by taking part or by choice) and unread per thread,
the followed-threads listing, and bad input."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import code, open_direct, open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def thread(client: httpx.AsyncClient, user: UserHandle, root_id: str, **params: object) -> dict:
    response = await client.get(f"/api/v1/messages/{root_id}/thread", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def followed(client: httpx.AsyncClient, user: UserHandle, **params: object) -> list[dict]:
    response = await client.get("/api/v1/threads", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["threads"])


async def test_replies_keep_the_seq_and_update_the_root(client: httpx.AsyncClient) -> None:
    alice, bob, carol = await make_user(client, "alice"), await make_user(client, "bob"), await make_user(client, "carol")
    group = await open_group(client, alice, [bob, carol])
    cid = group["id"]
    root = await send(client, alice, cid, "a question")
    assert root["thread"] is None and root["thread_root_id"] is None
    before = root["seq"]

    first = await send(client, bob, cid, "an answer", thread_root_id=root["id"])
    second = await send(client, carol, cid, "another", thread_root_id=root["id"], thread_broadcast=True)
    assert first["thread_root_id"] == root["id"] and first["thread_broadcast"] is False
    assert second["thread_broadcast"] is True
    # Each reply takes the next seq, and the root a new version after it.
    assert first["seq"] == before + 1 and second["seq"] == before + 3

    changes = (
        await client.get(f"/api/v1/conversations/{cid}/changes", params={"after_seq": before}, headers=alice.headers)
    ).json()
    versions = [(m["id"], m["version_seq"]) for m in changes["messages"]]
    assert versions == [(first["id"], before + 1), (second["id"], before + 3), (root["id"], before + 4)]
    assert changes["last_seq"] == before + 4
    summary = changes["messages"][-1]["thread"]
    assert summary["reply_count"] == 2 and summary["last_reply_at"] is not None
    assert summary["participant_ids"] == [bob.id, carol.id]

    # The timeline: the root and the broadcast reply, not the thread-only one.
    history = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=alice.headers)).json()
    shown = [m["id"] for m in history["messages"] if m["kind"] == "text"]
    assert shown == [root["id"], second["id"]]

    page = await thread(client, alice, root["id"])
    assert page["root"]["id"] == root["id"]
    assert [m["id"] for m in page["messages"]] == [first["id"], second["id"]]
    assert page["has_more"] is False
    # Alice wrote the root: she follows; two replies she has not read.
    assert page["state"] == {
        "root_id": root["id"],
        "conversation_id": cid,
        "following": True,
        "last_read_seq": 0,
        "unread_count": 2,
    }
    # Bob took part: follows, and has read up to his own reply.
    bob_state = (await thread(client, bob, root["id"]))["state"]
    assert bob_state["following"] is True and bob_state["last_read_seq"] == first["seq"]
    assert bob_state["unread_count"] == 1

    # The conversation's unread count leaves thread-only replies to the thread.
    mine = (await client.get(f"/api/v1/conversations/{cid}", headers=alice.headers)).json()["conversation"]
    assert mine["unread_count"] == 1  # the broadcast reply only


async def test_pages_of_a_thread(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    root = await send(client, alice, dm["id"], "root")
    replies = [await send(client, bob, dm["id"], f"r{i}", thread_root_id=root["id"]) for i in range(5)]
    latest = await thread(client, alice, root["id"], limit=2)
    assert [m["content"] for m in latest["messages"]] == ["r3", "r4"] and latest["has_more"]
    older = await thread(client, alice, root["id"], limit=2, before_seq=latest["messages"][0]["seq"])
    assert [m["content"] for m in older["messages"]] == ["r1", "r2"]
    newer = await thread(client, alice, root["id"], after_seq=replies[2]["seq"])
    assert [m["content"] for m in newer["messages"]] == ["r3", "r4"] and not newer["has_more"]
    both = await client.get(
        f"/api/v1/messages/{root['id']}/thread",
        params={"after_seq": 1, "before_seq": 9},
        headers=alice.headers,
    )
    assert both.status_code == 400 and code(both) == "VALIDATION_ERROR"


async def test_follow_unfollow_read_and_the_threads_view(client: httpx.AsyncClient) -> None:
    alice, bob, carol = await make_user(client, "alice"), await make_user(client, "bob"), await make_user(client, "carol")
    group = await open_group(client, alice, [bob, carol])
    cid = group["id"]
    quiet = await send(client, alice, cid, "nobody answers")
    busy = await send(client, bob, cid, "discuss")
    assert await followed(client, carol) == []

    # Carol follows by choice, without taking part.
    response = await client.put(f"/api/v1/messages/{busy['id']}/thread/follow", headers=carol.headers)
    assert response.status_code == 200 and response.json()["state"]["following"] is True
    reply = await send(client, alice, cid, "my view", thread_root_id=busy["id"])
    listing = await followed(client, carol)
    assert [t["root"]["id"] for t in listing] == [busy["id"]]
    assert listing[0]["state"]["unread_count"] == 1
    assert listing[0]["root"]["thread"]["reply_count"] == 1

    read = await client.post(
        f"/api/v1/messages/{busy['id']}/thread/read", json={"seq": reply["seq"]}, headers=carol.headers
    )
    assert read.status_code == 200 and read.json()["state"]["unread_count"] == 0
    assert await followed(client, carol, unread_only="true") == []
    # The mark never goes back.
    back = await client.post(f"/api/v1/messages/{busy['id']}/thread/read", json={"seq": 1}, headers=carol.headers)
    assert back.json()["state"]["last_read_seq"] == reply["seq"]

    # Alice and Bob follow by taking part; Alice's listing has it, not her quiet message.
    assert [t["root"]["id"] for t in await followed(client, alice)] == [busy["id"]]
    gone = await client.delete(f"/api/v1/messages/{busy['id']}/thread/follow", headers=alice.headers)
    assert gone.json()["state"]["following"] is False
    assert await followed(client, alice) == []
    # Taking part again follows again.
    await send(client, alice, cid, "one more thing", thread_root_id=busy["id"])
    assert [t["root"]["id"] for t in await followed(client, alice)] == [busy["id"]]
    # A thread followed before any reply comes last; the newest reply first.
    silent = await send(client, bob, cid, "nothing yet")
    await client.put(f"/api/v1/messages/{silent['id']}/thread/follow", headers=alice.headers)
    assert [t["root"]["id"] for t in await followed(client, alice)] == [busy["id"], silent["id"]]
    await send(client, carol, cid, "on the quiet one", thread_root_id=quiet["id"])
    assert [t["root"]["id"] for t in await followed(client, alice)] == [quiet["id"], busy["id"], silent["id"]]

    # Leaving the conversation takes its threads out of the listing.
    leave = await client.delete(f"/api/v1/conversations/{cid}/members/{carol.id}", headers=carol.headers)
    assert leave.status_code == 204
    assert await followed(client, carol) == []
    outsider = await client.get(f"/api/v1/messages/{busy['id']}/thread", headers=carol.headers)
    assert outsider.status_code == 404


async def test_bad_thread_replies_are_refused(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    other = await open_group(client, alice, [], name="Other")
    cid = group["id"]
    root = await send(client, alice, cid, "root")
    reply = await send(client, bob, cid, "reply", thread_root_id=root["id"])
    elsewhere = await send(client, alice, other["id"], "elsewhere")
    system = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=alice.headers)).json()["messages"][0]
    assert system["kind"] == "system"
    doomed = await send(client, alice, cid, "to delete")
    await client.delete(f"/api/v1/messages/{doomed['id']}", headers=alice.headers)

    url = f"/api/v1/conversations/{cid}/messages"
    for target in (reply["id"], elsewhere["id"], system["id"], doomed["id"], "0" * 26):
        response = await client.post(url, json={"content": "x", "thread_root_id": target}, headers=bob.headers)
        assert response.status_code == 400, (target, response.text)
        assert response.json()["error"]["details"][0]["field"] == "thread_root_id"
    for body in (
        {"content": "x", "thread_broadcast": True},
        {"content": "x", "thread_root_id": "not-an-id"},
        {"content": "x", "thread_root_id": root["id"], "thread_broadcast": "yes please"},
        {"content": "x", "thread_root_id": root["id"] + "\x00"},
    ):
        response = await client.post(url, content=json.dumps(body), headers=bob.headers | {"content-type": "application/json"})
        assert response.status_code == 400, (body, response.text)
    # A reply's own thread is not a thread; huge and negative marks are refused.
    nested = await client.get(f"/api/v1/messages/{reply['id']}/thread", headers=alice.headers)
    assert nested.status_code == 400 and code(nested) == "VALIDATION_ERROR"
    for seq in (-1, 2**63, 2**63 - 1, "seven", None):
        response = await client.post(f"/api/v1/messages/{root['id']}/thread/read", json={"seq": seq}, headers=alice.headers)
        assert response.status_code == 400, (seq, response.text)
    for params in ({"limit": 0}, {"limit": 101}, {"before_seq": 2**64}):
        response = await client.get(f"/api/v1/messages/{root['id']}/thread", params=params, headers=alice.headers)
        assert response.status_code == 400, (params, response.text)
    unknown = await client.put(f"/api/v1/messages/{'0' * 26}/thread/follow", headers=alice.headers)
    assert unknown.status_code == 404
    # Nothing half-written: the root still counts one reply.
    assert (await thread(client, alice, root["id"]))["root"]["thread"]["reply_count"] == 1


async def test_a_burst_of_replies_counts_every_one(client: httpx.AsyncClient) -> None:
    """Concurrent replies (group-committed together) each count, each keeps its own seq."""
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    root = await send(client, alice, dm["id"], "root")
    replies = await asyncio.gather(
        *(send(client, (alice, bob)[i % 2], dm["id"], f"r{i}", thread_root_id=root["id"]) for i in range(20))
    )
    page = await thread(client, alice, root["id"])
    assert page["root"]["thread"]["reply_count"] == 20
    assert sorted(m["id"] for m in page["messages"]) == sorted(r["id"] for r in replies)
    changes = (
        await client.get(f"/api/v1/conversations/{dm['id']}/changes", params={"after_seq": 0}, headers=bob.headers)
    ).json()
    seqs = sorted(m["version_seq"] for m in changes["messages"])
    assert len(seqs) == len(set(seqs)) and changes["last_seq"] >= max(seqs)
