"""X3DH key agreement, as in Signal's specification "The X3DH Key Agreement Protocol"
(revision 1, 2016-11-04), with X25519 and SHA-256.

One difference, for WebCrypto (which has no XEdDSA): the signed prekey is signed with the
device's separate Ed25519 key, which also signs the X25519 identity key
(``parley.e2ee.formats``); a bundle is accepted only when both signatures verify.

    DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)  DH3 = DH(EK_A, SPK_B)  DH4 = DH(EK_A, OPK_B)
    SK  = HKDF(salt = 32 zero bytes, ikm = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4],
               info = "Parley X3DH v1", 32 bytes)
    AD  = IK_A || IK_B   (raw 32-byte X25519 public keys)
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.client.e2ee import primitives as p
from parley.e2ee import formats

INFO = b"Parley X3DH v1"
# §2.2 of the spec: for X25519, F is 32 0xFF bytes, so the KDF input never starts like a
# valid public key encoding.
F = b"\xff" * 32
SALT = b"\x00" * 32


class BundleError(ValueError):
    """A prekey bundle whose signatures do not verify: never used."""


@dataclass(frozen=True, slots=True)
class Bundle:
    user_id: str
    device_id: str
    signing_key: bytes
    identity_key: bytes
    identity_signature: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int | None
    one_time_prekey: bytes | None

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Bundle:
        ik = raw["identity_keys"]
        spk = raw["signed_prekey"]
        otk = raw.get("one_time_prekey")
        assert isinstance(ik, dict) and isinstance(spk, dict)
        return cls(
            user_id=str(raw["user_id"]),
            device_id=str(raw["device_id"]),
            signing_key=formats.b64decode(ik["signing_key"]),
            identity_key=formats.b64decode(ik["identity_key"]),
            identity_signature=formats.b64decode(ik["signature"]),
            signed_prekey_id=int(spk["key_id"]),
            signed_prekey=formats.b64decode(spk["public_key"]),
            signed_prekey_signature=formats.b64decode(spk["signature"]),
            one_time_prekey_id=int(otk["key_id"]) if isinstance(otk, dict) else None,
            one_time_prekey=formats.b64decode(otk["public_key"]) if isinstance(otk, dict) else None,
        )

    def verify(self) -> None:
        identity = formats.identity_payload(
            self.user_id, self.device_id, self.signing_key, self.identity_key
        )
        if not p.verify(self.signing_key, self.identity_signature, identity):
            raise BundleError("the identity key signature does not verify")
        prekey = formats.signed_prekey_payload(self.signed_prekey_id, self.signed_prekey)
        if not p.verify(self.signing_key, self.signed_prekey_signature, prekey):
            raise BundleError("the signed prekey signature does not verify")


@dataclass(frozen=True, slots=True)
class Initiated:
    shared_key: bytes
    associated_data: bytes
    ephemeral_public: bytes


def kdf(*dhs: bytes) -> bytes:
    return p.hkdf(F + b"".join(dhs), salt=SALT, info=INFO, length=32)


def initiate(identity_private: bytes, bundle: Bundle, ephemeral_private: bytes | None = None) -> Initiated:
    """Alice's side (§3.3): verify Bob's bundle, then derive SK with a fresh ephemeral key."""
    bundle.verify()
    ek = ephemeral_private or p.x25519_private()
    dhs = [
        p.dh(identity_private, bundle.signed_prekey),
        p.dh(ek, bundle.identity_key),
        p.dh(ek, bundle.signed_prekey),
    ]
    if bundle.one_time_prekey is not None:
        dhs.append(p.dh(ek, bundle.one_time_prekey))
    ad = p.x25519_public(identity_private) + bundle.identity_key
    return Initiated(kdf(*dhs), ad, p.x25519_public(ek))


def respond(
    identity_private: bytes,
    signed_prekey_private: bytes,
    one_time_prekey_private: bytes | None,
    their_identity: bytes,
    their_ephemeral: bytes,
) -> tuple[bytes, bytes]:
    """Bob's side (§3.4): the same SK and AD from his private keys; returns (SK, AD)."""
    dhs = [
        p.dh(signed_prekey_private, their_identity),
        p.dh(identity_private, their_ephemeral),
        p.dh(signed_prekey_private, their_ephemeral),
    ]
    if one_time_prekey_private is not None:
        dhs.append(p.dh(one_time_prekey_private, their_ephemeral))
    ad = their_identity + p.x25519_public(identity_private)
    return kdf(*dhs), ad
