"""The Double Ratchet, as in Signal's specification "The Double Ratchet Algorithm"
(revision 1, 2016-11-20), §3, with the recommended cryptographic functions (§5.2) except
ENCRYPT, which is AES-256-GCM (in WebCrypto) instead of AES-256-CBC + HMAC:

    KDF_RK(rk, dh_out) = HKDF-SHA-256(salt = rk, ikm = dh_out, info = "Parley Ratchet v1", 64)
                         -> (rk', ck)
    KDF_CK(ck)         = (HMAC-SHA-256(ck, 0x02) -> ck', HMAC-SHA-256(ck, 0x01) -> mk)
    ENCRYPT(mk, pt, ad): key || nonce = HKDF-SHA-256(salt = 32 zero bytes, ikm = mk,
                         info = "Parley Ratchet message keys v1", 44);
                         AES-256-GCM(key, nonce, pt, aad = ad)
    HEADER(dh, pn, n)  = dh (32 bytes) || pn (uint32 BE) || n (uint32 BE); the AEAD's
                         associated data is AD (from X3DH) || header.

Skipped message keys are kept (out-of-order and missed messages decrypt) up to MAX_SKIP
per chain and MAX_STORED in all, oldest forgotten first. A decryption that fails leaves
the state exactly as it was (§3.5's "if an exception is raised ... discard changes").
"""

from __future__ import annotations

import copy
import struct
from dataclasses import dataclass, field
from typing import Any

from parley.client.e2ee import primitives as p
from parley.e2ee.formats import b64decode, b64encode

RK_INFO = b"Parley Ratchet v1"
MK_INFO = b"Parley Ratchet message keys v1"
MAX_SKIP = 1000
MAX_STORED = 2000
HEADER_BYTES = 40


@dataclass(frozen=True, slots=True)
class Header:
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return self.dh + struct.pack(">II", self.pn, self.n)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        if len(data) != HEADER_BYTES:
            raise p.DecryptionError("bad ratchet header")
        pn, n = struct.unpack(">II", data[32:])
        return cls(data[:32], pn, n)


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    out = p.hkdf(dh_out, salt=rk, info=RK_INFO, length=64)
    return out[:32], out[32:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    return p.hmac_sha256(ck, b"\x02"), p.hmac_sha256(ck, b"\x01")


def message_cipher(mk: bytes) -> tuple[bytes, bytes]:
    out = p.hkdf(mk, salt=b"\x00" * 32, info=MK_INFO, length=44)
    return out[:32], out[32:]


def encrypt(mk: bytes, plaintext: bytes, ad: bytes) -> bytes:
    key, nonce = message_cipher(mk)
    return p.aes_gcm_encrypt(key, nonce, plaintext, ad)


def decrypt(mk: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    key, nonce = message_cipher(mk)
    return p.aes_gcm_decrypt(key, nonce, ciphertext, ad)


@dataclass
class RatchetState:
    dhs_private: bytes
    dhr: bytes | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    ns: int = 0
    nr: int = 0
    pn: int = 0
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    # --- initialisation (§3.3)

    @classmethod
    def init_alice(cls, sk: bytes, bob_dh_public: bytes, dhs_private: bytes | None = None) -> RatchetState:
        dhs = dhs_private or p.x25519_private()
        rk, cks = kdf_rk(sk, p.dh(dhs, bob_dh_public))
        return cls(dhs_private=dhs, dhr=bob_dh_public, rk=rk, cks=cks, ckr=None)

    @classmethod
    def init_bob(cls, sk: bytes, bob_dh_private: bytes) -> RatchetState:
        return cls(dhs_private=bob_dh_private, dhr=None, rk=sk, cks=None, ckr=None)

    # --- encrypting and decrypting (§3.4, §3.5)

    def encrypt(self, plaintext: bytes, ad: bytes) -> tuple[Header, bytes]:
        if self.cks is None:
            raise p.DecryptionError("no sending chain yet: the other side must write first")
        self.cks, mk = kdf_ck(self.cks)
        header = Header(p.x25519_public(self.dhs_private), self.pn, self.ns)
        self.ns += 1
        return header, encrypt(mk, plaintext, ad + header.encode())

    def decrypt(self, header: Header, ciphertext: bytes, ad: bytes) -> bytes:
        """Decrypt, or raise with the state unchanged."""
        trial = copy.deepcopy(self)
        plaintext = trial._decrypt(header, ciphertext, ad)
        self.__dict__.update(trial.__dict__)
        return plaintext

    def _decrypt(self, header: Header, ciphertext: bytes, ad: bytes) -> bytes:
        mk = self.skipped.pop((header.dh, header.n), None)
        if mk is not None:
            return decrypt(mk, ciphertext, ad + header.encode())
        if header.dh != self.dhr:
            self._skip(header.pn)
            self._dh_ratchet(header)
        self._skip(header.n)
        assert self.ckr is not None
        self.ckr, mk = kdf_ck(self.ckr)
        self.nr += 1
        return decrypt(mk, ciphertext, ad + header.encode())

    def _skip(self, until: int) -> None:
        if self.nr + MAX_SKIP < until:
            raise p.DecryptionError("too many skipped messages")
        if self.ckr is not None and self.dhr is not None:
            while self.nr < until:
                self.ckr, mk = kdf_ck(self.ckr)
                self.skipped[(self.dhr, self.nr)] = mk
                self.nr += 1
            while len(self.skipped) > MAX_STORED:  # dicts keep insertion order: oldest first
                del self.skipped[next(iter(self.skipped))]

    def _dh_ratchet(self, header: Header) -> None:
        self.pn = self.ns
        self.ns = 0
        self.nr = 0
        self.dhr = header.dh
        self.rk, self.ckr = kdf_rk(self.rk, p.dh(self.dhs_private, self.dhr))
        self.dhs_private = p.x25519_private()
        self.rk, self.cks = kdf_rk(self.rk, p.dh(self.dhs_private, self.dhr))

    # --- persistence

    def to_json(self) -> dict[str, Any]:
        def enc(value: bytes | None) -> str | None:
            return b64encode(value) if value is not None else None

        return {
            "dhs": enc(self.dhs_private),
            "dhr": enc(self.dhr),
            "rk": enc(self.rk),
            "cks": enc(self.cks),
            "ckr": enc(self.ckr),
            "ns": self.ns,
            "nr": self.nr,
            "pn": self.pn,
            "skipped": [[b64encode(k[0]), k[1], b64encode(v)] for k, v in self.skipped.items()],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RatchetState:
        def dec(value: str | None) -> bytes | None:
            return b64decode(value) if value is not None else None

        dhs, rk = dec(raw["dhs"]), dec(raw["rk"])
        assert dhs is not None and rk is not None
        return cls(
            dhs_private=dhs,
            dhr=dec(raw["dhr"]),
            rk=rk,
            cks=dec(raw["cks"]),
            ckr=dec(raw["ckr"]),
            ns=int(raw["ns"]),
            nr=int(raw["nr"]),
            pn=int(raw["pn"]),
            skipped={(b64decode(k), int(n)): b64decode(v) for k, n, v in raw["skipped"]},
        )
