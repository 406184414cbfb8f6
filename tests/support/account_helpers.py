"""Helpers for the account and administration tests: TOTP codes as an authenticator app
makes them, a verified address without the mail round trip, a staff user."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
from sqlalchemy import insert, update

from parley.clock import utcnow
from parley.container import Container
from parley.store.tables.accounts import users
from parley.store.tables.notifications import email_addresses
from tests.conftest import UserHandle, make_user


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps_ahead`` 30-second steps later:
    a second use within one step is a replay the server refuses)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


async def enable_2fa(client: httpx.AsyncClient, user: UserHandle) -> tuple[str, list[str]]:
    """Turn 2FA on for ``user``: ``(secret, recovery codes)``."""
    enrolled = await client.post("/api/v1/users/me/2fa", headers=user.headers)
    assert enrolled.status_code == 200, enrolled.text
    secret = enrolled.json()["two_factor"]["secret"]
    confirmed = await client.post(
        "/api/v1/users/me/2fa/confirm", json={"code": totp_code(secret)}, headers=user.headers
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


async def give_verified_address(container: Container, user_id: str, address: str) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(
            insert(email_addresses).values(
                user_id=user_id,
                address=address,
                address_key=address.lower(),
                created_at=utcnow(),
                verified_at=utcnow(),
            )
        )


async def set_role(container: Container, user_id: str, role: str) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(
            update(users).where(users.c.id == user_id).values(role=role, is_admin=role == "admin")
        )


async def make_staff(
    client: httpx.AsyncClient, container: Container, username: str, role: str
) -> UserHandle:
    user = await make_user(client, username)
    await set_role(container, user.id, role)
    return user


def error_code(response: httpx.Response) -> Any:
    return response.json()["error"]["code"]
