"""The key backup (DESIGN §6.1): this device's conversation keys (inbound sender-key
sessions), encrypted with a key derived from a recovery passphrase, stored on the server as
an opaque blob (``PUT /api/v1/key-backup``); a new device restores them and reads the
history the backup covers.

    key  = PBKDF2-HMAC-SHA-256(passphrase (UTF-8), salt (16 random bytes), 600,000, 32 bytes)
    blob = {"v": 1, "kdf": "pbkdf2-sha256", "iterations": n, "salt": b64, "nonce": b64,
            "ciphertext": AES-256-GCM(key, nonce, JSON of the sessions,
                                      aad = "parley-e2ee-v1 key backup")}

PBKDF2 rather than scrypt or Argon2 because browsers have it (WebCrypto); the iteration
count is OWASP's 2023 figure for PBKDF2-HMAC-SHA-256. Only the passphrase's strength
stands between the server and these keys: say so to users.
"""

from __future__ import annotations

import json
from typing import Any

from parley.client.e2ee import primitives as p
from parley.e2ee.formats import b64decode, b64encode

ITERATIONS = 600_000
AAD = b"parley-e2ee-v1 key backup"


def seal(
    passphrase: str,
    payload: dict[str, Any],
    *,
    iterations: int = ITERATIONS,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> str:
    """The backup blob (fresh salt and nonce unless given: test vectors only)."""
    salt = salt or p.random_bytes(16)
    nonce = nonce or p.random_bytes(p.NONCE_BYTES)
    key = p.pbkdf2(passphrase, salt, iterations)
    body = json.dumps(payload, separators=(",", ":")).encode()
    return json.dumps(
        {
            "v": 1,
            "kdf": "pbkdf2-sha256",
            "iterations": iterations,
            "salt": b64encode(salt),
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(p.aes_gcm_encrypt(key, nonce, body, AAD)),
        },
        separators=(",", ":"),
    )


def unseal(passphrase: str, blob: str) -> dict[str, Any]:
    try:
        outer = json.loads(blob)
        if outer.get("v") != 1 or outer.get("kdf") != "pbkdf2-sha256":
            raise p.DecryptionError("unknown backup format")
        key = p.pbkdf2(passphrase, b64decode(outer["salt"]), int(outer["iterations"]))
        body = p.aes_gcm_decrypt(key, b64decode(outer["nonce"]), b64decode(outer["ciphertext"]), AAD)
    except (ValueError, KeyError, TypeError) as exc:
        raise p.DecryptionError(f"not a key backup: {exc}") from None
    payload: dict[str, Any] = json.loads(body)
    return payload
