"""Conversations and membership over HTTP, on both databases."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_user
from tests.support.chat_helpers import code, open_direct, open_group, send

pytestmark = pytest.mark.usefixtures("backend")


async def test_direct_is_one_per_pair(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    first = await client.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": bob.id}, headers=alice.headers
    )
    assert first.status_code == 201
    again = await client.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": alice.id}, headers=bob.headers
    )
    assert again.status_code == 200
    assert again.json()["conversation"]["id"] == first.json()["conversation"]["id"]
    assert first.json()["conversation"]["member_count"] == 2


async def test_self_dm_is_notes_to_self(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    notes = await open_direct(client, alice, alice)
    assert notes["member_count"] == 1
    message = await send(client, alice, notes["id"], "remember the milk")
    assert message["seq"] == 1


async def test_direct_with_unknown_user(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    response = await client.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": "0" * 26}, headers=alice.headers
    )
    assert response.status_code == 404
    malformed = await client.post(
        "/api/v1/conversations", json={"type": "direct", "user_id": "nobody"}, headers=alice.headers
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["details"][0]["field"] == "direct.user_id"


async def test_list_sorted_by_activity_with_unread_and_preview(client: httpx.AsyncClient) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    dm = await open_direct(client, alice, bob)
    group = await open_group(client, alice, [bob, carol])
    await send(client, alice, dm["id"], "one")
    await send(client, alice, dm["id"], "two")
    listed = (await client.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    assert [c["id"] for c in listed] == [dm["id"], group["id"]]
    assert listed[0]["unread_count"] == 2 and listed[0]["last_message"]["content"] == "two"
    assert listed[0]["last_seq"] == 2
    assert listed[1]["unread_count"] == 0  # system messages are not unread
    mine = (await client.get("/api/v1/conversations", headers=alice.headers)).json()
    assert mine["conversations"][0]["unread_count"] == 0  # own messages are not unread


async def test_group_lifecycle(client: httpx.AsyncClient) -> None:
    owner, admin, member, extra = [await make_user(client, n) for n in ("olive", "adam", "mia", "eddie")]
    group = await open_group(client, owner, [admin, member], name="Launch", slug="launch")
    gid = group["id"]
    assert group["role"] == "owner" and group["slug"] == "launch"
    by_slug = await client.get("/api/v1/conversations/by-slug/launch", headers=member.headers)
    assert by_slug.json()["conversation"]["id"] == gid

    promote = await client.patch(
        f"/api/v1/conversations/{gid}/members/{admin.id}", json={"role": "admin"}, headers=owner.headers
    )
    assert promote.status_code == 204
    renamed = await client.patch(
        f"/api/v1/conversations/{gid}", json={"name": "Launch 🚀", "topic": "ship it"}, headers=admin.headers
    )
    assert renamed.status_code == 200 and renamed.json()["conversation"]["name"] == "Launch 🚀"
    denied = await client.patch(f"/api/v1/conversations/{gid}", json={"name": "x"}, headers=member.headers)
    assert denied.status_code == 403 and code(denied) == "FORBIDDEN"

    added = await client.post(
        f"/api/v1/conversations/{gid}/members", json={"user_ids": [extra.id]}, headers=admin.headers
    )
    assert added.json() == {"added": [extra.id]}
    assert (await client.get(f"/api/v1/conversations/{gid}", headers=extra.headers)).status_code == 200

    removed = await client.delete(f"/api/v1/conversations/{gid}/members/{extra.id}", headers=admin.headers)
    assert removed.status_code == 204
    gone = await client.get(f"/api/v1/conversations/{gid}", headers=extra.headers)
    assert gone.status_code == 404
    history = await client.get(f"/api/v1/conversations/{gid}/messages", headers=extra.headers)
    assert history.status_code == 404

    # The admin cannot remove the owner; the owner leaving hands ownership to the admin.
    assert (
        await client.delete(f"/api/v1/conversations/{gid}/members/{owner.id}", headers=admin.headers)
    ).status_code == 403
    assert (
        await client.delete(f"/api/v1/conversations/{gid}/members/{owner.id}", headers=owner.headers)
    ).status_code == 204
    members = (await client.get(f"/api/v1/conversations/{gid}/members", headers=admin.headers)).json()
    roles = {m["user_id"]: m["role"] for m in members["members"]}
    assert roles == {admin.id: "owner", member.id: "member"}

    # Every change is in the timeline as a system message, in seq order.
    history = (await client.get(f"/api/v1/conversations/{gid}/messages", headers=admin.headers)).json()
    kinds = [m["system_event"]["type"] for m in history["messages"] if m["kind"] == "system"]
    assert kinds == [
        "conversation.created",
        "member.role",
        "conversation.updated",
        "member.added",
        "member.removed",
        "member.left",
    ]
    seqs = [m["seq"] for m in history["messages"]]
    assert seqs == list(range(1, len(seqs) + 1))

    deleted = await client.delete(f"/api/v1/conversations/{gid}", headers=admin.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/conversations/{gid}", headers=member.headers)).status_code == 404


async def test_group_bad_input(client: httpx.AsyncClient, container: object) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    cases = [
        ({"type": "group", "name": ""}, 400),
        ({"type": "group", "name": "x" * 101}, 400),
        ({"type": "group", "name": "ok", "slug": "Bad Slug!"}, 400),
        ({"type": "group", "name": "ok", "member_ids": ["nobody"]}, 400),
        ({"type": "channel", "name": "ok"}, 400),
        ({"name": "ok"}, 400),
        ({"type": "direct"}, 400),
        ({"type": "group", "name": "ok", "member_ids": "everyone"}, 400),
    ]
    for body, status in cases:
        response = await client.post("/api/v1/conversations", json=body, headers=alice.headers)
        assert response.status_code == status, (body, response.text)
    await open_group(client, alice, [bob], slug="taken")
    clash = await client.post(
        "/api/v1/conversations", json={"type": "group", "name": "x", "slug": "taken"}, headers=bob.headers
    )
    assert clash.status_code == 409 and code(clash) == "SLUG_TAKEN"


async def test_group_size_limit(client: httpx.AsyncClient, container: object) -> None:
    from parley.container import Container

    assert isinstance(container, Container)
    container.conversations._limits = container.conversations._limits.__class__(3, False)
    users = [await make_user(client, f"user{i}") for i in range(4)]
    too_many = await client.post(
        "/api/v1/conversations",
        json={"type": "group", "name": "big", "member_ids": [u.id for u in users[1:]]},
        headers=users[0].headers,
    )
    assert too_many.status_code == 400
    group = await open_group(client, users[0], users[1:3])
    full = await client.post(
        f"/api/v1/conversations/{group['id']}/members", json={"user_ids": [users[3].id]}, headers=users[0].headers
    )
    assert full.status_code == 409 and code(full) == "GROUP_FULL"


async def test_non_members_get_404_everywhere(client: httpx.AsyncClient) -> None:
    alice, bob, eve = [await make_user(client, n) for n in ("alice", "bob", "eve")]
    dm = await open_direct(client, alice, bob)
    message = await send(client, alice, dm["id"], "private")
    cid, mid = dm["id"], message["id"]
    probes = [
        ("GET", f"/api/v1/conversations/{cid}", None),
        ("PATCH", f"/api/v1/conversations/{cid}", {"name": "x"}),
        ("DELETE", f"/api/v1/conversations/{cid}", None),
        ("GET", f"/api/v1/conversations/{cid}/members", None),
        ("POST", f"/api/v1/conversations/{cid}/members", {"user_ids": [eve.id]}),
        ("GET", f"/api/v1/conversations/{cid}/messages", None),
        ("GET", f"/api/v1/conversations/{cid}/changes?after_seq=0", None),
        ("POST", f"/api/v1/conversations/{cid}/messages", {"content": "let me in"}),
        ("POST", f"/api/v1/conversations/{cid}/read", {"seq": 1}),
        ("GET", f"/api/v1/messages/{mid}", None),
        ("PATCH", f"/api/v1/messages/{mid}", {"content": "hacked"}),
        ("DELETE", f"/api/v1/messages/{mid}", None),
        ("PUT", f"/api/v1/messages/{mid}/reactions/👍", None),
        ("DELETE", f"/api/v1/messages/{mid}/reactions/👍", None),
        ("GET", f"/api/v1/messages/{mid}/receipts", None),
    ]
    for method, path, body in probes:
        response = await client.request(method, path, json=body, headers=eve.headers)
        assert response.status_code == 404, (method, path, response.status_code)
        assert code(response) == "NOT_FOUND"
    # Nothing changed.
    history = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=bob.headers)).json()
    assert [m["content"] for m in history["messages"]] == ["private"]
