"""Access tokens: every forged, expired or malformed token is refused with its code."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import httpx
import jwt
import pytest

from parley.clock import utcnow
from parley.errors import InvalidToken, TokenExpired
from parley.security import tokens as tokens_module
from parley.security.tokens import TokenSigner
from tests.conftest import make_user

SECRET = "s" * 48


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    claims = signer.verify_access(signer.issue_access("u1", "s1"))
    assert (claims.user_id, claims.session_id) == ("u1", "s1")


def test_expired_token() -> None:
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    token = signer.issue_access("u1", "s1", now=utcnow() - timedelta(hours=1))
    with pytest.raises(TokenExpired):
        signer.verify_access(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        jwt.encode({"sub": "u1", "sid": "s1"}, "another-secret-" * 4, algorithm="HS256"),
        b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "u1", "sid": "s1"}) + ".",
    ],
)
def test_forged_tokens(token: str) -> None:
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    with pytest.raises(InvalidToken):
        signer.verify_access(token)


def test_wrong_type_or_missing_claims() -> None:
    now = int(utcnow().timestamp())
    base = {"iss": "parley", "sub": "u", "sid": "s", "iat": now, "exp": now + 60}
    for broken in (base | {"typ": "refresh"}, {k: v for k, v in base.items() if k != "sid"}):
        token = jwt.encode(broken, SECRET, algorithm="HS256")
        with pytest.raises(InvalidToken):
            TokenSigner(SECRET, access_ttl=timedelta(minutes=1)).verify_access(token)


class Clock:
    """The wall clock, or a moment set by the test (what a remembered token is checked by)."""

    def __init__(self) -> None:
        self.fixed: float | None = None

    def __call__(self) -> float:
        return self.fixed if self.fixed is not None else time.time()


def test_a_remembered_token_still_expires_on_time() -> None:
    clock = Clock()
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15), clock=clock)
    token = signer.issue_access("u1", "s1")
    first = signer.verify_access(token)
    assert signer.verify_access(token) == first  # remembered: the same claims
    expires = first.expires_at.timestamp()
    clock.fixed = expires - 0.001
    assert signer.verify_access(token) == first
    clock.fixed = expires  # PyJWT's rule: expired once exp <= now
    with pytest.raises(TokenExpired):
        signer.verify_access(token)
    assert token not in signer._verified  # noqa: SLF001 — forgotten once expired


def test_only_the_exact_token_this_secret_verified_is_remembered() -> None:
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    token = signer.issue_access("u1", "s1")
    signer.verify_access(token)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = ".".join((header, b64(claims | {"sub": "u2"}), signature))
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, token + "\x00"):
        with pytest.raises(InvalidToken):
            signer.verify_access(bad)
    with pytest.raises(InvalidToken):  # another secret's signer remembers nothing of this one
        TokenSigner("o" * 48, access_ttl=timedelta(minutes=15)).verify_access(token)


def test_the_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_CACHE_SIZE", 3)
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    issued = [signer.issue_access(f"u{i}", f"s{i}") for i in range(5)]
    for token in issued:
        signer.verify_access(token)
    assert len(signer._verified) == 3  # noqa: SLF001 — the bound is the point of the test
    assert signer.verify_access(issued[0]).user_id == "u0"  # forgotten: decoded again


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner("short", access_ttl=timedelta(minutes=1))


@pytest.mark.usefixtures("backend")
async def test_bad_tokens_over_http(client: httpx.AsyncClient, container: object) -> None:
    user = await make_user(client, "tokenuser")
    payload = jwt.decode(user.access_token, options={"verify_signature": False})
    unsigned = b64({"alg": "none", "typ": "JWT"}) + "." + b64(payload) + "."
    expired = jwt.encode(
        payload | {"exp": int(utcnow().timestamp()) - 10}, "test-secret-" + "x" * 40
    )
    cases = {
        "": "AUTHENTICATION_FAILED",
        "Bearer": "AUTHENTICATION_FAILED",
        "Basic abc": "AUTHENTICATION_FAILED",
        "Bearer garbage": "INVALID_TOKEN",
        f"Bearer {unsigned}": "INVALID_TOKEN",
        f"Bearer {expired}": "TOKEN_EXPIRED",
    }
    for header, code in cases.items():
        response = await client.get("/api/v1/users/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == code, header
        assert response.headers["www-authenticate"] == "Bearer"


def test_token_issued_in_the_future_is_refused() -> None:
    signer = TokenSigner(SECRET, access_ttl=timedelta(minutes=15))
    future = signer.issue_access("u1", "s1", now=utcnow() + timedelta(hours=1))
    with pytest.raises(InvalidToken):
        signer.verify_access(future)


def test_algorithm_confusion_is_refused() -> None:
    now = int(utcnow().timestamp())
    claims = {"iss": "parley", "sub": "u", "sid": "s", "typ": "access", "iat": now, "exp": now + 60}
    long_secret = "k" * 64  # long enough that PyJWT signs HS512 without a key warning
    for algorithm in ("HS384", "HS512"):
        token = jwt.encode(claims, long_secret, algorithm=algorithm)
        with pytest.raises(InvalidToken):
            TokenSigner(long_secret, access_ttl=timedelta(minutes=1)).verify_access(token)


@pytest.mark.usefixtures("backend")
async def test_deactivated_users_tokens_stop_working(
    client: httpx.AsyncClient, container: object
) -> None:
    from sqlalchemy import update

    from parley.container import Container
    from parley.store.tables.accounts import users

    assert isinstance(container, Container)
    user = await make_user(client, "leaver")
    async with container.db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == user.id).values(deactivated_at=utcnow()))
    response = await client.get("/api/v1/users/me", headers=user.headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "SESSION_REVOKED"
    login = await client.post("/api/v1/auth/login", json={"username": "leaver", "password": user.password})
    assert login.status_code == 401
