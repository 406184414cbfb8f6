"""Accounts and sessions over HTTP, on both databases: the happy path and every bad input."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, make_user

pytestmark = pytest.mark.usefixtures("backend")


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["request_id"], body
    return str(body["error"]["code"])


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "Alice", "password": TEST_PASSWORD, "display_name": "Alice A."},
    )
    assert response.status_code == 201
    user = response.json()["user"]
    assert user["username"] == "alice" and user["display_name"] == "Alice A."
    assert "password_hash" not in user

    login = await client.post(
        "/api/v1/auth/login", json={"username": "ALICE", "password": TEST_PASSWORD}
    )
    assert login.status_code == 200
    tokens = login.json()
    assert tokens["expires_in"] == 900 and tokens["user"]["id"] == user["id"]
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]

    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["session_id"] == tokens["session_id"]
    new_headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=new_headers)).status_code == 200

    assert (await client.post("/api/v1/auth/logout", headers=new_headers)).status_code == 204
    after = await client.get("/api/v1/users/me", headers=new_headers)
    assert after.status_code == 401 and error_code(after) == "SESSION_REVOKED"
    gone = await client.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert gone.status_code == 401 and error_code(gone) == "INVALID_REFRESH_TOKEN"


@pytest.mark.settings(refresh_reuse_grace_seconds=0)
async def test_reused_refresh_token_revokes_the_session(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert first.status_code == 200
    current = first.json()

    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert reuse.status_code == 401 and error_code(reuse) == "REFRESH_TOKEN_REUSED"

    # The thief's replay killed the whole session: the legitimate new tokens die too.
    headers = {"Authorization": f"Bearer {current['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": current["refresh_token"]}
    )
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ab", "password": TEST_PASSWORD}, "username"),
        ({"username": "a" * 33, "password": TEST_PASSWORD}, "username"),
        ({"username": "zoë", "password": TEST_PASSWORD}, "username"),
        ({"username": "bad name", "password": TEST_PASSWORD}, "username"),
        ({"username": "", "password": TEST_PASSWORD}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "bob", "password": "password123"}, "password"),
        ({"username": "bob", "password": "aaaaaaaaaaaa"}, "password"),
        ({"username": "bobbyby", "password": "bobbyby-rules!"}, "password"),
        ({"username": 42, "password": TEST_PASSWORD}, "username"),
        ({"username": "bob", "password": ["x"]}, "password"),
        ({"password": TEST_PASSWORD}, "username"),
        ({"username": "bob", "password": TEST_PASSWORD, "admin": True}, "admin"),
        ({"username": "bob", "password": TEST_PASSWORD, "display_name": "   "}, "display_name"),
        ({"username": "bob", "password": TEST_PASSWORD, "display_name": "x" * 65}, "display_name"),
        ({"username": "bob", "password": TEST_PASSWORD, "display_name": "a\u0000b"}, "display_name"),
    ],
)
async def test_register_rejects_bad_input(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 400, response.text
    assert error_code(response) == "VALIDATION_ERROR"
    assert field in [d["field"] for d in response.json()["error"]["details"]]


async def test_register_rejects_malformed_bodies(client: httpx.AsyncClient) -> None:
    empty = await client.post(
        "/api/v1/auth/register", content=b"", headers={"content-type": "application/json"}
    )
    assert empty.status_code == 400 and error_code(empty) in {"VALIDATION_ERROR", "INVALID_JSON"}
    garbage = await client.post(
        "/api/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400 and error_code(garbage) == "INVALID_JSON"
    array = await client.post("/api/v1/auth/register", json=["alice", TEST_PASSWORD])
    assert array.status_code == 400 and error_code(array) == "VALIDATION_ERROR"
    form = await client.post(
        "/api/v1/auth/register", data={"username": "alice", "password": TEST_PASSWORD}
    )
    assert form.status_code == 415 and error_code(form) == "UNSUPPORTED_MEDIA_TYPE"


async def test_usernames_are_unique_ignoring_case(client: httpx.AsyncClient) -> None:
    await make_user(client, "carol")
    again = await client.post(
        "/api/v1/auth/register", json={"username": "CaRoL", "password": TEST_PASSWORD}
    )
    assert again.status_code == 409 and error_code(again) == "USERNAME_TAKEN"


async def test_wrong_password_and_unknown_user_look_the_same(client: httpx.AsyncClient) -> None:
    await make_user(client, "dave")
    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "dave", "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "INVALID_CREDENTIALS"
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_failed_logins_are_throttled(client: httpx.AsyncClient) -> None:
    erin = await make_user(client, "erin")
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"username": "erin", "password": "wrong password!"}
        )
        assert response.status_code == 401
    blocked = await client.post(
        "/api/v1/auth/login", json={"username": "erin", "password": erin.password}
    )
    assert blocked.status_code == 429 and error_code(blocked) == "RATE_LIMITED"
    assert int(blocked.headers["retry-after"]) >= 1


async def test_sessions_list_and_revoke(client: httpx.AsyncClient) -> None:
    phone = await make_user(client, "frank")
    laptop_login = await client.post(
        "/api/v1/auth/login",
        json={"username": "frank", "password": phone.password, "device_name": "laptop"},
    )
    laptop = {"Authorization": f"Bearer {laptop_login.json()['access_token']}"}
    listed = await client.get("/api/v1/sessions", headers=phone.headers)
    sessions = listed.json()["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1
    assert "laptop" in [s["device_name"] for s in sessions]

    laptop_id = laptop_login.json()["session_id"]
    revoked = await client.delete(f"/api/v1/sessions/{laptop_id}", headers=phone.headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=laptop)).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=phone.headers)).status_code == 200
    twice = await client.delete(f"/api/v1/sessions/{laptop_id}", headers=phone.headers)
    assert twice.status_code == 404


async def test_cannot_revoke_someone_elses_session(client: httpx.AsyncClient) -> None:
    gina = await make_user(client, "gina")
    hank = await make_user(client, "hank")
    response = await client.delete(f"/api/v1/sessions/{hank.session_id}", headers=gina.headers)
    assert response.status_code == 404
    assert (await client.get("/api/v1/users/me", headers=hank.headers)).status_code == 200


async def test_logout_everywhere(client: httpx.AsyncClient) -> None:
    one = await make_user(client, "ivan")
    other = await client.post(
        "/api/v1/auth/login", json={"username": "ivan", "password": one.password}
    )
    other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}
    assert (await client.post("/api/v1/auth/logout-all", headers=one.headers)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=one.headers)).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=other_headers)).status_code == 401


async def test_garbage_refresh_tokens(client: httpx.AsyncClient) -> None:
    for token in ["", "nope", "x" * 5000, "😀"]:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401, token
        assert error_code(response) == "INVALID_REFRESH_TOKEN"


async def test_refresh_race_within_grace_is_not_theft(client: httpx.AsyncClient) -> None:
    """Two tabs refreshing with the same token at once both succeed; the session lives."""
    user = await make_user(client, "racer")
    first, second = await asyncio.gather(
        client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
        client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["refresh_token"] != second.json()["refresh_token"]
    headers = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
