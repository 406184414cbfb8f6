"""Encrypted attachments (DESIGN §6.1): each file gets a fresh AES-256-GCM key and nonce;
the server stores the ciphertext as an opaque blob (``POST /api/v1/uploads?encrypted=true``)
and the key, nonce, hash, name and type travel inside the encrypted message::

    {"id": attachment id, "name": ..., "content_type": ..., "size": plaintext bytes,
     "key": 32 bytes, "nonce": 12 bytes, "sha256": SHA-256 of the uploaded ciphertext}

(binary values in unpadded base64url). Files are encrypted whole, in memory: the upload
limit (25 MB by default) bounds them; a chunked scheme for larger files is future work.
"""

from __future__ import annotations

from typing import Any

from parley.client.e2ee import primitives as p
from parley.e2ee.formats import b64decode, b64encode

FILE_AAD = b"parley-e2ee-v1 file"


def encrypt_file(
    data: bytes, *, key: bytes | None = None, nonce: bytes | None = None
) -> tuple[bytes, dict[str, Any]]:
    """(blob to upload, what the message says of it); a fresh key and nonce unless given
    (test vectors only: a key must never encrypt two files)."""
    key = key or p.random_bytes(32)
    nonce = nonce or p.random_bytes(p.NONCE_BYTES)
    blob = p.aes_gcm_encrypt(key, nonce, data, FILE_AAD)
    return blob, {
        "size": len(data),
        "key": b64encode(key),
        "nonce": b64encode(nonce),
        "sha256": b64encode(p.sha256(blob)),
    }


def decrypt_file(blob: bytes, info: dict[str, Any]) -> bytes:
    if not p.constant_time_equal(p.sha256(blob), b64decode(info["sha256"])):
        raise p.DecryptionError("the file is not the one the message names")
    return p.aes_gcm_decrypt(b64decode(info["key"]), b64decode(info["nonce"]), blob, FILE_AAD)
