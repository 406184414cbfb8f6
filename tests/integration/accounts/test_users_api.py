"""Profiles, lookup and search of users."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_user

pytestmark = pytest.mark.usefixtures("backend")


async def test_profile_patch_and_lookup(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    patched = await client.patch(
        "/api/v1/users/me", json={"display_name": "Alice 🌸 Liddell"}, headers=alice.headers
    )
    assert patched.status_code == 200
    assert patched.json()["user"]["display_name"] == "Alice 🌸 Liddell"
    seen = await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)
    assert seen.json()["user"]["display_name"] == "Alice 🌸 Liddell"
    assert "is_admin" not in seen.json()["user"]
    missing = await client.get("/api/v1/users/01NOSUCHUSER0000000000000", headers=bob.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


async def test_profile_patch_bad_input(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    for body in ({"display_name": ""}, {"display_name": 7}, {"username": "x"}):
        response = await client.patch("/api/v1/users/me", json=body, headers=alice.headers)
        assert response.status_code == 400, body


async def test_search_users(client: httpx.AsyncClient) -> None:
    me = await make_user(client, "searcher")
    for name in ("marta", "martin", "amartya", "zed"):
        await make_user(client, name)
    found = await client.get("/api/v1/users", params={"q": "mart"}, headers=me.headers)
    names = [u["username"] for u in found.json()["users"]]
    assert names[:2] == ["marta", "martin"] and "amartya" in names and "zed" not in names
    # LIKE wildcards are literal characters, not patterns.
    wildcard = await client.get("/api/v1/users", params={"q": "%"}, headers=me.headers)
    assert wildcard.json()["users"] == []
    too_long = await client.get("/api/v1/users", params={"q": "x" * 101}, headers=me.headers)
    assert too_long.status_code == 400
    bad_limit = await client.get("/api/v1/users", params={"limit": "lots"}, headers=me.headers)
    assert bad_limit.status_code == 400


async def test_users_need_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/users", params={"q": "a"})).status_code == 401
