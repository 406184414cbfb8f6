"""Cookie mode of the auth endpoints (the web client): the refresh token lives only in an
HttpOnly, SameSite=Strict cookie scoped to ``/api/v1/auth``; JSON mode is untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.usefixtures("backend")

COOKIE = "parley_refresh"


def set_cookie_headers(response: httpx.Response) -> list[str]:
    return [value for name, value in response.headers.multi_items() if name == "set-cookie"]


def attributes(header: str) -> dict[str, str]:
    """``name=value; Path=/x; HttpOnly`` → {"name": value, "path": "/x", "httponly": ""}."""
    parts = [part.strip() for part in header.split(";")]
    name, _, value = parts[0].partition("=")
    result = {name: value}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        result[key.lower()] = val
    return result


def refresh_cookie(response: httpx.Response) -> dict[str, str]:
    found = [attributes(h) for h in set_cookie_headers(response) if h.startswith(COOKIE + "=")]
    assert len(found) == 1, set_cookie_headers(response)
    return found[0]


async def register(client: httpx.AsyncClient, username: str) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": username, "password": TEST_PASSWORD}
    )
    assert response.status_code == 201, response.text


async def cookie_login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": TEST_PASSWORD, "cookie": True},
    )
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
async def https_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="https://parley.test") as http:
        yield http


async def test_login_sets_an_httponly_strict_cookie_and_keeps_it_out_of_the_body(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "cookie1")
    response = await cookie_login(client, "cookie1")
    body = response.json()
    assert "refresh_token" not in body
    assert body["access_token"] and body["user"]["username"] == "cookie1"
    cookie = refresh_cookie(response)
    assert len(cookie[COOKIE]) >= 32
    assert "httponly" in cookie and cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/api/v1/auth"
    assert "secure" not in cookie  # plain http: a Secure cookie would never come back
    assert int(cookie["max-age"]) == 30 * 86400
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.settings(refresh_reuse_grace_seconds=0)  # replays count as theft at once
async def test_refresh_reads_the_cookie_and_rotates_it(client: httpx.AsyncClient) -> None:
    await register(client, "cookie2")
    first = refresh_cookie(await cookie_login(client, "cookie2"))[COOKIE]

    refreshed = await client.post("/api/v1/auth/refresh", json={})
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    second = refresh_cookie(refreshed)[COOKIE]
    assert second != first
    headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200

    # The client jar now holds the rotated cookie: refreshing again works...
    again = await client.post("/api/v1/auth/refresh", json={"cookie": True})
    assert again.status_code == 200, again.text
    # ...and a replay of the first cookie is reuse: the session dies and the cookie goes.
    client.cookies.clear()
    client.cookies.set(COOKIE, first, domain="parley.test", path="/api/v1/auth")
    replay = await client.post("/api/v1/auth/refresh", json={})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "REFRESH_TOKEN_REUSED"
    cleared = refresh_cookie(replay)
    assert cleared[COOKIE] in ("", '""') and int(cleared["max-age"]) == 0


async def test_refresh_without_any_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_REFRESH_TOKEN"
    assert not set_cookie_headers(response)  # nothing to clear
    client.cookies.set(COOKIE, "nope", domain="parley.test", path="/api/v1/auth")
    garbage = await client.post("/api/v1/auth/refresh", json={})
    assert garbage.status_code == 401
    assert refresh_cookie(garbage)["max-age"] == "0"


async def test_logout_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await register(client, "cookie3")
    login = await cookie_login(client, "cookie3")
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    out = await client.post("/api/v1/auth/logout", headers=headers)
    assert out.status_code == 204
    cleared = refresh_cookie(out)
    assert int(cleared["max-age"]) == 0 and cleared["path"] == "/api/v1/auth"
    assert COOKIE not in client.cookies
    response = await client.post("/api/v1/auth/refresh", json={})
    assert response.status_code == 401


async def test_logout_everywhere_clears_the_cookie(client: httpx.AsyncClient) -> None:
    await register(client, "cookie4")
    login = await cookie_login(client, "cookie4")
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    out = await client.post("/api/v1/auth/logout-all", headers=headers)
    assert out.status_code == 204 and refresh_cookie(out)["max-age"] == "0"


async def test_the_cookie_is_secure_over_https(https_client: httpx.AsyncClient) -> None:
    await register(https_client, "cookie5")
    cookie = refresh_cookie(await cookie_login(https_client, "cookie5"))
    assert "secure" in cookie and "httponly" in cookie
    refreshed = await https_client.post("/api/v1/auth/refresh", json={})
    assert refreshed.status_code == 200 and "secure" in refresh_cookie(refreshed)


async def test_json_mode_is_unchanged(client: httpx.AsyncClient) -> None:
    await register(client, "cookie6")
    login = await client.post(
        "/api/v1/auth/login", json={"username": "cookie6", "password": TEST_PASSWORD}
    )
    assert login.status_code == 200 and login.json()["refresh_token"]
    assert not set_cookie_headers(login)
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"]
    assert not set_cookie_headers(refreshed)
    # JSON mode can opt into the cookie on refresh (moving a session into a browser).
    moved = await client.post(
        "/api/v1/auth/refresh",
        json={"refresh_token": refreshed.json()["refresh_token"], "cookie": True},
    )
    assert moved.status_code == 200 and "refresh_token" not in moved.json()
    assert refresh_cookie(moved)[COOKIE]


async def test_a_body_token_wins_over_the_cookie(client: httpx.AsyncClient) -> None:
    await register(client, "cookie7")
    await cookie_login(client, "cookie7")
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"})
    assert response.status_code == 401
    assert not set_cookie_headers(response)  # a bad body token leaves the cookie alone
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 200


async def test_cookie_field_must_be_a_boolean(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        json={"username": "x" * 3, "password": TEST_PASSWORD, "cookie": "please"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "cookie"
