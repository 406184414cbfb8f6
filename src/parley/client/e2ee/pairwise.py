"""Pairwise channels between two devices: X3DH to start, the Double Ratchet after
(``x3dh``, ``ratchet``). They carry to-device messages only — sender keys and key
requests — never conversation content.

A to-device ``ciphertext`` is unpadded base64url of this JSON (UTF-8)::

    {"v": 1, "alg": "parley.olm.v1",
     "sender_key": IK_A,                         # the sender's X25519 identity key
     "prekey": {"ephemeral_key": EK_A, "signed_prekey_id": n,
                "one_time_prekey_id": n | null} | null,
     "header": HEADER (40 bytes), "body": AES-256-GCM output}

``prekey`` is set on every message of a session its initiator has not yet heard back on
(X3DH §3.3: the first messages carry the initial message's fields); the receiver starts
its side from it (or finds the session it already started from it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from parley.client.e2ee import primitives as p
from parley.client.e2ee import x3dh
from parley.client.e2ee.ratchet import Header, RatchetState
from parley.e2ee import formats
from parley.e2ee.formats import b64decode, b64encode

MAX_SESSIONS_PER_PEER = 4


@dataclass
class PairwiseSession:
    peer_identity: bytes
    ad: bytes
    ratchet: RatchetState
    base_key: bytes  # the X3DH ephemeral key: names the session on both sides
    prekey: dict[str, Any] | None = None  # set while the initiator has not heard back
    last_received: float = 0.0
    created_at: float = field(default_factory=time.time)

    @classmethod
    def initiate(
        cls,
        identity_private: bytes,
        bundle: x3dh.Bundle,
        *,
        ephemeral_private: bytes | None = None,
        ratchet_private: bytes | None = None,
    ) -> PairwiseSession:
        """Start a session from a claimed bundle (the fixed keys are for test vectors)."""
        started = x3dh.initiate(identity_private, bundle, ephemeral_private)
        return cls(
            peer_identity=bundle.identity_key,
            ad=started.associated_data,
            ratchet=RatchetState.init_alice(started.shared_key, bundle.signed_prekey, ratchet_private),
            base_key=started.ephemeral_public,
            prekey={
                "ephemeral_key": b64encode(started.ephemeral_public),
                "signed_prekey_id": bundle.signed_prekey_id,
                "one_time_prekey_id": bundle.one_time_prekey_id,
            },
        )

    @classmethod
    def respond(
        cls,
        identity_private: bytes,
        signed_prekey_private: bytes,
        one_time_prekey_private: bytes | None,
        their_identity: bytes,
        their_ephemeral: bytes,
    ) -> PairwiseSession:
        sk, ad = x3dh.respond(
            identity_private, signed_prekey_private, one_time_prekey_private, their_identity, their_ephemeral
        )
        return cls(
            peer_identity=their_identity,
            ad=ad,
            ratchet=RatchetState.init_bob(sk, signed_prekey_private),
            base_key=their_ephemeral,
        )

    def encrypt(self, own_identity_public: bytes, plaintext: bytes) -> str:
        header, body = self.ratchet.encrypt(plaintext, self.ad)
        wire = {
            "v": formats.VERSION,
            "alg": formats.ALG_PAIRWISE,
            "sender_key": b64encode(own_identity_public),
            "prekey": self.prekey,
            "header": b64encode(header.encode()),
            "body": b64encode(body),
        }
        return b64encode(json.dumps(wire, separators=(",", ":")).encode())

    def decrypt(self, wire: dict[str, Any]) -> bytes:
        header = Header.decode(b64decode(wire["header"]))
        plaintext = self.ratchet.decrypt(header, b64decode(wire["body"]), self.ad)
        self.prekey = None  # the peer has this session: no more prekey messages
        self.last_received = time.time()
        return plaintext

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_identity": b64encode(self.peer_identity),
            "ad": b64encode(self.ad),
            "ratchet": self.ratchet.to_json(),
            "base_key": b64encode(self.base_key),
            "prekey": self.prekey,
            "last_received": self.last_received,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PairwiseSession:
        return cls(
            peer_identity=b64decode(raw["peer_identity"]),
            ad=b64decode(raw["ad"]),
            ratchet=RatchetState.from_json(raw["ratchet"]),
            base_key=b64decode(raw["base_key"]),
            prekey=raw["prekey"],
            last_received=float(raw["last_received"]),
            created_at=float(raw["created_at"]),
        )


def parse_wire(ciphertext: str) -> dict[str, Any]:
    try:
        wire = json.loads(b64decode(ciphertext))
    except (ValueError, formats.FormatError):
        raise p.DecryptionError("not a pairwise message") from None
    if not isinstance(wire, dict) or wire.get("v") != formats.VERSION or wire.get("alg") != formats.ALG_PAIRWISE:
        raise p.DecryptionError("not a pairwise message of a known version")
    for name in ("sender_key", "header", "body"):
        if not isinstance(wire.get(name), str):
            raise p.DecryptionError(f"pairwise message without {name}")
    return wire


def ordered(sessions: list[PairwiseSession]) -> list[PairwiseSession]:
    """Most recently heard from first (the one to send with), then newest."""
    return sorted(sessions, key=lambda s: (s.last_received, s.created_at), reverse=True)[
        :MAX_SESSIONS_PER_PEER
    ]
