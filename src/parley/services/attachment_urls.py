"""Signed attachment URLs: ``/api/v1/attachments/{id}/{variant}?exp=...&sig=...``.

An ``<img src>`` cannot send an Authorization header, so message payloads carry URLs that
authorise themselves for a short time: ``sig`` is an HMAC-SHA256 (truncated to 128 bits)
of the attachment id, the variant and the expiry, under a key derived from the server's
signing secret (a separate key from the JWT one, so neither signature can stand in for the
other). Only members receive payloads, so only members receive URLs; a URL stays valid
until ``exp`` even if its holder leaves the conversation — that is what "short-lived" bounds.

Expiry is rounded up to a bucket (between one and two TTLs from now), so the same
attachment gets the same URL for a while and browsers can reuse their cached copy.

The container builds one ``AttachmentUrls`` and passes it explicitly to every service that
reads messages (``message_records.read_messages(..., urls=)``); tools that build no
container pass ``None`` and payloads carry unsigned paths.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlencode

from parley.services.attachment_errors import UrlExpired, UrlSignatureInvalid

URL_PREFIX = "/api/v1/attachments"
_KEY_CONTEXT = b"parley attachment urls v1"
_SIGNATURE_BYTES = 16


class AttachmentUrls:
    def __init__(
        self, secret: str, *, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        if ttl_seconds < 1:
            raise ValueError("ttl_seconds must be positive")
        self._key = hmac.new(secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    def expiry(self, now: float | None = None) -> int:
        """A Unix time between one and two TTLs from ``now``, the same for a whole TTL."""
        current = int(self._clock() if now is None else now)
        return (current // self.ttl_seconds + 2) * self.ttl_seconds

    def signature(self, attachment_id: str, variant: str, expires: int) -> str:
        message = f"{attachment_id}/{variant}/{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(self, attachment_id: str, variant: str, *, expires: int | None = None) -> str:
        exp = self.expiry() if expires is None else expires
        query = urlencode({"exp": exp, "sig": self.signature(attachment_id, variant, exp)})
        return f"{URL_PREFIX}/{attachment_id}/{variant}?{query}"

    def verify(self, attachment_id: str, variant: str, exp: str, sig: str) -> int:
        """The expiry if ``sig`` is right and not past; raises otherwise. The signature is
        checked first, so a forged ``exp`` reads as forged, not as expired."""
        if not exp.isdigit() or len(exp) > 12:
            raise UrlSignatureInvalid()
        expires = int(exp)
        expected = self.signature(attachment_id, variant, expires)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise UrlSignatureInvalid()
        if expires < self._clock():
            raise UrlExpired()
        return expires
