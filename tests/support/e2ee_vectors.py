"""Builds ``tests/support/e2ee_vectors.json``: fixed inputs through the SDK's E2EE code, so another
implementation (the browser's WebCrypto code, part 2) can check it produces and reads the
same bytes. Regenerate with ``python -m tests.support.e2ee_vectors > tests/support/e2ee_vectors.json``
(only when a format changes on purpose: docs/e2ee.md then changes too).

Binary values are lower-case hex, except where the wire itself uses unpadded base64url
(keys, signatures, ciphertexts as sent), which stay as on the wire.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from parley.client.e2ee import backup, files, pairwise, ratchet, safety, sender_keys, x3dh
from parley.client.e2ee import primitives as p
from parley.e2ee import formats
from parley.e2ee.formats import b64encode


def fixed(label: str) -> bytes:
    """A 32-byte private key (or chain key) derived from a label: reproducible inputs."""
    return hashlib.sha256(b"parley test vector " + label.encode()).digest()


# Shaped like Parley ids (26 Crockford base32 characters).
ALICE = "01J00000000000000000000A1C"
BOB = "01J00000000000000000000B0B"
CONVERSATION = "01J0000000000000000000C0NV"


def device_keys(user_id: str, device_id: str, prefix: str) -> dict[str, Any]:
    signing, identity, spk, otk = (fixed(f"{prefix} {k}") for k in ("signing", "identity", "spk", "otk"))
    signing_pub, identity_pub = p.ed25519_public(signing), p.x25519_public(identity)
    spk_pub = p.x25519_public(spk)
    identity_payload = formats.identity_payload(user_id, device_id, signing_pub, identity_pub)
    spk_payload = formats.signed_prekey_payload(1, spk_pub)
    return {
        "user_id": user_id,
        "device_id": device_id,
        "signing_private": signing.hex(),
        "identity_private": identity.hex(),
        "signed_prekey_private": spk.hex(),
        "one_time_prekey_private": otk.hex(),
        "identity_keys": {
            "signing_key": b64encode(signing_pub),
            "identity_key": b64encode(identity_pub),
            "signature": b64encode(p.sign(signing, identity_payload)),
        },
        "identity_payload": identity_payload.hex(),
        "signed_prekey": {
            "key_id": 1,
            "public_key": b64encode(spk_pub),
            "signature": b64encode(p.sign(signing, spk_payload)),
        },
        "signed_prekey_payload": spk_payload.hex(),
        "one_time_prekey": {"key_id": 7, "public_key": b64encode(p.x25519_public(otk))},
    }


def bundle_of(keys: dict[str, Any], with_otk: bool) -> x3dh.Bundle:
    return x3dh.Bundle.from_json(
        {
            "user_id": keys["user_id"],
            "device_id": keys["device_id"],
            "identity_keys": keys["identity_keys"],
            "signed_prekey": keys["signed_prekey"],
            "one_time_prekey": keys["one_time_prekey"] if with_otk else None,
        }
    )


def build() -> dict[str, Any]:
    alice = device_keys(ALICE, "ALICELAPTOP", "alice")
    bob = device_keys(BOB, "BOBPHONE", "bob")
    alice_identity = bytes.fromhex(alice["identity_private"])
    ephemeral = fixed("alice ephemeral")
    x3dh_vectors = []
    for with_otk in (True, False):
        started = x3dh.initiate(alice_identity, bundle_of(bob, with_otk), ephemeral)
        x3dh_vectors.append(
            {
                "one_time_prekey_used": with_otk,
                "ephemeral_private": ephemeral.hex(),
                "ephemeral_public": b64encode(started.ephemeral_public),
                "shared_key": started.shared_key.hex(),
                "associated_data": started.associated_data.hex(),
            }
        )

    rk, ck = ratchet.kdf_rk(fixed("rk"), fixed("dh output"))
    next_ck, mk = ratchet.kdf_ck(fixed("ck"))
    key, nonce = ratchet.message_cipher(fixed("mk"))

    # The first pairwise (prekey) message from Alice to Bob, and a second one.
    session = pairwise.PairwiseSession.initiate(
        alice_identity, bundle_of(bob, True), ephemeral_private=ephemeral, ratchet_private=fixed("alice ratchet")
    )
    own_public = p.x25519_public(alice_identity)
    pairwise_messages = [
        {"plaintext": text, "ciphertext": session.encrypt(own_public, text.encode())}
        for text in ('{"type":"sender_key","content":{}}', "second")
    ]

    outbound = sender_keys.OutboundSession(CONVERSATION, fixed("sender signing"), fixed("sender chain"))
    exported = outbound.export()
    group_messages = []
    for text in ('{"body":"hello, group"}', '{"body":"second message"}'):
        ciphertext, envelope = outbound.encrypt(ALICE, "ALICELAPTOP", text.encode())
        session_raw = formats.b64decode(envelope["session_id"])
        group_messages.append(
            {
                "plaintext": text,
                "aad": sender_keys.aad(CONVERSATION, ALICE, "ALICELAPTOP", session_raw, envelope["index"]).hex(),
                "ciphertext": ciphertext,
                "e2ee": envelope,
            }
        )

    file_plaintext = b"a file's bytes\n"
    blob, file_info = files.encrypt_file(file_plaintext, key=fixed("file key"), nonce=fixed("file nonce")[:12])
    backup_blob = backup.seal(
        "correct horse battery staple",
        {"inbound": {}},
        salt=fixed("backup salt")[:16],
        nonce=fixed("backup nonce")[:12],
    )
    return {
        "about": "Parley E2EE v1 test vectors; docs/e2ee.md explains every field.",
        "base64url": [
            {"hex": data.hex(), "encoded": b64encode(data)}
            for data in (b"", b"\x00", b"\xfb\xff", b"\xfb\xff\xfe", bytes(range(32)))
        ],
        "devices": {"alice": alice, "bob": bob},
        "x3dh": {
            "info": x3dh.INFO.decode(),
            "initiator": "alice",
            "responder": "bob",
            "cases": x3dh_vectors,
        },
        "double_ratchet": {
            "kdf_rk": {"rk": fixed("rk").hex(), "dh_out": fixed("dh output").hex(), "new_rk": rk.hex(), "ck": ck.hex()},
            "kdf_ck": {"ck": fixed("ck").hex(), "next_ck": next_ck.hex(), "mk": mk.hex()},
            "message_cipher": {"mk": fixed("mk").hex(), "key": key.hex(), "nonce": nonce.hex()},
        },
        "pairwise": {
            "from": "alice",
            "to": "bob",
            "ratchet_private": fixed("alice ratchet").hex(),
            "messages": pairwise_messages,
        },
        "sender_keys": {
            "conversation_id": CONVERSATION,
            "sender_user_id": ALICE,
            "sender_device_id": "ALICELAPTOP",
            "signing_private": fixed("sender signing").hex(),
            "shared": exported,
            "messages": group_messages,
        },
        "file": {"plaintext_hex": file_plaintext.hex(), "blob_hex": blob.hex(), "info": file_info},
        "key_backup": {
            "passphrase": "correct horse battery staple",
            "blob": backup_blob,
            "payload": {"inbound": {}},
        },
        "safety_number": {
            "user_a": ALICE,
            "signing_keys_a": [alice["identity_keys"]["signing_key"]],
            "user_b": BOB,
            "signing_keys_b": [bob["identity_keys"]["signing_key"]],
            "number": safety.safety_number(
                ALICE,
                [formats.b64decode(alice["identity_keys"]["signing_key"])],
                BOB,
                [formats.b64decode(bob["identity_keys"]["signing_key"])],
            ),
        },
    }


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
