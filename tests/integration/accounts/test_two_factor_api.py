"""Two-factor authentication on SQLite and PostgreSQL (DESIGN §6.3): enrolment with a QR
code, confirmation, the two-step login (JSON and cookie mode), single-use recovery codes —
a burst of parallel uses of one code admits exactly one —, replayed and wrong codes,
throttling, disabling, and the audit entries."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select

from parley.client import ParleyClient
from parley.client.errors import ApiError
from parley.container import Container
from parley.store.tables.administration import audit_log
from tests.conftest import TEST_PASSWORD, make_user
from tests.support.account_helpers import enable_2fa, error_code, totp_code

pytestmark = pytest.mark.usefixtures("backend")


async def password_step(client: httpx.AsyncClient, username: str, **extra: object) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD, **extra}
    )


async def mfa_token(client: httpx.AsyncClient, username: str) -> str:
    response = await password_step(client, username)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "TOTP_REQUIRED" and error["expires_in"] == 300
    token: str = error["mfa_token"]
    return token


async def test_enrol_confirm_and_log_in_with_a_code(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    status = await client.get("/api/v1/users/me/2fa", headers=alice.headers)
    assert status.json()["two_factor"] == {"enabled": False, "pending": False, "recovery_codes_left": 0}

    enrolled = await client.post("/api/v1/users/me/2fa", headers=alice.headers)
    assert enrolled.status_code == 200
    data = enrolled.json()["two_factor"]
    uri = urlsplit(data["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp" and unquote(uri.path) == "/Parley:alice"
    assert parse_qs(uri.query)["secret"] == [data["secret"]]
    assert data["qr_svg"].startswith("data:image/svg+xml")
    # Pending: logging in still needs the password only.
    assert (await password_step(client, "alice")).status_code == 200
    pending = await client.get("/api/v1/users/me/2fa", headers=alice.headers)
    assert pending.json()["two_factor"]["pending"] is True

    wrong = await client.post("/api/v1/users/me/2fa/confirm", json={"code": "000000"}, headers=alice.headers)
    assert wrong.status_code == 400 and error_code(wrong) == "INVALID_CODE"
    confirmed = await client.post(
        "/api/v1/users/me/2fa/confirm", json={"code": totp_code(data["secret"])}, headers=alice.headers
    )
    assert confirmed.status_code == 200
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    again = await client.post("/api/v1/users/me/2fa", headers=alice.headers)
    assert again.status_code == 409 and error_code(again) == "TOTP_ALREADY_ENABLED"

    token = await mfa_token(client, "alice")
    # The code of the confirmation cannot be replayed; the next step's code works once.
    replay = await client.post("/api/v1/auth/login/2fa", json={"mfa_token": token, "code": totp_code(data["secret"])})
    assert replay.status_code == 400 and error_code(replay) == "INVALID_CODE"
    nxt = totp_code(data["secret"], steps_ahead=1)
    done = await client.post("/api/v1/auth/login/2fa", json={"mfa_token": token, "code": nxt, "device_name": "phone"})
    assert done.status_code == 200, done.text
    assert done.json()["user"]["username"] == "alice" and "device_token" in done.json()
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {done.json()['access_token']}"})
    assert me.status_code == 200
    twice = await client.post("/api/v1/auth/login/2fa", json={"mfa_token": token, "code": nxt})
    assert twice.status_code == 400 and "already used" in twice.json()["error"]["message"]
    async with container.db.read() as conn:
        logged = [r.action for r in await conn.execute(select(audit_log.c.action))]
    assert {"2fa.enabled", "login", "login.2fa_failed"} <= set(logged)


async def test_cookie_mode_second_step(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    secret, _ = await enable_2fa(client, alice)
    first = await password_step(client, "alice", cookie=True)
    assert first.status_code == 401 and "set-cookie" not in first.headers
    token = first.json()["error"]["mfa_token"]
    done = await client.post(
        "/api/v1/auth/login/2fa",
        json={"mfa_token": token, "code": totp_code(secret, steps_ahead=1), "cookie": True},
    )
    assert done.status_code == 200
    assert "refresh_token" not in done.json() and "parley_refresh=" in done.headers["set-cookie"]


async def test_recovery_codes_work_once_even_in_a_burst(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    _, codes = await enable_2fa(client, alice)
    tokens = [await mfa_token(client, "alice") for _ in range(6)]
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/auth/login/2fa", json={"mfa_token": t, "recovery_code": codes[0]})
            for t in tokens
        )
    )
    assert sorted(r.status_code for r in answers) == [200, 400, 400, 400, 400, 400], [r.text for r in answers]
    assert {error_code(r) for r in answers if r.status_code == 400} == {"INVALID_CODE"}
    # Typed with upper case and without the hyphen: the same code, another one of them.
    typed = codes[1].upper().replace("-", "")
    second = await client.post("/api/v1/auth/login/2fa", json={"mfa_token": tokens[0], "recovery_code": typed})
    assert second.status_code == 200
    status = await client.get("/api/v1/users/me/2fa", headers=alice.headers)
    assert status.json()["two_factor"]["recovery_codes_left"] == 8
    async with container.db.read() as conn:
        used = list(await conn.execute(select(audit_log).where(audit_log.c.action == "2fa.recovery_code_used")))
    assert len(used) == 2


async def test_a_burst_of_one_totp_code_admits_one(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    secret, _ = await enable_2fa(client, alice)
    tokens = [await mfa_token(client, "alice") for _ in range(5)]
    code = totp_code(secret, steps_ahead=1)
    answers = await asyncio.gather(
        *(client.post("/api/v1/auth/login/2fa", json={"mfa_token": t, "code": code}) for t in tokens)
    )
    assert sorted(r.status_code for r in answers) == [200, 400, 400, 400, 400]


async def test_code_guessing_is_throttled(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    secret, _ = await enable_2fa(client, alice)  # one attempt (the confirmation) counted
    token = await mfa_token(client, "alice")
    guesses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/login/2fa", json={"mfa_token": token, "code": f"{i:06d}"})
            for i in range(12)
        )
    )
    codes = [error_code(r) for r in guesses]
    assert codes.count("RATE_LIMITED") >= 3 and set(codes) <= {"INVALID_CODE", "RATE_LIMITED"}
    # Even the right code waits now.
    right = await client.post("/api/v1/auth/login/2fa", json={"mfa_token": token, "code": totp_code(secret, steps_ahead=1)})
    assert right.status_code == 429 and right.json()["error"]["retry_after"] > 0


async def test_bad_second_steps(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    await enable_2fa(client, alice)
    token = await mfa_token(client, "alice")
    url = "/api/v1/auth/login/2fa"
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, base64.urlsafe_b64encode(b"x" * 32).rstrip(b"=").decode()])
    for body, status, code in (
        ({"mfa_token": forged, "code": "123456"}, 401, "INVALID_TOKEN"),
        ({"mfa_token": "not a token", "code": "123456"}, 401, "INVALID_TOKEN"),
        ({"mfa_token": token}, 400, "VALIDATION_ERROR"),  # neither code nor recovery code
        ({"mfa_token": token, "code": "123456", "recovery_code": "abcde-fghij"}, 400, "VALIDATION_ERROR"),
        ({"mfa_token": token, "code": "12345x"}, 400, "INVALID_CODE"),
        ({"mfa_token": token, "code": "9" * 17}, 400, "VALIDATION_ERROR"),
        ({"mfa_token": token, "code": "12\u00003456"}, 400, "VALIDATION_ERROR"),
        ({"mfa_token": token, "recovery_code": "\ud800"}, 400, "VALIDATION_ERROR"),
        ({"mfa_token": token, "code": 123456}, 400, "VALIDATION_ERROR"),
    ):
        # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800".
        response = await client.post(
            url, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        assert (response.status_code, error_code(response)) == (status, code), (body, response.text)
    # An access token is no mfa token, nor the other way round.
    swapped = await client.post(url, json={"mfa_token": alice.access_token, "code": "123456"})
    assert swapped.status_code == 401
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_disable_and_renew(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    url = "/api/v1/users/me/2fa"
    off = await client.request("DELETE", url, json={"code": "123456"}, headers=alice.headers)
    assert off.status_code == 409 and error_code(off) == "TOTP_NOT_ENABLED"
    secret, codes = await enable_2fa(client, alice)
    renewed = await client.post(
        f"{url}/recovery-codes", json={"code": totp_code(secret, steps_ahead=1)}, headers=alice.headers
    )
    assert renewed.status_code == 200
    fresh = renewed.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    old = await client.request("DELETE", url, json={"recovery_code": codes[0]}, headers=alice.headers)
    assert old.status_code == 400 and error_code(old) == "INVALID_CODE"
    disabled = await client.request("DELETE", url, json={"recovery_code": fresh[0]}, headers=alice.headers)
    assert disabled.status_code == 200
    assert disabled.json()["two_factor"]["enabled"] is False
    assert (await password_step(client, "alice")).status_code == 200


async def test_the_sdk_logs_in_with_a_code(app: Any, client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    secret, codes = await enable_2fa(client, alice)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with ParleyClient("http://parley.test", transport=transport, device_name="pytest") as sdk:
        with pytest.raises(ApiError) as refused:
            await sdk.login("alice", TEST_PASSWORD)
        assert refused.value.code == "TOTP_REQUIRED" and refused.value.mfa_token
        user = await sdk.login("alice", TEST_PASSWORD, code=totp_code(secret, steps_ahead=1))
        assert user["username"] == "alice" and (await sdk.me())["id"] == alice.id
        assert await sdk.change_password(TEST_PASSWORD, "a renewed passphrase") >= 1
    async with ParleyClient("http://parley.test", transport=transport) as other:
        mfa = None
        try:
            await other.login("alice", "a renewed passphrase")
        except ApiError as error:
            mfa = error.mfa_token
        assert mfa is not None
        await other.login_second_factor(mfa, recovery_code=codes[0])
        assert (await other.me())["username"] == "alice"
