"""The SDK's protocol code against itself (the vectors in tests/support/e2ee_vectors.json pin
the byte formats; test_e2ee_vectors.py checks them): X3DH agreement, the Double Ratchet
in and out of order, with tampering and bounds, sender keys with late joiners, replays
and forgeries, and the pairwise wire format."""

from __future__ import annotations

import json
import os

import pytest

from parley.client.e2ee import primitives as p
from parley.client.e2ee import x3dh
from parley.client.e2ee.pairwise import PairwiseSession, parse_wire
from parley.client.e2ee.ratchet import MAX_SKIP, RatchetState
from parley.client.e2ee.safety import safety_number
from parley.client.e2ee.sender_keys import InboundSession, OutboundSession, ReplayError
from parley.e2ee import formats
from parley.e2ee.formats import b64encode


def bundle_for(user_id: str, device_id: str, with_otk: bool = True) -> tuple[x3dh.Bundle, dict[str, bytes]]:
    keys = {
        "signing": p.ed25519_private(),
        "identity": p.x25519_private(),
        "spk": p.x25519_private(),
        "otk": p.x25519_private(),
    }
    signing_pub = p.ed25519_public(keys["signing"])
    identity_pub = p.x25519_public(keys["identity"])
    spk_pub = p.x25519_public(keys["spk"])
    bundle = x3dh.Bundle(
        user_id=user_id,
        device_id=device_id,
        signing_key=signing_pub,
        identity_key=identity_pub,
        identity_signature=p.sign(keys["signing"], formats.identity_payload(user_id, device_id, signing_pub, identity_pub)),
        signed_prekey_id=1,
        signed_prekey=spk_pub,
        signed_prekey_signature=p.sign(keys["signing"], formats.signed_prekey_payload(1, spk_pub)),
        one_time_prekey_id=7 if with_otk else None,
        one_time_prekey=p.x25519_public(keys["otk"]) if with_otk else None,
    )
    return bundle, keys


@pytest.mark.parametrize("with_otk", [True, False])
def test_x3dh_both_sides_agree(with_otk: bool) -> None:
    bob_bundle, bob = bundle_for("B" * 26, "phone", with_otk)
    alice_identity = p.x25519_private()
    started = x3dh.initiate(alice_identity, bob_bundle)
    sk, ad = x3dh.respond(
        bob["identity"], bob["spk"], bob["otk"] if with_otk else None,
        p.x25519_public(alice_identity), started.ephemeral_public,
    )
    assert sk == started.shared_key and ad == started.associated_data and len(sk) == 32


def test_x3dh_refuses_forged_bundles() -> None:
    bundle, _ = bundle_for("B" * 26, "phone")
    other = p.x25519_public(p.x25519_private())
    for change in ({"signed_prekey": other}, {"identity_key": other}, {"device_id": "laptop"}):
        values = {f: getattr(bundle, f) for f in bundle.__slots__} | change
        with pytest.raises(x3dh.BundleError):
            x3dh.initiate(p.x25519_private(), x3dh.Bundle(**values))


def pair() -> tuple[RatchetState, RatchetState, bytes]:
    sk = os.urandom(32)
    bob_spk = p.x25519_private()
    return RatchetState.init_alice(sk, p.x25519_public(bob_spk)), RatchetState.init_bob(sk, bob_spk), b"AD"


def test_ratchet_in_order_out_of_order_and_both_ways() -> None:
    alice, bob, ad = pair()
    sent = [alice.encrypt(f"a{i}".encode(), ad) for i in range(5)]
    assert bob.decrypt(*sent[0], ad) == b"a0"
    assert bob.decrypt(*sent[3], ad) == b"a3"  # a1, a2 skipped: keys kept
    reply = bob.encrypt(b"b0", ad)
    assert alice.decrypt(*reply, ad) == b"b0"
    more = alice.encrypt(b"a5", ad)  # a new DH ratchet step
    assert bob.decrypt(*more, ad) == b"a5"
    assert bob.decrypt(*sent[2], ad) == b"a2" and bob.decrypt(*sent[1], ad) == b"a1"
    assert bob.decrypt(*sent[4], ad) == b"a4"
    with pytest.raises(p.DecryptionError):  # a replay: its key was used and forgotten
        bob.decrypt(*sent[4], ad)


def test_ratchet_failures_leave_the_state_unchanged() -> None:
    alice, bob, ad = pair()
    header, body = alice.encrypt(b"hello", ad)
    before = json.dumps(bob.to_json())
    with pytest.raises(p.DecryptionError):
        bob.decrypt(header, body[:-1] + bytes([body[-1] ^ 1]), ad)
    with pytest.raises(p.DecryptionError):
        bob.decrypt(header, body, b"other AD")
    assert json.dumps(bob.to_json()) == before
    assert bob.decrypt(header, body, ad) == b"hello"
    # Too far ahead is refused (bounded skipping), and changes nothing.
    far = RatchetState.from_json(alice.to_json())
    for _ in range(MAX_SKIP + 2):
        far.encrypt(b"x", ad)
    header, body = far.encrypt(b"late", ad)
    with pytest.raises(p.DecryptionError):
        bob.decrypt(header, body, ad)
    # And the state survives a round trip through JSON.
    again = RatchetState.from_json(json.loads(json.dumps(bob.to_json())))
    assert again.to_json() == bob.to_json()


def test_sender_keys_late_joiners_replays_and_forgeries() -> None:
    conversation = "C" * 26
    outbound = OutboundSession.create(conversation, {"A" * 26})
    early = InboundSession.from_export("A" * 26, "laptop", outbound.export())
    first = [outbound.encrypt("A" * 26, "laptop", f"m{i}".encode()) for i in range(3)]
    late = InboundSession.from_export("A" * 26, "laptop", outbound.export())
    later = outbound.encrypt("A" * 26, "laptop", b"m3")
    assert [early.decrypt(e, c, f"id{i}") for i, (c, e) in enumerate(first)] == [b"m0", b"m1", b"m2"]
    assert late.decrypt(later[1], later[0], "id3") == b"m3"
    with pytest.raises(p.DecryptionError):  # sent before the late joiner got the key
        late.decrypt(first[0][1], first[0][0], "id0")
    assert early.decrypt(later[1], later[0], "id3") == b"m3"
    assert early.decrypt(first[1][1], first[1][0], "id1") == b"m1"  # history re-read: fine
    with pytest.raises(ReplayError):  # the same ciphertext presented as another message
        early.decrypt(first[1][1], first[1][0], "other")
    ciphertext, envelope = first[2]
    raw = bytearray(formats.b64decode(ciphertext))
    raw[0] ^= 1
    with pytest.raises(p.DecryptionError):
        early.decrypt(envelope, b64encode(bytes(raw)), "id2")
    # Bound to its conversation, sender and index: moved elsewhere, it does not verify.
    moved = InboundSession.from_export("A" * 26, "phone", outbound.export() | {"index": 0})
    with pytest.raises(p.DecryptionError):
        moved.decrypt(envelope, ciphertext, "id2")
    with pytest.raises(p.DecryptionError):
        early.decrypt(envelope | {"index": 1}, ciphertext, "idx")
    # A member holding the chain key cannot forge: the signature needs the sender's key.
    forger = OutboundSession(conversation, p.ed25519_private(), early.first_chain_key)
    forged, forged_envelope = forger.encrypt("A" * 26, "laptop", b"evil")
    with pytest.raises(p.DecryptionError):
        early.decrypt(forged_envelope | {"session_id": envelope["session_id"]}, forged, "idf")


def test_pairwise_wire_and_prekey_sessions() -> None:
    bob_bundle, bob = bundle_for("B" * 26, "phone")
    alice_identity = p.x25519_private()
    alice = PairwiseSession.initiate(alice_identity, bob_bundle)
    wire = parse_wire(alice.encrypt(p.x25519_public(alice_identity), b"hi bob"))
    assert wire["prekey"]["one_time_prekey_id"] == 7
    bob_side = PairwiseSession.respond(
        bob["identity"], bob["spk"], bob["otk"], formats.b64decode(wire["sender_key"]),
        formats.b64decode(wire["prekey"]["ephemeral_key"]),
    )
    assert bob_side.decrypt(wire) == b"hi bob"
    back = parse_wire(bob_side.encrypt(p.x25519_public(bob["identity"]), b"hi alice"))
    assert back["prekey"] is None and alice.decrypt(back) == b"hi alice"
    assert alice.prekey is None  # heard back: no more prekey messages
    for bad in ("", "not-base64!", b64encode(b"{}"), b64encode(json.dumps({"v": 2}).encode())):
        with pytest.raises(p.DecryptionError):
            parse_wire(bad)


def test_safety_numbers_match_on_both_sides_and_change_with_keys() -> None:
    a, b = [os.urandom(32)], [os.urandom(32)]
    number = safety_number("A" * 26, a, "B" * 26, b)
    assert number == safety_number("B" * 26, b, "A" * 26, a)
    assert len(number.replace(" ", "")) == 60 and number.replace(" ", "").isdigit()
    assert number != safety_number("A" * 26, a, "B" * 26, [os.urandom(32)])
