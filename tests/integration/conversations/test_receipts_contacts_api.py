"""Read / delivered watermarks, unread counts, receipts, and contacts."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_user
from tests.support.chat_helpers import code, open_direct, open_group, send

pytestmark = pytest.mark.usefixtures("backend")


async def test_read_marks_and_unread_counts(client: httpx.AsyncClient) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    group = await open_group(client, alice, [bob, carol])
    gid = group["id"]
    messages = [await send(client, alice, gid, f"m{i}") for i in range(3)]
    last = messages[-1]["seq"]
    me = (await client.get(f"/api/v1/conversations/{gid}", headers=bob.headers)).json()["conversation"]
    assert me["unread_count"] == 3

    marked = (await client.post(f"/api/v1/conversations/{gid}/read", json={"seq": messages[1]["seq"]}, headers=bob.headers)).json()
    assert marked["unread_count"] == 1 and marked["last_delivered_seq"] == messages[1]["seq"]
    backwards = await client.post(f"/api/v1/conversations/{gid}/read", json={"seq": 1}, headers=bob.headers)
    assert backwards.status_code == 200 and backwards.json()["last_read_seq"] == messages[1]["seq"]
    beyond = await client.post(f"/api/v1/conversations/{gid}/read", json={"seq": last + 1}, headers=bob.headers)
    assert beyond.status_code == 400 and code(beyond) == "VALIDATION_ERROR"
    for body in ({"seq": -1}, {"seq": "x"}, {}):
        assert (await client.post(f"/api/v1/conversations/{gid}/read", json=body, headers=bob.headers)).status_code == 400

    await client.post(f"/api/v1/conversations/{gid}/delivered", json={"seq": last}, headers=carol.headers)
    receipts = (await client.get(f"/api/v1/messages/{messages[1]['id']}/receipts", headers=alice.headers)).json()
    assert receipts["recipient_count"] == 2
    assert {u["id"] for u in receipts["read_by"]} == {bob.id}
    assert {u["id"] for u in receipts["delivered_to"]} == {bob.id, carol.id}
    last_receipts = (await client.get(f"/api/v1/messages/{messages[2]['id']}/receipts", headers=alice.headers)).json()
    assert last_receipts["read_count"] == 0 and last_receipts["delivered_count"] == 1


async def test_contacts_flow(client: httpx.AsyncClient) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    asked = await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)
    assert asked.status_code == 201 and asked.json()["contact"]["status"] == "outgoing"
    twice = await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)
    assert twice.status_code == 409
    incoming = (await client.get("/api/v1/contacts", params={"status": "incoming"}, headers=bob.headers)).json()
    assert [c["user"]["id"] for c in incoming["contacts"]] == [alice.id]
    accepted = await client.post(f"/api/v1/contacts/{alice.id}/accept", headers=bob.headers)
    assert accepted.json()["contact"]["status"] == "accepted"
    both = (await client.get("/api/v1/contacts", params={"status": "accepted"}, headers=alice.headers)).json()
    assert [c["user"]["id"] for c in both["contacts"]] == [bob.id]

    # Crossing requests become a contact.
    await client.post("/api/v1/contacts", json={"user_id": carol.id}, headers=bob.headers)
    crossed = await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=carol.headers)
    assert crossed.json()["contact"]["status"] == "accepted"

    declined = await client.post(f"/api/v1/contacts/{carol.id}/decline", headers=alice.headers)
    assert declined.status_code == 404
    assert (await client.delete(f"/api/v1/contacts/{bob.id}", headers=alice.headers)).status_code == 204
    assert (await client.get("/api/v1/contacts", headers=alice.headers)).json()["contacts"] == []

    for body in ({"user_id": alice.id}, {"user_id": 3}, {}):
        response = await client.post("/api/v1/contacts", json=body, headers=alice.headers)
        assert response.status_code == 400, body
    unknown = await client.post("/api/v1/contacts", json={"user_id": "0" * 26}, headers=alice.headers)
    assert unknown.status_code == 404
    malformed = await client.post("/api/v1/contacts", json={"user_id": "nobody"}, headers=alice.headers)
    assert malformed.status_code == 400
    bad_filter = await client.get("/api/v1/contacts", params={"status": "weird"}, headers=alice.headers)
    assert bad_filter.status_code == 400


async def test_blocking_removes_contact_and_blocks_requests(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)
    await client.post(f"/api/v1/contacts/{alice.id}/accept", headers=bob.headers)
    assert (await client.post("/api/v1/blocks", json={"user_id": alice.id}, headers=bob.headers)).status_code == 204
    assert (await client.post("/api/v1/blocks", json={"user_id": alice.id}, headers=bob.headers)).status_code == 204
    assert (await client.get("/api/v1/contacts", headers=alice.headers)).json()["contacts"] == []
    asked = await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)
    assert asked.status_code == 403 and code(asked) == "BLOCKED"
    dm = await client.post("/api/v1/conversations", json={"type": "direct", "user_id": bob.id}, headers=alice.headers)
    assert dm.status_code == 403 and code(dm) == "BLOCKED"
    listed = (await client.get("/api/v1/blocks", headers=bob.headers)).json()["blocks"]
    assert [b["user"]["id"] for b in listed] == [alice.id]
    assert (await client.post("/api/v1/blocks", json={"user_id": bob.id}, headers=bob.headers)).status_code == 400
    assert (await client.delete(f"/api/v1/blocks/{bob.id}", headers=alice.headers)).status_code == 404


@pytest.mark.settings(dm_requires_contact=True)
async def test_dm_policy_requires_contact(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    refused = await client.post("/api/v1/conversations", json={"type": "direct", "user_id": bob.id}, headers=alice.headers)
    assert refused.status_code == 403
    await client.post("/api/v1/contacts", json={"user_id": bob.id}, headers=alice.headers)
    await client.post(f"/api/v1/contacts/{alice.id}/accept", headers=bob.headers)
    assert (await open_direct(client, alice, bob))["type"] == "direct"
