"""This device's long-term keys and prekeys, kept in the state file (``store``).

Fresh one-time prekeys are generated in batches and their private halves kept until a
prekey message uses them (then deleted: one-time). The signed prekey rotates weekly; the
previous one is kept a while for prekey messages still in flight.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from parley.client.e2ee import primitives as p
from parley.e2ee import formats
from parley.e2ee.formats import b64decode, b64encode

PREKEY_BATCH = 50
LOW_WATERMARK = 20
SIGNED_PREKEY_DAYS = 7
KEEP_OLD_SIGNED_PREKEYS = 2


def new_device_id() -> str:
    return "PY" + secrets.token_hex(8).upper()


def create(state: dict[str, Any], user_id: str, device_id: str) -> None:
    state.update(
        {
            "version": 1,
            "user_id": user_id,
            "device_id": device_id,
            "signing_private": b64encode(p.ed25519_private()),
            "identity_private": b64encode(p.x25519_private()),
            "signed_prekeys": {},
            "signed_prekey_id": 0,
            "signed_prekey_at": 0.0,
            "one_time_prekeys": {},
            "next_prekey_id": 1,
            "uploaded": False,
            "pairwise": {},
            "outbound": {},
            "inbound": {},
            "known_devices": {},
            "identity_changes": [],
            "processed": [],
        }
    )


def signing_private(state: dict[str, Any]) -> bytes:
    return b64decode(state["signing_private"])


def identity_private(state: dict[str, Any]) -> bytes:
    return b64decode(state["identity_private"])


def identity_keys(state: dict[str, Any]) -> dict[str, str]:
    signing = p.ed25519_public(signing_private(state))
    identity = p.x25519_public(identity_private(state))
    payload = formats.identity_payload(state["user_id"], state["device_id"], signing, identity)
    return {
        "signing_key": b64encode(signing),
        "identity_key": b64encode(identity),
        "signature": b64encode(p.sign(signing_private(state), payload)),
    }


def rotate_signed_prekey_if_due(state: dict[str, Any], now: float | None = None) -> dict[str, Any] | None:
    """A new signed prekey when there is none or it is a week old; its public form."""
    now = time.time() if now is None else now
    if state["signed_prekey_id"] and now - state["signed_prekey_at"] < SIGNED_PREKEY_DAYS * 86400:
        return None
    key_id = state["signed_prekey_id"] + 1
    private = p.x25519_private()
    state["signed_prekeys"][str(key_id)] = b64encode(private)
    for old in sorted(int(k) for k in state["signed_prekeys"])[:-1 - KEEP_OLD_SIGNED_PREKEYS]:
        del state["signed_prekeys"][str(old)]
    state["signed_prekey_id"] = key_id
    state["signed_prekey_at"] = now
    return signed_prekey(state)


def signed_prekey(state: dict[str, Any]) -> dict[str, Any]:
    key_id = state["signed_prekey_id"]
    public = p.x25519_public(b64decode(state["signed_prekeys"][str(key_id)]))
    signature = p.sign(signing_private(state), formats.signed_prekey_payload(key_id, public))
    return {"key_id": key_id, "public_key": b64encode(public), "signature": b64encode(signature)}


def generate_one_time_prekeys(state: dict[str, Any], count: int) -> list[dict[str, Any]]:
    fresh = []
    for _ in range(count):
        key_id = state["next_prekey_id"]
        state["next_prekey_id"] += 1
        private = p.x25519_private()
        state["one_time_prekeys"][str(key_id)] = b64encode(private)
        fresh.append({"key_id": key_id, "public_key": b64encode(p.x25519_public(private))})
    return fresh


def take_one_time_prekey(state: dict[str, Any], key_id: int | None) -> bytes | None:
    """The private half of a one-time prekey, removed: it is used once."""
    if key_id is None:
        return None
    raw = state["one_time_prekeys"].pop(str(key_id), None)
    if raw is None:
        raise p.DecryptionError(f"one-time prekey {key_id} is unknown or already used")
    return b64decode(raw)


def signed_prekey_private(state: dict[str, Any], key_id: int) -> bytes:
    raw = state["signed_prekeys"].get(str(key_id))
    if raw is None:
        raise p.DecryptionError(f"signed prekey {key_id} is unknown")
    return b64decode(raw)
