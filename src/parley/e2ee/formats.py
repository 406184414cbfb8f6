"""Wire formats of Parley's end-to-end encryption (``docs/e2ee.md`` "Formats").

Binary values travel as **unpadded base64url** (RFC 4648 §5 without ``=``): the encoding
of JWK ``x`` members, so WebCrypto imports a public key from it directly. Every signed
payload starts with a domain-separation label, so a signature made for one purpose can
never be replayed as another.

Nothing here keeps secrets: these are the public shapes that the server validates and the
clients produce.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = 1
# The conversation cipher: sender keys (hash ratchet), AES-256-GCM, Ed25519-signed.
ALG_SENDER_KEYS = "parley.senderkeys.v1"
# The pairwise cipher of to-device messages: X3DH then the Double Ratchet.
ALG_PAIRWISE = "parley.olm.v1"

KEY_BYTES = 32  # X25519 and Ed25519 public keys
SIGNATURE_BYTES = 64  # Ed25519
KEY_CHARS = 43  # 32 bytes in unpadded base64url
SIGNATURE_CHARS = 86
# Devices are named by their client: short, URL-safe (they appear in paths).
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_KEY_ID = 2**53 - 1  # a JavaScript number holds it exactly
MAX_INDEX = 2**32 - 1  # the hash ratchet's message index
# The smallest conversation ciphertext: a 16-byte GCM tag and a 64-byte signature.
MIN_CIPHERTEXT_BYTES = 16 + 64

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

IDENTITY_LABEL = b"parley-e2ee-v1 identity\x00"
SIGNED_PREKEY_LABEL = b"parley-e2ee-v1 signed-prekey\x00"


class FormatError(ValueError):
    """A value that does not have its documented shape; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(value: str, field: str = "value") -> bytes:
    """Strict unpadded base64url: other alphabets, padding and stray bits are refused."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise FormatError(field, "must be unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise FormatError(field, "must be unpadded base64url") from None
    if b64encode(data) != value:  # non-canonical trailing bits
        raise FormatError(field, "must be canonical unpadded base64url")
    return data


def decode_key(value: object, field: str) -> bytes:
    if not isinstance(value, str) or len(value) != KEY_CHARS:
        raise FormatError(field, f"must be a {KEY_BYTES}-byte key in unpadded base64url")
    return b64decode(value, field)


def decode_signature(value: object, field: str) -> bytes:
    if not isinstance(value, str) or len(value) != SIGNATURE_CHARS:
        raise FormatError(field, f"must be a {SIGNATURE_BYTES}-byte signature in unpadded base64url")
    return b64decode(value, field)


def check_device_id(value: object, field: str = "device_id") -> str:
    if not isinstance(value, str) or not DEVICE_ID_PATTERN.fullmatch(value):
        raise FormatError(field, "must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    return value


def check_key_id(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEY_ID:
        raise FormatError(field, f"must be an integer from 0 to {MAX_KEY_ID}")
    return value


# --- what the device's Ed25519 key signs


def identity_payload(user_id: str, device_id: str, signing_key: bytes, identity_key: bytes) -> bytes:
    """Binds the X25519 identity key to the signing key, the user and the device."""
    return (
        IDENTITY_LABEL
        + user_id.encode("ascii")
        + b"\x00"
        + device_id.encode("ascii")
        + b"\x00"
        + signing_key
        + identity_key
    )


def signed_prekey_payload(key_id: int, public_key: bytes) -> bytes:
    return SIGNED_PREKEY_LABEL + key_id.to_bytes(8, "big") + public_key


def verify(signing_key: bytes, signature: bytes, payload: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(signing_key).verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- the envelope of an encrypted conversation message


@dataclass(frozen=True, slots=True)
class Envelope:
    """``e2ee`` of an encrypted message: which sender chain and which step of it."""

    v: int
    alg: str
    sender_device_id: str
    session_id: str  # the chain's Ed25519 public key (unpadded base64url)
    index: int

    def to_public(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "alg": self.alg,
            "sender_device_id": self.sender_device_id,
            "session_id": self.session_id,
            "index": self.index,
        }


ENVELOPE_FIELDS = frozenset({"v", "alg", "sender_device_id", "session_id", "index"})


def parse_envelope(raw: object, field: str = "e2ee") -> Envelope:
    if not isinstance(raw, dict):
        raise FormatError(field, "must be an object")
    unknown = set(raw) - ENVELOPE_FIELDS
    if unknown:
        raise FormatError(f"{field}.{sorted(unknown)[0]}", "is not a known field")
    missing = ENVELOPE_FIELDS - set(raw)
    if missing:
        raise FormatError(f"{field}.{sorted(missing)[0]}", "is required")
    if raw["v"] != VERSION or isinstance(raw["v"], bool):
        raise FormatError(f"{field}.v", f"must be {VERSION}")
    if raw["alg"] != ALG_SENDER_KEYS:
        raise FormatError(f"{field}.alg", f"must be {ALG_SENDER_KEYS!r}")
    device = check_device_id(raw["sender_device_id"], f"{field}.sender_device_id")
    decode_key(raw["session_id"], f"{field}.session_id")
    index = raw["index"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
        raise FormatError(f"{field}.index", f"must be an integer from 0 to {MAX_INDEX}")
    return Envelope(VERSION, ALG_SENDER_KEYS, device, raw["session_id"], index)


def check_ciphertext(value: object, max_chars: int, field: str = "ciphertext") -> str:
    """A conversation ciphertext: unpadded base64url of at least a GCM tag and a signature."""
    if not isinstance(value, str):
        raise FormatError(field, "must be a string")
    if len(value) > max_chars:
        raise FormatError(field, f"must be at most {max_chars} characters")
    data = b64decode(value, field)
    if len(data) < MIN_CIPHERTEXT_BYTES:
        raise FormatError(field, f"must be at least {MIN_CIPHERTEXT_BYTES} bytes")
    return value
