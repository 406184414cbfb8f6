"""Password hashing (Argon2id via argon2-cffi) and the password policy (DESIGN §3)."""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from parley.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 10
# Argon2 ignores nothing, but hashing megabytes of "password" only burns CPU.
MAX_PASSWORD_LENGTH = 1024


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("parley.security").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def check_password_policy(password: str, *, username: str = "") -> None:
    """Raise ``ValidationFailed`` (field ``password``) for a password Parley refuses."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed.field(
            "password", f"must be at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed.field(
            "password", f"must be at most {MAX_PASSWORD_LENGTH} characters"
        )
    lowered = password.lower()
    if lowered in common_passwords() or len(set(password)) <= 2:
        raise ValidationFailed.field("password", "is too common; choose another")
    if username and username.lower() in lowered:
        raise ValidationFailed.field("password", "must not contain the username")


class PasswordHasher:
    """Argon2id hashing off the event loop: each hash costs tens of milliseconds of CPU."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._argon2 = _Argon2(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the user does not exist, so that a wrong username takes as
        # long as a wrong password and response times do not reveal which accounts exist.
        self._dummy_hash = self._argon2.hash("parley-dummy-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
