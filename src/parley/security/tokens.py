"""Access tokens (short-lived JWTs), refresh tokens (opaque, stored hashed) and device
tokens (long-lived JWTs that only mark a device as known to the login throttle).

An access token names its user (``sub``) and session (``sid``), so revoking a session stops
its access at the next check (the session is read or checked on every use; the token alone
never grants access to a revoked session).

A token verified once is remembered until it expires (at most ``VERIFIED_CACHE_SIZE`` of
them, the oldest forgotten first): a client presents the same token on every request and
every reconnect until it refreshes, and PyJWT's decode — base64, JSON, HMAC, the claims — was
9 % of the event loop's time while sockets connected and identified. Only the exact string
verified with this signer's secret is found again, and its expiry is checked at every use
as PyJWT checks it (``exp`` against the wall clock), so what passes is what decoding again
would pass. Only HS256 is accepted: ``alg: none`` and algorithm
confusion fail verification. A device token grants nothing by itself: it names a user and a
device id, so that a login of that user from that device is throttled on its own
(``security.login_throttle``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from parley.clock import utcnow
from parley.errors import InvalidToken, TokenExpired

ALGORITHM = "HS256"
TOKEN_TYPE = "access"
DEVICE_TOKEN_TYPE = "device"
ISSUER = "parley"
# Access tokens remembered as verified (module docstring): a few hundred bytes each.
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceClaims:
    user_id: str
    username: str  # as typed at login, normalised: matched before any database read
    device_id: str


class TokenSigner:
    def __init__(
        self,
        secret: str,
        *,
        access_ttl: timedelta,
        device_ttl: timedelta = timedelta(days=365),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the signing secret must be at least 32 characters")
        self._secret = secret
        self.access_ttl = access_ttl
        self.device_ttl = device_ttl
        self._clock = clock  # what a remembered token's expiry is checked against
        # Access tokens verified already: token -> (its claims, its exp as a timestamp),
        # oldest first. Used from the event loop only (both callers are coroutines).
        self._verified: OrderedDict[str, tuple[AccessClaims, int]] = OrderedDict()

    def _issue(self, claims: dict[str, str], ttl: timedelta, now: datetime | None) -> str:
        issued = now or utcnow()
        payload = {
            "iss": ISSUER,
            **claims,
            "iat": int(issued.timestamp()),
            "exp": int((issued + ttl).timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _decode(self, token: str, *claims: str) -> dict[str, Any]:
        """The verified payload (``jwt.PyJWTError`` otherwise), ``claims`` required."""
        payload: dict[str, Any] = jwt.decode(
            token,
            self._secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "typ", "iss", *claims]},
        )
        return payload

    def issue_device(self, user_id: str, username: str, *, now: datetime | None = None) -> str:
        """A token marking the device that just logged in as ``user_id``'s."""
        claims = {
            "sub": user_id,
            "name": username,
            "jti": secrets.token_urlsafe(12),
            "typ": DEVICE_TOKEN_TYPE,
        }
        return self._issue(claims, self.device_ttl, now)

    def read_device(self, token: str) -> DeviceClaims | None:
        """The device a token names, or None for anything but a valid, current one."""
        try:
            payload = self._decode(token, "jti", "name")
        except jwt.PyJWTError:
            return None
        sub, name, jti = payload.get("sub"), payload.get("name"), payload.get("jti")
        if payload.get("typ") != DEVICE_TOKEN_TYPE or not all(
            isinstance(claim, str) for claim in (sub, name, jti)
        ):
            return None
        return DeviceClaims(user_id=str(sub), username=str(name), device_id=str(jti))

    def issue_access(self, user_id: str, session_id: str, *, now: datetime | None = None) -> str:
        claims = {"sub": user_id, "sid": session_id, "typ": TOKEN_TYPE}
        return self._issue(claims, self.access_ttl, now)

    def verify_access(self, token: str) -> AccessClaims:
        """The token's claims, or ``TokenExpired`` / ``InvalidToken``."""
        known = self._verified.get(token)
        if known is not None:
            claims, expires = known
            if expires > self._clock():  # PyJWT: expired once exp <= now
                return claims
            self._verified.pop(token, None)
            raise TokenExpired()
        claims = self._verify_access(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)  # the oldest
        self._verified[token] = (claims, int(claims.expires_at.timestamp()))
        return claims

    def _verify_access(self, token: str) -> AccessClaims:
        try:
            payload = self._decode(token, "sid")
        except jwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except jwt.PyJWTError:
            raise InvalidToken() from None
        if payload.get("typ") != TOKEN_TYPE:
            raise InvalidToken()
        sub, sid = payload.get("sub"), payload.get("sid")
        if not isinstance(sub, str) or not isinstance(sid, str):
            raise InvalidToken()
        return AccessClaims(
            user_id=sub,
            session_id=sid,
            expires_at=datetime.fromtimestamp(payload["exp"], tz=utcnow().tzinfo),
        )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_random_token(token: str) -> str:
    """How a random bearer token is stored (refresh tokens, password reset tokens, invites):
    they carry 192-256 random bits, so a fast hash suffices: no dictionary to attack."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
