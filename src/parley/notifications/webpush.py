"""Sending one Web Push message: RFC 8291 encryption, RFC 8030 request, RFC 8292 auth.

The payload is encrypted for the browser's subscription keys (``p256dh``, ``auth``) with
``aes128gcm`` by http-ece — an ephemeral ECDH key per message, as RFC 8291 requires — and
POSTed to the subscription's endpoint with a VAPID ``Authorization``, a ``TTL``, an
``Urgency`` and a ``Topic`` (a push service keeps only the newest undelivered message per
topic: a device that was offline gets one notification per conversation, not a pile).

The request goes through the outbound HTTP client (DESIGN §6.0): private and loopback
addresses refused, no redirects followed, bounded time. The answer decides what happens to
the subscription: 201/202 delivered; 404/410 the subscription is gone (deleted by the
caller); 429 and 5xx or no answer are worth a retry; any other 4xx is a permanent refusal.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from enum import StrEnum

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec

from parley.notifications.vapid import VapidKeys
from parley.outbound import OutboundClient, OutboundError, OutboundRefused

# RFC 8291 §4: a push service must accept 4096 bytes of payload; the aes128gcm header (86
# bytes) and the record's padding delimiter and tag (17) leave this much for our JSON.
MAX_PLAINTEXT_BYTES = 3993
# A push service answers with an empty or tiny body; more is not read.
MAX_ANSWER_BYTES = 16 * 1024


class Urgency(StrEnum):  # RFC 8030 §5.3
    NORMAL = "normal"
    HIGH = "high"


class PushOutcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"  # 404/410: the subscription expired or was withdrawn
    RETRY = "retry"  # 429, 5xx, network: try again later
    REJECTED = "rejected"  # another 4xx: this push will never be accepted


@dataclass(frozen=True, slots=True)
class PushTarget:
    endpoint: str
    p256dh: str  # base64url, the browser's P-256 public key
    auth: str  # base64url, 16 bytes of shared authentication secret


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    status: int | None
    detail: str = ""


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def encrypt_payload(target: PushTarget, plaintext: bytes) -> bytes:
    """RFC 8291 ``aes128gcm`` for ``target``'s keys (a fresh sender key and salt each time)."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"push payload is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES}")
    sender_key = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=sender_key,
        dh=_b64url_decode(target.p256dh),
        auth_secret=_b64url_decode(target.auth),
        version="aes128gcm",
    )
    return encrypted


def topic_for(key: str) -> str:
    """An RFC 8030 Topic (at most 32 base64url characters) naming ``key`` without
    revealing it to the push service."""
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()[:24]).decode()


def classify(status: int) -> PushOutcome:
    if status in (200, 201, 202):
        return PushOutcome.DELIVERED
    if status in (404, 410):
        return PushOutcome.GONE
    if status == 429 or status >= 500:
        return PushOutcome.RETRY
    return PushOutcome.REJECTED


class WebPushSender:
    def __init__(self, vapid: VapidKeys, client: OutboundClient, *, ttl_seconds: int) -> None:
        self._vapid = vapid
        self._client = client
        self._ttl = ttl_seconds

    async def send(
        self, target: PushTarget, plaintext: bytes, *, topic: str, urgency: Urgency
    ) -> PushResult:
        body = encrypt_payload(target, plaintext)
        headers = {
            "Authorization": self._vapid.authorization(target.endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._ttl),
            "Urgency": urgency.value,
            "Topic": topic,
        }
        try:
            response = await self._client.request(
                "POST",
                target.endpoint,
                headers=headers,
                content=body,
                follow_redirects=False,  # an encrypted push is never replayed elsewhere
                max_response_bytes=MAX_ANSWER_BYTES,
            )
        except OutboundRefused as exc:  # a private address: it will never be reachable
            return PushResult(PushOutcome.REJECTED, None, str(exc))
        except OutboundError as exc:  # timeout, unreachable, oversized answer
            return PushResult(PushOutcome.RETRY, None, str(exc))
        detail = response.body[:200].decode("utf-8", "replace")
        return PushResult(classify(response.status), response.status, detail)
