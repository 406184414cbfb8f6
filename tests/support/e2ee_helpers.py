"""E2EE test helpers: device key bundles made with pyca ``cryptography`` (as a client
makes them), uploaded through the public API; the body of a sealed group message."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from parley.e2ee import formats
from tests.conftest import UserHandle


def raw(key: Any) -> bytes:
    return bytes(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@dataclass
class DeviceKeys:
    user_id: str
    device_id: str
    signing: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    identity: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    spk_id: int = 1
    spk: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)

    def identity_keys(self) -> dict[str, str]:
        signing, identity = raw(self.signing), raw(self.identity)
        payload = formats.identity_payload(self.user_id, self.device_id, signing, identity)
        return {
            "signing_key": formats.b64encode(signing),
            "identity_key": formats.b64encode(identity),
            "signature": formats.b64encode(self.signing.sign(payload)),
        }

    def signed_prekey(self) -> dict[str, Any]:
        public = raw(self.spk)
        payload = formats.signed_prekey_payload(self.spk_id, public)
        return {
            "key_id": self.spk_id,
            "public_key": formats.b64encode(public),
            "signature": formats.b64encode(self.signing.sign(payload)),
        }

    def body(self, one_time: range = range(0)) -> dict[str, Any]:
        return {
            "identity_keys": self.identity_keys(),
            "signed_prekey": self.signed_prekey(),
            "one_time_prekeys": one_time_prekeys(one_time),
        }


def one_time_prekeys(ids: range) -> list[dict[str, Any]]:
    return [
        {"key_id": i, "public_key": formats.b64encode(raw(X25519PrivateKey.generate()))}
        for i in ids
    ]


async def register_device(
    client: httpx.AsyncClient,
    user: UserHandle,
    device_id: str = "laptop",
    one_time: range = range(1, 6),
) -> DeviceKeys:
    keys = DeviceKeys(user.id, device_id)
    response = await client.put(
        f"/api/v1/devices/{device_id}/keys", json=keys.body(one_time), headers=user.headers
    )
    assert response.status_code == 200, response.text
    return keys


SESSION = formats.b64encode(b"\x07" * 32)  # one sender-keys session for every sealed message


def sealed(index: int = 0, size: int = 120) -> dict[str, Any]:
    """A message body as an encrypting client sends it: random ciphertext (the server never
    reads it) under a sender-keys envelope, message ``index`` of the session."""
    return {
        "ciphertext": formats.b64encode(os.urandom(size)),
        "e2ee": {
            "v": 1,
            "alg": formats.ALG_SENDER_KEYS,
            "sender_device_id": "laptop",
            "session_id": SESSION,
            "index": index,
        },
    }
