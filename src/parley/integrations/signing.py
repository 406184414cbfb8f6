"""Signatures of the requests Parley sends to integrations (outgoing webhooks, slash
commands): HMAC-SHA256 over the timestamp and the exact body, with the integration's secret.

Header (the scheme Stripe and Slack use, so receivers know it)::

    X-Parley-Signature: t=1767000000,v1=<hex HMAC-SHA256(secret, "1767000000." + body)>

The timestamp is inside the signed text, so a captured request replayed later fails the
receiver's freshness check (:data:`DEFAULT_TOLERANCE_SECONDS`) and cannot be re-dated.
Receivers compare in constant time (:func:`hmac.compare_digest`); :func:`verify` does
both, and the SDK uses it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Parley-Signature"
VERSION = "v1"
# A receiver accepts requests signed this recently (clock skew plus delivery time).
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A signing secret: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Parley-Signature`` value for ``body`` sent now (or at ``timestamp``)."""
    when = int(time.time()) if timestamp is None else timestamp
    return f"t={when},{VERSION}={_mac(secret, when, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a fresh, valid signature of ``body`` with ``secret``."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, value)
    stamp, given = fields.get("t", ""), fields.get(VERSION, "")
    if not stamp.isdigit() or len(stamp) > 12 or not given:
        return False
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(_mac(secret, timestamp, body), given)
