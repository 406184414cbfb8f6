"""Signed links in emails: verifying an address, unsubscribing from digests.

A link token is a JWT (HS256) naming its purpose (``typ``), its user (``sub``) and whatever
else binds it (an address, for verification); some expire (``exp``), an unsubscribe link
does not (mail sits in inboxes for years, and RFC 8058 clients may POST to it at any time).
The key is derived from the server's signing secret with its own label, so a link token can
never pass for an access token, nor the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

import jwt

from parley.clock import utcnow
from parley.errors import InvalidLink

ALGORITHM = "HS256"
ISSUER = "parley-links"
_KEY_LABEL = b"parley link tokens v1"


class LinkPurpose(StrEnum):
    VERIFY_EMAIL = "verify-email"
    UNSUBSCRIBE_DIGEST = "unsubscribe-digest"
    # Not a link: the short-lived token between a login's password and its 2FA code.
    MFA_LOGIN = "mfa-login"


class LinkSigner:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the signing secret must be at least 32 characters")
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()

    def issue(
        self,
        purpose: LinkPurpose,
        user_id: str,
        *,
        bound_to: str = "",
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> str:
        issued = now or utcnow()
        claims: dict[str, object] = {
            "iss": ISSUER,
            "typ": purpose.value,
            "sub": user_id,
            "iat": int(issued.timestamp()),
        }
        if bound_to:
            claims["bnd"] = bound_to
        if ttl is not None:
            claims["exp"] = int((issued + ttl).timestamp())
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, purpose: LinkPurpose, token: str) -> tuple[str, str]:
        """``(user_id, bound_to)`` of a valid token for ``purpose``, else ``InvalidLink``."""
        if not isinstance(token, str) or not 0 < len(token) <= 2048 or not token.isascii():
            raise InvalidLink()
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["iss", "typ", "sub", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidLink("This link has expired") from None
        except jwt.PyJWTError:
            raise InvalidLink() from None
        subject, bound = claims.get("sub"), claims.get("bnd", "")
        if claims.get("typ") != purpose.value or not isinstance(subject, str) or not isinstance(bound, str):
            raise InvalidLink()
        return subject, bound
