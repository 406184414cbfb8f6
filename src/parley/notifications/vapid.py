"""VAPID (RFC 8292): the application server's P-256 key pair and its signed tokens.

The browser subscribes with the public key (``GET /api/v1/push/vapid-public-key``); push
services then accept only pushes signed by the private key. So every node must sign with
the same key: set ``PARLEY_VAPID_PRIVATE_KEY`` (PEM, or the raw 32-byte key in base64url as
other Web Push tools print it) on every node, or let one be generated on first start into
``<data dir>/vapid_private_key.pem`` (0600) when the nodes share the data directory. A new
key makes every existing subscription useless (browsers re-subscribe; the web client does
that when the key it subscribed with differs).

Tokens are ES256 JWTs made by py-vapid: ``aud`` the push service's origin, ``exp`` twelve
hours ahead (RFC 8292 allows at most 24), ``sub`` the operator's contact.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from parley.config import Settings, load_or_create_file

VAPID_FILE_NAME = "vapid_private_key.pem"
TOKEN_LIFETIME_SECONDS = 12 * 3600
DEFAULT_SUBJECT = "mailto:parley@localhost"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_private_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or from the raw scalar in base64url."""
    text = text.strip()
    if "BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        key = Vapid02.from_raw(text.encode()).private_key
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the VAPID key must be an EC P-256 private key")
    return key


def subject_for(settings: Settings) -> str:
    if settings.vapid_subject:
        return settings.vapid_subject
    if settings.public_url and settings.public_url.startswith("https://"):
        return settings.public_url.rstrip("/")
    return DEFAULT_SUBJECT


class VapidKeys:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._vapid = Vapid02(private_key)
        self.subject = subject
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        # The browser's ``applicationServerKey``.
        self.public_key = _b64url(point)

    @classmethod
    def from_settings(cls, settings: Settings) -> VapidKeys:
        if settings.vapid_private_key is not None:
            text = settings.vapid_private_key.get_secret_value()
        else:
            text = load_or_create_file(Path(settings.data_dir) / VAPID_FILE_NAME, _new_private_pem)
        return cls(parse_private_key(text), subject_for(settings))

    def authorization(self, endpoint: str, *, now: float | None = None) -> str:
        """The ``Authorization: vapid t=..., k=...`` value for a push to ``endpoint``."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        issued = time.time() if now is None else now
        claims = {"aud": audience, "exp": int(issued) + TOKEN_LIFETIME_SECONDS, "sub": self.subject}
        return str(self._vapid.sign(claims)["Authorization"])
