"""Profile versions: every change of what others see of a user (name, picture) raises the
user's ``profile_version``, and every user or member object carries it, so a client can keep
the newest profile whichever answer or event reaches it last (the web client's store does)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import UserHandle, make_user
from tests.support.chat_helpers import open_direct, send

pytestmark = pytest.mark.usefixtures("backend")


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


async def versions_seen_by(
    client: httpx.AsyncClient, viewer: UserHandle, subject: UserHandle, conversation_id: str
) -> set[int]:
    """``subject``'s profile_version in every place ``viewer`` reads it from."""
    user = (await client.get(f"/api/v1/users/{subject.id}", headers=viewer.headers)).json()["user"]
    members = (await client.get(f"/api/v1/conversations/{conversation_id}/members", headers=viewer.headers)).json()
    listed = (await client.get("/api/v1/conversations", headers=viewer.headers)).json()
    member_lists: list[list[dict[str, Any]]] = [members["members"]] + [
        c["members"] for c in listed["conversations"] if c["id"] == conversation_id
    ]
    found = {user["profile_version"]}
    for member_list in member_lists:
        found |= {m["profile_version"] for m in member_list if m["user_id"] == subject.id}
    return found


async def test_each_visible_change_raises_the_version_everywhere(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    conversation_id = (await open_direct(client, alice, bob))["id"]
    assert await versions_seen_by(client, bob, alice, conversation_id) == {0}

    renamed = await client.patch("/api/v1/users/me", json={"display_name": "Alice Two"}, headers=alice.headers)
    assert renamed.json()["user"]["profile_version"] == 1
    assert await versions_seen_by(client, bob, alice, conversation_id) == {1}

    pictured = await client.put(
        "/api/v1/users/me/avatar", files={"file": ("me.jpg", jpeg(), "image/jpeg")}, headers=alice.headers
    )
    assert pictured.status_code == 200, pictured.text
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["user"]["profile_version"] == 2
    removed = await client.delete("/api/v1/users/me/avatar", headers=alice.headers)
    assert removed.status_code in (200, 204), removed.text
    assert await versions_seen_by(client, bob, alice, conversation_id) == {3}

    # Search results name their senders with the same version.
    await send(client, alice, conversation_id, "versioned needle")
    found = (await client.get("/api/v1/search", params={"q": "needle"}, headers=bob.headers)).json()
    senders = [r["sender"] for r in found["results"] if r.get("sender")]
    assert senders and all(s["profile_version"] == 3 for s in senders), found

    # What does not change the profile leaves the version alone; the other user is untouched.
    await client.patch("/api/v1/users/me", json={}, headers=alice.headers)
    assert await versions_seen_by(client, bob, alice, conversation_id) == {3}
    assert await versions_seen_by(client, alice, bob, conversation_id) == {0}
    # The version is the server's count: a client cannot set it.
    forged = await client.patch("/api/v1/users/me", json={"profile_version": 99}, headers=alice.headers)
    assert forged.status_code == 400
    assert await versions_seen_by(client, bob, alice, conversation_id) == {3}


async def test_a_burst_of_renames_counts_every_one(client: httpx.AsyncClient) -> None:
    """Parallel renames: the increment is done in SQL, so none is lost; the last answer
    holds the highest version (on PostgreSQL the rows lock, on SQLite writes are serial)."""
    alice = await make_user(client, "alice")
    answers = await asyncio.gather(*(
        client.patch("/api/v1/users/me", json={"display_name": f"Alice {n}"}, headers=alice.headers)
        for n in range(12)
    ))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    me = (await client.get("/api/v1/users/me", headers=alice.headers)).json()["user"]
    assert me["profile_version"] == 12
    assert sorted(a.json()["user"]["profile_version"] for a in answers)[-1] == 12
