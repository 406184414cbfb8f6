"""Sender keys: the conversation cipher (DESIGN §6.1; Megolm-style, as Signal's sender keys).

Each sending device has, per conversation and epoch, an outbound session: a random 32-byte
chain key and an Ed25519 key pair whose public key is the ``session_id``. Message ``i``:

    mk_i        = HMAC-SHA-256(ck_i, 0x01)      ck_{i+1} = HMAC-SHA-256(ck_i, 0x02)
    key || nonce = HKDF-SHA-256(salt = 32 zero bytes, ikm = mk_i,
                               info = "Parley sender key message v1", 44)
    aad          = "parley-e2ee-v1 message" 0x00 conversation_id 0x00 sender_user_id 0x00
                   sender_device_id 0x00 session_id (32 raw bytes) i (uint32 BE)
    body         = AES-256-GCM(key, nonce, plaintext, aad)        (ciphertext || 16-byte tag)
    ciphertext   = body || Ed25519-sign(signing key, aad || body)  (64 bytes)

The chain key is shared (at its current index) with every member device over the pairwise
channels; a receiver can derive keys from that index on, never before it — so a member
added later reads only what follows. A removed member keeps what it had, so the sender
starts a new epoch (a new session) and shares it with the remaining devices only.

The signature makes every message attributable to the session's owner (the device that
shared it over an authenticated pairwise channel): a member who holds the chain key can
read, but cannot forge, another member's messages.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any

from parley.client.e2ee import primitives as p
from parley.e2ee import formats
from parley.e2ee.formats import b64decode, b64encode

MESSAGE_INFO = b"Parley sender key message v1"
AAD_LABEL = b"parley-e2ee-v1 message\x00"
SIGNATURE_BYTES = 64
# An epoch ends after this many messages or this many seconds (DESIGN §6.1: 1,000 messages
# or 90 days), besides every membership loss.
MAX_MESSAGES = 1000
MAX_AGE_SECONDS = 90 * 86400
# A receiver derives at most this far ahead of the earliest key it holds.
MAX_FORWARD = 20_000
# Message ids remembered per inbound session for replay detection.
MAX_SEEN = 5000


class ReplayError(p.DecryptionError):
    """A ciphertext (session, index) already read as another message."""


def chain_step(ck: bytes) -> tuple[bytes, bytes]:
    """(next chain key, message key)."""
    return p.hmac_sha256(ck, b"\x02"), p.hmac_sha256(ck, b"\x01")


def message_cipher(mk: bytes) -> tuple[bytes, bytes]:
    out = p.hkdf(mk, salt=b"\x00" * 32, info=MESSAGE_INFO, length=44)
    return out[:32], out[32:]


def aad(conversation_id: str, sender_user_id: str, sender_device_id: str, session_id: bytes, index: int) -> bytes:
    return (
        AAD_LABEL
        + conversation_id.encode("ascii")
        + b"\x00"
        + sender_user_id.encode("ascii")
        + b"\x00"
        + sender_device_id.encode("ascii")
        + b"\x00"
        + session_id
        + struct.pack(">I", index)
    )


@dataclass
class OutboundSession:
    conversation_id: str
    signing_private: bytes
    chain_key: bytes
    index: int = 0
    created_at: float = field(default_factory=time.time)
    # Who it was shared with: (user_id, device_id); and the members when it started.
    shared_with: set[tuple[str, str]] = field(default_factory=set)
    members: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, conversation_id: str, members: set[str]) -> OutboundSession:
        return cls(conversation_id, p.ed25519_private(), p.random_bytes(32), members=set(members))

    @property
    def session_id(self) -> str:
        return b64encode(p.ed25519_public(self.signing_private))

    def expired(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.index >= MAX_MESSAGES or now - self.created_at >= MAX_AGE_SECONDS

    def encrypt(
        self, sender_user_id: str, sender_device_id: str, plaintext: bytes
    ) -> tuple[str, dict[str, Any]]:
        """(ciphertext, envelope) for the next index; the chain moves on."""
        session_raw = p.ed25519_public(self.signing_private)
        index = self.index
        associated = aad(self.conversation_id, sender_user_id, sender_device_id, session_raw, index)
        self.chain_key, mk = chain_step(self.chain_key)
        self.index += 1
        key, nonce = message_cipher(mk)
        body = p.aes_gcm_encrypt(key, nonce, plaintext, associated)
        signature = p.sign(self.signing_private, associated + body)
        envelope = {
            "v": formats.VERSION,
            "alg": formats.ALG_SENDER_KEYS,
            "sender_device_id": sender_device_id,
            "session_id": b64encode(session_raw),
            "index": index,
        }
        return b64encode(body + signature), envelope

    def export(self) -> dict[str, Any]:
        """What members receive: the chain at its current index (nothing earlier)."""
        return {
            "conversation_id": self.conversation_id,
            "session_id": self.session_id,
            "index": self.index,
            "chain_key": b64encode(self.chain_key),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "signing_private": b64encode(self.signing_private),
            "chain_key": b64encode(self.chain_key),
            "index": self.index,
            "created_at": self.created_at,
            "shared_with": sorted([u, d] for u, d in self.shared_with),
            "members": sorted(self.members),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OutboundSession:
        return cls(
            conversation_id=raw["conversation_id"],
            signing_private=b64decode(raw["signing_private"]),
            chain_key=b64decode(raw["chain_key"]),
            index=int(raw["index"]),
            created_at=float(raw["created_at"]),
            shared_with={(u, d) for u, d in raw["shared_with"]},
            members=set(raw["members"]),
        )


@dataclass
class InboundSession:
    conversation_id: str
    sender_user_id: str
    sender_device_id: str
    session_id: str  # the sender's Ed25519 public key for this chain
    first_index: int
    first_chain_key: bytes
    seen: dict[int, str] = field(default_factory=dict)  # index -> message id

    @classmethod
    def from_export(cls, sender_user_id: str, sender_device_id: str, shared: dict[str, Any]) -> InboundSession:
        formats.decode_key(shared["session_id"], "session_id")
        return cls(
            conversation_id=str(shared["conversation_id"]),
            sender_user_id=sender_user_id,
            sender_device_id=sender_device_id,
            session_id=str(shared["session_id"]),
            first_index=int(shared["index"]),
            first_chain_key=b64decode(shared["chain_key"]),
        )

    def merge(self, other: InboundSession) -> None:
        """A second share of the same session: keep the earliest index known."""
        if other.first_index < self.first_index:
            self.first_index, self.first_chain_key = other.first_index, other.first_chain_key

    def decrypt(self, envelope: dict[str, Any], ciphertext: str, message_id: str | None = None) -> bytes:
        index = int(envelope["index"])
        data = b64decode(ciphertext)
        if len(data) < SIGNATURE_BYTES + 16:
            raise p.DecryptionError("ciphertext too short")
        body, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
        session_raw = b64decode(self.session_id)
        associated = aad(
            self.conversation_id, self.sender_user_id, self.sender_device_id, session_raw, index
        )
        if not p.verify(session_raw, signature, associated + body):
            raise p.DecryptionError("the signature does not verify")
        if index < self.first_index:
            raise p.DecryptionError("sent before this device received the key")
        if index - self.first_index > MAX_FORWARD:
            raise p.DecryptionError("index too far ahead")
        earlier = self.seen.get(index)
        if message_id is not None and earlier is not None and earlier != message_id:
            raise ReplayError(f"index {index} was already read as message {earlier}")
        ck = self.first_chain_key
        for _ in range(index - self.first_index):
            ck, _ = chain_step(ck)
        _, mk = chain_step(ck)
        key, nonce = message_cipher(mk)
        plaintext = p.aes_gcm_decrypt(key, nonce, body, associated)
        if message_id is not None:
            self.seen[index] = message_id
            while len(self.seen) > MAX_SEEN:
                del self.seen[next(iter(self.seen))]
        return plaintext

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "sender_user_id": self.sender_user_id,
            "sender_device_id": self.sender_device_id,
            "session_id": self.session_id,
            "first_index": self.first_index,
            "first_chain_key": b64encode(self.first_chain_key),
            "seen": [[i, m] for i, m in self.seen.items()],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> InboundSession:
        return cls(
            conversation_id=raw["conversation_id"],
            sender_user_id=raw["sender_user_id"],
            sender_device_id=raw["sender_device_id"],
            session_id=raw["session_id"],
            first_index=int(raw["first_index"]),
            first_chain_key=b64decode(raw["first_chain_key"]),
            seen={int(i): str(m) for i, m in raw["seen"]},
        )
