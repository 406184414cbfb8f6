"""Account self-service on SQLite and PostgreSQL (DESIGN §6.3): changing the password
(other sessions revoked), resetting it by a mailed link through a real SMTP server
(aiosmtpd) or an administrator's link (single use, expiry, same answer for unknown
accounts), with bad input and concurrent bursts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from parley.clock import utcnow
from parley.config import Settings
from parley.container import Container
from parley.store.tables.accounts import password_resets
from parley.store.tables.administration import audit_log
from tests.conftest import TEST_PASSWORD, make_user
from tests.support.account_helpers import error_code, give_verified_address, make_staff
from tests.support.notify_helpers import SmtpServer, body_text, smtp_server

pytestmark = pytest.mark.usefixtures("backend")
NEW_PASSWORD = "another fine passphrase"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(
        update={
            "smtp_url": smtp.url,
            "smtp_starttls": "off",
            "smtp_from": "Parley <noreply@parley.example>",
            "public_url": "https://chat.example.org",
        }
    )


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def actions(container: Container) -> list[str]:
    async with container.db.read() as conn:
        rows = await conn.execute(select(audit_log.c.action).order_by(audit_log.c.id))
        return [r.action for r in rows]


async def test_change_password_revokes_other_sessions(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    other = (await login(client, "alice", TEST_PASSWORD)).json()
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_revoked": 1}
    # This session stays; the other is gone, its refresh token too.
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200
    gone = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert gone.status_code == 401 and error_code(gone) == "SESSION_REVOKED"
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refresh.status_code == 401
    assert (await login(client, "alice", TEST_PASSWORD)).status_code == 401
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 200
    assert "password.changed" in await actions(container)


async def test_change_password_bad_input(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    url = "/api/v1/users/me/password"
    wrong = await client.post(
        url, json={"current_password": "not my password", "new_password": NEW_PASSWORD}, headers=alice.headers
    )
    assert wrong.status_code == 403 and error_code(wrong) == "WRONG_PASSWORD"
    for new, field in (("short", "password"), ("password123", "password"), ("x" * 2000, "password")):
        weak = await client.post(
            url, json={"current_password": TEST_PASSWORD, "new_password": new}, headers=alice.headers
        )
        assert weak.status_code == 400, weak.text
        assert weak.json()["error"]["details"][0]["field"] == field
    for body in (
        {"current_password": TEST_PASSWORD},
        {"current_password": TEST_PASSWORD, "new_password": 12},
        {"current_password": "a\u0000b", "new_password": NEW_PASSWORD},
        {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD, "extra": 1},
    ):
        response = await client.post(url, json=body, headers=alice.headers)
        assert response.status_code == 400, (body, response.text)
    assert (await client.post(url, json={"current_password": "x", "new_password": "y"})).status_code == 401


async def test_wrong_current_passwords_are_throttled(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    statuses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/users/me/password",
                json={"current_password": f"guess number {i}", "new_password": NEW_PASSWORD},
                headers=alice.headers,
            )
            for i in range(14)
        )
    )
    codes = [error_code(r) for r in statuses]
    assert set(codes) <= {"WRONG_PASSWORD", "RATE_LIMITED"}
    later = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert later.status_code == 429 and error_code(later) == "RATE_LIMITED"


def reset_token(text: str) -> str:
    found = re.search(r"https://chat\.example\.org/reset-password\?token=([A-Za-z0-9_%-]+)", text)
    assert found, f"no reset link in:\n{text}"
    return parse_qs(urlsplit(found.group(0)).query)["token"][0]


async def test_reset_by_email_single_use(
    client: httpx.AsyncClient, container: Container, smtp: SmtpServer
) -> None:
    alice = await make_user(client, "alice")
    await give_verified_address(container, alice.id, "alice@example.org")
    requested = await client.post("/api/v1/auth/password-reset", json={"username_or_email": "Alice@Example.org"})
    assert requested.status_code == 202 and requested.json() == {"accepted": True}
    [mail] = await smtp.mailbox.wait_for(lambda m: m["To"] == "alice@example.org")
    assert "Reset" in mail["Subject"]
    token = reset_token(body_text(mail))
    assert token in body_text(mail, "html")

    confirm = "/api/v1/auth/password-reset/confirm"
    done = await client.post(confirm, json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    # Every session is gone, the new password works, the link does not work twice.
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 401
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 200
    again = await client.post(confirm, json={"token": token, "new_password": "a third passphrase"})
    assert again.status_code == 400 and error_code(again) == "INVALID_LINK"
    assert "already used" in again.json()["error"]["message"]
    assert {"password.reset_requested", "password.reset"} <= set(await actions(container))


async def test_reset_request_answers_the_same_for_everyone(
    client: httpx.AsyncClient, container: Container, smtp: SmtpServer
) -> None:
    alice = await make_user(client, "alice")
    await make_user(client, "bob")  # no address: nothing can be mailed
    await give_verified_address(container, alice.id, "alice@example.org")
    answers = [
        await client.post("/api/v1/auth/password-reset", json={"username_or_email": who})
        for who in ("alice", "bob", "nobody-here", "nobody@example.org", "  ", "x" * 254)
    ]
    assert {(r.status_code, r.content) for r in answers} == {(202, b'{"accepted":true}')}
    await smtp.mailbox.wait_for(lambda m: m["To"] == "alice@example.org")
    assert [m["To"] for m in smtp.mailbox.messages] == ["alice@example.org"]
    for body in ({"username_or_email": "a\u0000b"}, {"username_or_email": "x" * 255}, {}, {"username": "alice"}):
        refused = await client.post("/api/v1/auth/password-reset", json=body)
        assert refused.status_code == 400, (body, refused.text)


async def test_reset_tokens_expire_and_bad_tokens_are_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    issued = await client.post(f"/api/v1/admin/users/{alice.id}/password-reset-link", headers=admin.headers)
    assert issued.status_code == 200, issued.text
    token = parse_qs(urlsplit(issued.json()["url"]).query)["token"][0]
    assert issued.json()["url"].startswith("https://chat.example.org/reset-password?token=")
    confirm = "/api/v1/auth/password-reset/confirm"
    weak = await client.post(confirm, json={"token": token, "new_password": "alice-password-1"})
    assert weak.status_code == 400 and error_code(weak) == "VALIDATION_ERROR"  # holds the username
    async with container.db.transaction() as conn:
        await conn.execute(update(password_resets).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = await client.post(confirm, json={"token": token, "new_password": NEW_PASSWORD})
    assert expired.status_code == 400 and "expired" in expired.json()["error"]["message"]
    for bad in ("", "nope", "x" * 128, "é" * 10):
        response = await client.post(confirm, json={"token": bad, "new_password": NEW_PASSWORD})
        assert response.status_code == 400 and error_code(response) == "INVALID_LINK", bad
    too_long = await client.post(confirm, json={"token": "x" * 129, "new_password": NEW_PASSWORD})
    assert too_long.status_code == 400


async def test_a_burst_of_one_reset_token_resets_once(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    issued = await client.post(f"/api/v1/admin/users/{alice.id}/password-reset-link", headers=admin.headers)
    token = parse_qs(urlsplit(issued.json()["url"]).query)["token"][0]
    passwords = [f"burst passphrase number {i}" for i in range(8)]
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": p})
            for p in passwords
        )
    )
    winners = [p for p, r in zip(passwords, answers, strict=True) if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in answers]
    assert {error_code(r) for r in answers if r.status_code != 200} == {"INVALID_LINK"}
    assert (await login(client, "alice", winners[0])).status_code == 200
    loser = next(p for p in passwords if p != winners[0])
    assert (await login(client, "alice", loser)).status_code == 401


async def test_a_changed_password_voids_outstanding_reset_links(
    client: httpx.AsyncClient, container: Container
) -> None:
    admin = await make_staff(client, container, "root", "admin")
    alice = await make_user(client, "alice")
    issued = await client.post(f"/api/v1/admin/users/{alice.id}/password-reset-link", headers=admin.headers)
    token = parse_qs(urlsplit(issued.json()["url"]).query)["token"][0]
    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=alice.headers,
    )
    assert changed.status_code == 200
    late = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "yet another passphrase"})
    assert late.status_code == 400 and error_code(late) == "INVALID_LINK"
