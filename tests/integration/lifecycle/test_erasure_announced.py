"""An erased user's profile change reaches everyone who knew them at once, as a rename does:
their name becomes "Deleted user" and their picture goes on every screen without a reload,
with a profile_version above any earlier one (so no older answer can bring the name back)."""

from __future__ import annotations

import httpx
import pytest

from parley.container import Container
from tests.conftest import TEST_PASSWORD, make_user
from tests.support.chat_helpers import open_direct, open_group
from tests.support.lifecycle_helpers import EventLog

pytestmark = pytest.mark.usefixtures("backend")


async def test_everyone_who_knew_them_sees_the_erased_profile(
    client: httpx.AsyncClient, container: Container
) -> None:
    leaving = await make_user(client, "leaving")
    friend, teammate, contact, stranger = [
        await make_user(client, name) for name in ("friend", "teammate", "contact", "stranger")
    ]
    direct = await open_direct(client, leaving, friend)
    await open_group(client, teammate, [leaving], name="Team")
    requested = await client.post("/api/v1/contacts", json={"user_id": contact.id}, headers=leaving.headers)
    assert requested.status_code in (200, 201), requested.text
    accepted = await client.post(f"/api/v1/contacts/{leaving.id}/accept", headers=contact.headers)
    assert accepted.status_code in (200, 201), accepted.text
    renamed = await client.patch(
        "/api/v1/users/me", json={"display_name": "Leaving Soon"}, headers=leaving.headers
    )
    before = renamed.json()["user"]["profile_version"]
    log = EventLog(container)

    erased = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": TEST_PASSWORD}, headers=leaving.headers
    )
    assert erased.status_code in (200, 202, 204), erased.text

    event = await log.wait_for(lambda e: e.type == "user.updated" and e.data["user"]["id"] == leaving.id)
    profile = event.data["user"]
    assert profile["display_name"] == "Deleted user"
    assert profile["avatar"] is None
    assert profile["profile_version"] > before
    assert set(event.user_ids) == {friend.id, teammate.id, contact.id}
    assert stranger.id not in event.user_ids
    # The direct conversation keeps them as its other side, at the same version.
    listed = await client.get(f"/api/v1/conversations/{direct['id']}/members", headers=friend.headers)
    [member] = [m for m in listed.json()["members"] if m["user_id"] == leaving.id]
    assert (member["display_name"], member["profile_version"]) == ("Deleted user", profile["profile_version"])
