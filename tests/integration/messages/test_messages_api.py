"""Messages over HTTP on both databases: send, idempotency, edit, delete, reactions,
history pages and the changes feed — and every bad input."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import code, open_direct, open_group, send

pytestmark = pytest.mark.usefixtures("backend")


async def pair(client: httpx.AsyncClient) -> tuple[UserHandle, UserHandle, str]:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    return alice, bob, dm["id"]


async def test_send_is_idempotent_by_client_msg_id(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    body = {"content": "hello", "client_msg_id": "phone-1"}
    first = await client.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=alice.headers)
    again = await client.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=alice.headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    different = await client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"content": "other text", "client_msg_id": "phone-1"},
        headers=alice.headers,
    )
    assert different.status_code == 409 and code(different) == "IDEMPOTENCY_CONFLICT"
    # Bob may use the same client id: it is scoped to the sender.
    bobs = await client.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=bob.headers)
    assert bobs.status_code == 201
    history = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=alice.headers)).json()
    assert [m["seq"] for m in history["messages"]] == [1, 2]


async def test_send_bad_input(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    other = await open_group(client, alice, [bob], name="other")
    elsewhere = await send(client, alice, other["id"], "in another conversation")
    cases = [
        ({"content": ""}, "content"),
        ({"content": "   \n "}, "content"),
        ({"content": "x" * 10_001}, "content"),
        ({"content": 5}, "content"),
        ({"content": "ok", "reply_to_id": elsewhere["id"]}, "reply_to_id"),
        ({"content": "ok", "reply_to_id": "nope"}, "reply_to_id"),
        ({"content": "ok", "client_msg_id": "has spaces"}, "client_msg_id"),
        ({"content": "ok", "client_msg_id": "x" * 65}, "client_msg_id"),
        ({"content": "ok", "extra": 1}, "extra"),
        ({"content": "nul\u0000byte"}, "content"),
    ]
    for body, field in cases:
        response = await client.post(f"/api/v1/conversations/{cid}/messages", json=body, headers=alice.headers)
        assert response.status_code == 400, (body, response.text)
        assert field in [d["field"] for d in response.json()["error"]["details"]], body
    history = (await client.get(f"/api/v1/conversations/{cid}/messages", headers=alice.headers)).json()
    assert history["messages"] == []  # nothing partial was written
    exactly = await send(client, alice, cid, "y" * 10_000)
    assert len(exactly["content"]) == 10_000


async def test_reply_and_mentions(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    original = await send(client, alice, cid, "what time?")
    reply = await send(
        client, bob, cid, "@Alice at 5 — cc @nobody, not `@bob` nor mail@alice", reply_to_id=original["id"]
    )
    assert reply["reply_to"] == {
        "id": original["id"], "sender_id": alice.id, "content": "what time?", "deleted": False
    }
    assert reply["mentions"] == [alice.id]


async def test_edit_and_delete(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    message = await send(client, alice, cid, "helo")
    not_mine = await client.patch(f"/api/v1/messages/{message['id']}", json={"content": "x"}, headers=bob.headers)
    assert not_mine.status_code == 403
    empty = await client.patch(f"/api/v1/messages/{message['id']}", json={"content": " "}, headers=alice.headers)
    assert empty.status_code == 400
    edited = (
        await client.patch(f"/api/v1/messages/{message['id']}", json={"content": "hello"}, headers=alice.headers)
    ).json()["message"]
    assert edited["content"] == "hello" and edited["edited_at"] and edited["version_seq"] == 2
    assert edited["seq"] == 1

    cannot = await client.delete(f"/api/v1/messages/{message['id']}", headers=bob.headers)
    assert cannot.status_code == 403  # no admins in a DM
    tomb = (await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)).json()["message"]
    assert tomb["deleted"] and tomb["content"] == "" and tomb["version_seq"] == 3
    again = await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    assert again.status_code == 200  # deleting twice is harmless
    edit_dead = await client.patch(f"/api/v1/messages/{message['id']}", json={"content": "zombie"}, headers=alice.headers)
    assert edit_dead.status_code == 409 and code(edit_dead) == "MESSAGE_DELETED"


async def test_group_admin_can_delete_others_messages(client: httpx.AsyncClient) -> None:
    owner, member = await make_user(client, "owner"), await make_user(client, "member")
    group = await open_group(client, owner, [member])
    message = await send(client, member, group["id"], "spam")
    assert (await client.delete(f"/api/v1/messages/{message['id']}", headers=owner.headers)).status_code == 200
    mine = await send(client, owner, group["id"], "announcement")
    assert (await client.delete(f"/api/v1/messages/{mine['id']}", headers=member.headers)).status_code == 403


async def test_reactions(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    message = await send(client, alice, cid, "ship it?")
    url = f"/api/v1/messages/{message['id']}/reactions"
    for user in (alice, bob, bob):  # the second PUT by bob is idempotent
        response = await client.put(f"{url}/👍", headers=user.headers)
        assert response.status_code == 200
    await client.put(f"{url}/👍🏽", headers=bob.headers)
    await client.put(f"{url}/🇫🇷", headers=bob.headers)
    await client.put(f"{url}/👨‍👩‍👧", headers=alice.headers)
    await client.put(f"{url}/1️⃣", headers=alice.headers)
    state = (await client.get(f"/api/v1/messages/{message['id']}", headers=alice.headers)).json()["message"]
    counts = {r["emoji"]: r["count"] for r in state["reactions"]}
    assert counts == {"👍": 2, "👍🏽": 1, "🇫🇷": 1, "👨‍👩‍👧": 1, "1️⃣": 1}
    removed = (await client.delete(f"{url}/👍", headers=alice.headers)).json()["message"]
    assert {r["emoji"]: r["user_ids"] for r in removed["reactions"]}["👍"] == [bob.id]

    for bad in ("a", "ok", "<b>", "👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍", "1", "%20", "👍" * 8, "👍👎", "%EF%BF%BD", "%F0%9F%91"):
        response = await client.put(f"{url}/{bad}", headers=alice.headers)
        assert response.status_code == 400, bad
        assert code(response) == "VALIDATION_ERROR"
        assert response.json()["error"]["details"][0]["field"] == "emoji"
    # "❤" and "❤️" are the same emoji, so the same reaction (stored fully qualified).
    await client.put(f"{url}/\u2764", headers=alice.headers)
    both = (await client.put(f"{url}/\u2764\ufe0f", headers=bob.headers)).json()["message"]
    assert {r["emoji"]: r["count"] for r in both["reactions"]}["\u2764\ufe0f"] == 2
    assert "\u2764" not in {r["emoji"] for r in both["reactions"]}
    await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    dead = await client.put(f"{url}/👍", headers=bob.headers)
    assert dead.status_code == 409 and code(dead) == "MESSAGE_DELETED"


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_history_pages(client: httpx.AsyncClient, container: object) -> None:
    alice, bob, cid = await pair(client)
    from parley.container import Container

    assert isinstance(container, Container)
    for i in range(1, 31):
        await container.messages.send(alice.id, cid, f"m{i}")
    base = f"/api/v1/conversations/{cid}/messages"
    latest = (await client.get(base, params={"limit": 10}, headers=bob.headers)).json()
    assert [m["seq"] for m in latest["messages"]] == list(range(21, 31)) and latest["has_more"]
    older = (await client.get(base, params={"limit": 10, "before_seq": 21}, headers=bob.headers)).json()
    assert [m["seq"] for m in older["messages"]] == list(range(11, 21))
    oldest = (await client.get(base, params={"limit": 20, "before_seq": 11}, headers=bob.headers)).json()
    assert [m["seq"] for m in oldest["messages"]] == list(range(1, 11)) and not oldest["has_more"]
    after = (await client.get(base, params={"limit": 5, "after_seq": 27}, headers=bob.headers)).json()
    assert [m["seq"] for m in after["messages"]] == [28, 29, 30] and not after["has_more"]
    target = older["messages"][5]  # seq 16
    around = (await client.get(base, params={"limit": 5, "around_id": target["id"]}, headers=bob.headers)).json()
    assert [m["seq"] for m in around["messages"]] == [14, 15, 16, 17, 18]
    assert around["has_more_before"] and around["has_more_after"]

    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"before_seq": -1},
        {"before_seq": 5, "after_seq": 1},
    ):
        response = await client.get(base, params=params, headers=bob.headers)
        assert response.status_code == 400, params
    malformed = await client.get(base, params={"around_id": "nope"}, headers=bob.headers)
    assert malformed.status_code == 400 and malformed.json()["error"]["details"][0]["field"] == "around_id"
    missing = await client.get(base, params={"around_id": "0" * 26}, headers=bob.headers)
    assert missing.status_code == 404


async def test_changes_feed_carries_every_kind_of_change(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    first = await send(client, alice, cid, "first")
    second = await send(client, alice, cid, "second")
    third = await send(client, alice, cid, "third")
    checkpoint = 3
    await client.patch(f"/api/v1/messages/{first['id']}", json={"content": "first!"}, headers=alice.headers)
    await client.delete(f"/api/v1/messages/{second['id']}", headers=alice.headers)
    await client.put(f"/api/v1/messages/{third['id']}/reactions/🎉", headers=bob.headers)
    fourth = await send(client, bob, cid, "fourth")

    feed = (
        await client.get(f"/api/v1/conversations/{cid}/changes", params={"after_seq": checkpoint}, headers=bob.headers)
    ).json()
    assert feed["last_seq"] == 7 and not feed["has_more"] and feed["next_after_seq"] == 7
    by_id = {m["id"]: m for m in feed["messages"]}
    assert [m["version_seq"] for m in feed["messages"]] == [4, 5, 6, 7]
    assert by_id[first["id"]]["content"] == "first!"
    assert by_id[second["id"]]["deleted"] and by_id[second["id"]]["content"] == ""
    assert by_id[third["id"]]["reactions"][0]["emoji"] == "🎉"
    assert by_id[fourth["id"]]["seq"] == 7

    paged = (
        await client.get(
            f"/api/v1/conversations/{cid}/changes", params={"after_seq": 0, "limit": 2}, headers=bob.headers
        )
    ).json()
    assert paged["has_more"] and paged["next_after_seq"] == paged["messages"][-1]["version_seq"]
    nothing = (
        await client.get(f"/api/v1/conversations/{cid}/changes", params={"after_seq": 7}, headers=bob.headers)
    ).json()
    assert nothing["messages"] == [] and nothing["last_seq"] == 7
    bad = await client.get(f"/api/v1/conversations/{cid}/changes", params={"after_seq": -1}, headers=bob.headers)
    assert bad.status_code == 400
    missing = await client.get(f"/api/v1/conversations/{cid}/changes", headers=bob.headers)
    assert missing.status_code == 400


async def test_blocks_stop_direct_messages(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    carol = await make_user(client, "carol")
    assert (await client.post("/api/v1/blocks", json={"user_id": alice.id}, headers=bob.headers)).status_code == 204
    blocked = await client.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=alice.headers)
    assert blocked.status_code == 403 and code(blocked) == "BLOCKED"
    reverse = await client.post(f"/api/v1/conversations/{cid}/messages", json={"content": "hi"}, headers=bob.headers)
    assert reverse.status_code == 403
    # The blocked user is kept out of groups the blocker creates.
    group = await client.post(
        "/api/v1/conversations",
        json={"type": "group", "name": "no alice", "member_ids": [alice.id, carol.id]},
        headers=bob.headers,
    )
    assert group.status_code == 403 and code(group) == "BLOCKED"
    made = await open_group(client, bob, [carol])
    sneak = await client.post(
        f"/api/v1/conversations/{made['id']}/members", json={"user_ids": [alice.id]}, headers=bob.headers
    )
    assert sneak.status_code == 403
    # After unblocking, messages flow again.
    assert (await client.delete(f"/api/v1/blocks/{alice.id}", headers=bob.headers)).status_code == 204
    assert (await send(client, alice, cid, "friends again"))["content"] == "friends again"


# A refill slow enough that a loaded machine cannot earn a token back during the loop.
@pytest.mark.settings(message_rate_per_second=0.01, message_burst=20)
async def test_send_rate_limit(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await pair(client)
    statuses = []
    for i in range(25):
        response = await client.post(
            f"/api/v1/conversations/{cid}/messages", json={"content": f"flood {i}"}, headers=alice.headers
        )
        statuses.append(response.status_code)
    assert statuses[:20] == [201] * 20
    assert statuses[20:] == [429] * 5
    limited = next(r for r in [response] if r.status_code == 429)
    assert code(limited) == "RATE_LIMITED" and limited.json()["error"]["retry_after"] > 0
    assert int(limited.headers["retry-after"]) >= 1
