"""Public groups and invite links (DESIGN §6.3) over REST on SQLite and PostgreSQL: the
directory lists public groups only, joining is idempotent and announced like an addition,
invite links expire, are revoked and are bounded by their use limit — a limit of one under
a burst of twenty parallel joins admits exactly one — and bad input is refused."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from parley.clock import utcnow
from parley.container import Container
from parley.store.tables.conversations import conversation_invites
from tests.conftest import NO_SEND_LIMITS, make_user
from tests.support.chat_helpers import code, open_direct, open_group

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def test_directory_and_joining_public_groups(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    public = await open_group(client, alice, [], name="Open Source 100%", visibility="public", topic="all welcome")
    private = await open_group(client, alice, [], name="Secret")
    assert public["visibility"] == "public" and private["visibility"] == "private"

    listing = (await client.get("/api/v1/conversations/directory", headers=bob.headers)).json()
    assert [(g["id"], g["joined"], g["member_count"]) for g in listing["conversations"]] == [(public["id"], False, 1)]
    # q matches name or topic, case-insensitively; LIKE wildcards are literal.
    for q, found in (("open", 1), ("WELCOME", 1), ("100%", 1), ("%", 1), ("_", 0), ("secret", 0)):
        response = await client.get("/api/v1/conversations/directory", params={"q": q}, headers=bob.headers)
        assert len(response.json()["conversations"]) == found, q

    joined = await client.post(f"/api/v1/conversations/{public['id']}/join", headers=bob.headers)
    assert joined.status_code == 201 and joined.json()["conversation"]["member_count"] == 2
    again = await client.post(f"/api/v1/conversations/{public['id']}/join", headers=bob.headers)
    assert again.status_code == 200
    history = (await client.get(f"/api/v1/conversations/{public['id']}/messages", headers=bob.headers)).json()
    events = [m["system_event"] for m in history["messages"] if m["kind"] == "system"]
    assert events[-1] == {"type": "member.joined", "actor_id": bob.id, "user_ids": [bob.id], "via": "directory"}
    listing = (await client.get("/api/v1/conversations/directory", headers=bob.headers)).json()
    assert listing["conversations"][0]["joined"] is True

    # A private group, a DM and nothing at all look the same: not found.
    dm = await open_direct(client, alice, bob)
    carol = await make_user(client, "carol")
    for target in (private["id"], dm["id"], "0" * 26):
        response = await client.post(f"/api/v1/conversations/{target}/join", headers=carol.headers)
        assert response.status_code == 404, response.text

    # Going private takes it out of the directory (admins only).
    refused = await client.patch(f"/api/v1/conversations/{public['id']}", json={"visibility": "private"}, headers=bob.headers)
    assert refused.status_code == 403
    changed = await client.patch(f"/api/v1/conversations/{public['id']}", json={"visibility": "private"}, headers=alice.headers)
    assert changed.status_code == 200 and changed.json()["conversation"]["visibility"] == "private"
    assert (await client.get("/api/v1/conversations/directory", headers=carol.headers)).json()["conversations"] == []
    for body in ({"visibility": "hidden"}, {"visibility": 1}):
        response = await client.patch(f"/api/v1/conversations/{public['id']}", json=body, headers=alice.headers)
        assert response.status_code == 400
    for params in ({"limit": 0}, {"limit": 101}, {"q": "x" * 201}, {"q": "a\x00b"}):
        response = await client.get("/api/v1/conversations/directory", params=params, headers=bob.headers)
        assert response.status_code == 400, params


async def test_invite_links(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob, carol, dave = (
        await make_user(client, "alice"),
        await make_user(client, "bob"),
        await make_user(client, "carol"),
        await make_user(client, "dave"),
    )
    group = await open_group(client, alice, [bob], name="Private team")
    cid = group["id"]
    created = await client.post(f"/api/v1/conversations/{cid}/invites", json={"max_uses": 2}, headers=alice.headers)
    assert created.status_code == 201, created.text
    invite = created.json()["invite"]
    assert invite["url"] == f"http://parley.test/invite/{invite['token']}"
    assert invite["max_uses"] == 2 and invite["uses"] == 0 and invite["expires_at"] is not None
    token = invite["token"]

    preview = await client.get(f"/api/v1/invites/{token}", headers=carol.headers)
    assert preview.status_code == 200
    assert preview.json() | {"expires_at": None} == {
        "conversation": {"id": cid, "name": "Private team", "topic": "", "member_count": 2},
        "joined": False,
        "usable": True,
        "expires_at": None,
    }
    joined = await client.post(f"/api/v1/invites/{token}/join", headers=carol.headers)
    assert joined.status_code == 201 and joined.json()["conversation"]["id"] == cid
    # A member joining again takes no use.
    assert (await client.post(f"/api/v1/invites/{token}/join", headers=carol.headers)).status_code == 200
    assert (await client.post(f"/api/v1/invites/{token}/join", headers=bob.headers)).status_code == 200
    listing = (await client.get(f"/api/v1/conversations/{cid}/invites", headers=alice.headers)).json()["invites"]
    assert [(i["id"], i["uses"], i["usable"]) for i in listing] == [(invite["id"], 1, True)]
    assert "token" not in listing[0] and "url" not in listing[0]

    # Members who are not admins cannot manage links; outsiders see nothing.
    assert (await client.post(f"/api/v1/conversations/{cid}/invites", json={}, headers=bob.headers)).status_code == 403
    assert (await client.get(f"/api/v1/conversations/{cid}/invites", headers=dave.headers)).status_code == 404

    # Revoked: the link no longer admits anyone.
    revoked = await client.delete(f"/api/v1/conversations/{cid}/invites/{invite['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    refused = await client.post(f"/api/v1/invites/{token}/join", headers=dave.headers)
    assert refused.status_code == 409 and code(refused) == "INVITE_UNUSABLE"
    assert (await client.get(f"/api/v1/invites/{token}", headers=dave.headers)).json()["usable"] is False
    again = await client.delete(f"/api/v1/conversations/{cid}/invites/{invite['id']}", headers=alice.headers)
    assert again.status_code == 204

    # Expired: the same.
    later = (await client.post(f"/api/v1/conversations/{cid}/invites", json={"expires_in_seconds": None}, headers=alice.headers)).json()["invite"]
    assert later["expires_at"] is None
    async with container.db.transaction() as conn:
        await conn.execute(
            update(conversation_invites)
            .where(conversation_invites.c.id == later["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await client.post(f"/api/v1/invites/{later['token']}/join", headers=dave.headers)
    assert expired.status_code == 409 and code(expired) == "INVITE_UNUSABLE"

    # Bad input.
    for body in (
        {"max_uses": 0},
        {"max_uses": 2**70},
        {"expires_in_seconds": 5},
        {"expires_in_seconds": 10**12},
        {"expires_in_seconds": "soon"},
        {"max_uses": 1, "note": "x"},
    ):
        response = await client.post(f"/api/v1/conversations/{cid}/invites", content=json.dumps(body), headers=alice.headers | {"content-type": "application/json"})
        assert response.status_code == 400, (body, response.text)
    for bad in ("nope", "x" * 65, "a.b", token[:-1] + ("A" if token[-1] != "A" else "B")):
        assert (await client.get(f"/api/v1/invites/{bad}", headers=dave.headers)).status_code == 404
        assert (await client.post(f"/api/v1/invites/{bad}/join", headers=dave.headers)).status_code == 404
    unknown = await client.delete(f"/api/v1/conversations/{cid}/invites/{'0' * 26}", headers=alice.headers)
    assert unknown.status_code == 404
    dm = await open_direct(client, alice, bob)
    assert (await client.post(f"/api/v1/conversations/{dm['id']}/invites", json={}, headers=alice.headers)).status_code == 403


async def test_a_use_limit_of_one_admits_exactly_one_of_twenty(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    people = [await make_user(client, f"joiner{i}") for i in range(20)]
    group = await open_group(client, alice, [], name="Exclusive")
    invite = (
        await client.post(f"/api/v1/conversations/{group['id']}/invites", json={"max_uses": 1}, headers=alice.headers)
    ).json()["invite"]
    answers = await asyncio.gather(
        *(client.post(f"/api/v1/invites/{invite['token']}/join", headers=p.headers) for p in people)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 19, statuses
    assert all(code(a) == "INVITE_UNUSABLE" for a in answers if a.status_code == 409)
    members = (await client.get(f"/api/v1/conversations/{group['id']}/members", headers=alice.headers)).json()["members"]
    assert len(members) == 2
    listing = (await client.get(f"/api/v1/conversations/{group['id']}/invites", headers=alice.headers)).json()["invites"]
    assert listing[0]["uses"] == 1 and listing[0]["usable"] is False


@pytest.mark.settings(max_group_members=3, **NO_SEND_LIMITS)
async def test_joins_respect_the_member_limit(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    people = [await make_user(client, f"joiner{i}") for i in range(6)]
    group = await open_group(client, alice, [], name="Small", visibility="public")
    answers = await asyncio.gather(
        *(client.post(f"/api/v1/conversations/{group['id']}/join", headers=p.headers) for p in people)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 201, 409, 409, 409, 409], statuses
    assert {code(a) for a in answers if a.status_code == 409} == {"GROUP_FULL"}


async def test_the_sdk_speaks_it_too(tmp_path, database_url: str, free_port: int) -> None:  # type: ignore[no-untyped-def]
    """The Python SDK's calls for threads, pins, forwards, the directory and invites,
    against a real server."""
    from tests.support.gateway_helpers import new_user, running_server

    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        try:
            group = await alice.create_group("SDK", [])
            invite = await alice.create_invite(group["id"], max_uses=1)
            assert invite["url"].endswith("/invite/" + invite["token"])
            assert (await bob.join_by_invite(invite["token"]))["id"] == group["id"]
            root = await alice.send_message(group["id"], "root")
            await bob.send_message(group["id"], "reply", thread_root_id=root["id"])
            page = await alice.thread(root["id"])
            assert [m["content"] for m in page["messages"]] == ["reply"]
            assert [t["root"]["id"] for t in await bob.followed_threads()] == [root["id"]]
            assert (await bob.follow_thread(root["id"], False))["following"] is False
            assert (await alice.pin(root["id"]))["pinned"]["by"] == alice.user_id
            assert [m["id"] for m in await bob.pins(group["id"])] == [root["id"]]
            public = await alice.create_group("Open", [])
            await alice.request("PATCH", f"/api/v1/conversations/{public['id']}", json={"visibility": "public"})
            assert [g["id"] for g in await bob.directory()] == [public["id"]]
            assert (await bob.join(public["id"]))["id"] == public["id"]
            [copy] = await bob.forward(root["id"], [public["id"]])
            assert copy["forwarded_from"]["message_id"] == root["id"]
        finally:
            await alice.aclose()
            await bob.aclose()
