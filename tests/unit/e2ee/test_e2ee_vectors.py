"""The shared test vectors (tests/support/e2ee_vectors.json, docs/e2ee.md): the SDK produces
exactly these bytes from these inputs, and reads them back the way a receiver would —
what the browser's WebCrypto implementation (part 2) checks against the same file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley.client.e2ee import backup, files, pairwise, x3dh
from parley.client.e2ee import primitives as p
from parley.client.e2ee.sender_keys import InboundSession
from parley.e2ee import formats
from tests.support.e2ee_vectors import build
from tests.support.paths import SUPPORT

VECTORS: dict[str, Any] = json.loads((SUPPORT / "e2ee_vectors.json").read_text())


def test_the_sdk_produces_the_published_vectors() -> None:
    assert build() == VECTORS


def test_base64url_vectors() -> None:
    for case in VECTORS["base64url"]:
        assert formats.b64encode(bytes.fromhex(case["hex"])) == case["encoded"]
        assert formats.b64decode(case["encoded"]) == bytes.fromhex(case["hex"])
    for bad in ("A", "AB=", "A+B/", "QR"):
        with pytest.raises(formats.FormatError):
            formats.b64decode(bad)


def test_device_signatures_verify() -> None:
    for device in VECTORS["devices"].values():
        signing = formats.b64decode(device["identity_keys"]["signing_key"])
        assert formats.verify(
            signing, formats.b64decode(device["identity_keys"]["signature"]), bytes.fromhex(device["identity_payload"])
        )
        assert formats.verify(
            signing, formats.b64decode(device["signed_prekey"]["signature"]), bytes.fromhex(device["signed_prekey_payload"])
        )


def test_x3dh_responder_derives_the_same_key() -> None:
    alice, bob = VECTORS["devices"]["alice"], VECTORS["devices"]["bob"]
    for case in VECTORS["x3dh"]["cases"]:
        sk, ad = x3dh.respond(
            bytes.fromhex(bob["identity_private"]),
            bytes.fromhex(bob["signed_prekey_private"]),
            bytes.fromhex(bob["one_time_prekey_private"]) if case["one_time_prekey_used"] else None,
            formats.b64decode(alice["identity_keys"]["identity_key"]),
            formats.b64decode(case["ephemeral_public"]),
        )
        assert sk.hex() == case["shared_key"] and ad.hex() == case["associated_data"]


def test_bob_reads_alices_pairwise_messages() -> None:
    bob = VECTORS["devices"]["bob"]
    session = None
    for message in VECTORS["pairwise"]["messages"]:
        wire = pairwise.parse_wire(message["ciphertext"])
        assert wire["prekey"]["one_time_prekey_id"] == 7
        if session is None:
            session = pairwise.PairwiseSession.respond(
                bytes.fromhex(bob["identity_private"]),
                bytes.fromhex(bob["signed_prekey_private"]),
                bytes.fromhex(bob["one_time_prekey_private"]),
                formats.b64decode(wire["sender_key"]),
                formats.b64decode(wire["prekey"]["ephemeral_key"]),
            )
        assert session.decrypt(wire).decode() == message["plaintext"]


def test_members_read_the_group_messages() -> None:
    vectors = VECTORS["sender_keys"]
    inbound = InboundSession.from_export(vectors["sender_user_id"], vectors["sender_device_id"], vectors["shared"])
    for i, message in enumerate(vectors["messages"]):
        assert inbound.decrypt(message["e2ee"], message["ciphertext"], f"m{i}").decode() == message["plaintext"]


def test_file_and_backup_vectors() -> None:
    vector = VECTORS["file"]
    assert files.decrypt_file(bytes.fromhex(vector["blob_hex"]), vector["info"]).hex() == vector["plaintext_hex"]
    backup_vector = VECTORS["key_backup"]
    assert backup.unseal(backup_vector["passphrase"], backup_vector["blob"]) == backup_vector["payload"]
    with pytest.raises(p.DecryptionError):
        backup.unseal("not the passphrase", backup_vector["blob"])
