"""End-to-end encryption in the web client (issue #21, docs/e2ee.md): the browser's
WebCrypto implementation (``src/parley/web/static/e2ee/``) against part 1's test vectors and
the Python SDK, in Debian's Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.browser_helpers import *  # noqa: F403
from tests.browser_helpers import Browser
from tests.e2ee_vectors import build

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "e2ee_vectors.json").read_text())
CHECK_JS = (Path(__file__).parent / "js" / "e2ee_vectors_check.js").read_text()


def expected_vector_results() -> dict[str, Any]:
    """What tests/js/e2ee_vectors_check.js must return: every value of the JSON."""
    v = VECTORS
    out: dict[str, Any] = {}
    for i, case in enumerate(v["base64url"]):
        out[f"b64.encode.{i}"] = case["encoded"]
        out[f"b64.decode.{i}"] = case["hex"]
    for bad in ("A", "AB=", "A+B/", "QR"):
        out[f"b64.refused.{bad}"] = True
    for name, d in v["devices"].items():
        out |= {
            f"devices.{name}.signing_key": d["identity_keys"]["signing_key"],
            f"devices.{name}.identity_key": d["identity_keys"]["identity_key"],
            f"devices.{name}.identity_payload": d["identity_payload"],
            f"devices.{name}.identity_signature": d["identity_keys"]["signature"],
            f"devices.{name}.signed_prekey_public": d["signed_prekey"]["public_key"],
            f"devices.{name}.signed_prekey_payload": d["signed_prekey_payload"],
            f"devices.{name}.signed_prekey_signature": d["signed_prekey"]["signature"],
            f"devices.{name}.one_time_prekey_public": d["one_time_prekey"]["public_key"],
            f"devices.{name}.bundle_verifies": True,
            f"devices.{name}.forged_bundle_refused": True,
        }
    for i, case in enumerate(v["x3dh"]["cases"]):
        out[f"x3dh.{i}.ephemeral_public"] = case["ephemeral_public"]
        for side in ("initiator", "responder"):
            out[f"x3dh.{i}.{side}.shared_key"] = case["shared_key"]
            out[f"x3dh.{i}.{side}.associated_data"] = case["associated_data"]
    dr = v["double_ratchet"]
    out |= {
        "ratchet.kdf_rk.new_rk": dr["kdf_rk"]["new_rk"],
        "ratchet.kdf_rk.ck": dr["kdf_rk"]["ck"],
        "ratchet.kdf_ck.next_ck": dr["kdf_ck"]["next_ck"],
        "ratchet.kdf_ck.mk": dr["kdf_ck"]["mk"],
        "ratchet.message_cipher.key": dr["message_cipher"]["key"],
        "ratchet.message_cipher.nonce": dr["message_cipher"]["nonce"],
    }
    for i, m in enumerate(v["pairwise"]["messages"]):
        out[f"pairwise.{i}.ciphertext"] = m["ciphertext"]
        out[f"pairwise.{i}.decrypted"] = m["plaintext"]
    out["pairwise.replay_refused"] = True
    out["pairwise.tamper_refused"] = True
    sk = v["sender_keys"]
    out["sender_keys.shared"] = sk["shared"]
    for i, m in enumerate(sk["messages"]):
        out[f"sender_keys.{i}.ciphertext"] = m["ciphertext"]
        out[f"sender_keys.{i}.e2ee"] = m["e2ee"]
        out[f"sender_keys.{i}.aad"] = m["aad"]
        out[f"sender_keys.{i}.decrypted"] = m["plaintext"]
    out["sender_keys.replay_refused"] = True
    out["sender_keys.wrong_index_refused"] = True
    out["file.blob_hex"] = v["file"]["blob_hex"]
    out["file.info"] = v["file"]["info"]
    out["file.decrypted_hex"] = v["file"]["plaintext_hex"]
    out["key_backup.blob"] = v["key_backup"]["blob"]
    out["key_backup.payload"] = v["key_backup"]["payload"]
    out["key_backup.wrong_passphrase_refused"] = True
    out["safety_number.ab"] = out["safety_number.ba"] = v["safety_number"]["number"]
    return out


def test_the_browser_and_the_sdk_agree_on_every_vector(shots: Browser) -> None:
    # The SDK reproduces the published file in the same run as the browser checks it.
    assert build() == VECTORS
    context = shots.context()
    page = shots.page(context)
    page.goto("/login")
    results = page.evaluate(CHECK_JS, VECTORS)
    expected = expected_vector_results()
    assert set(results) == set(expected)
    wrong = {k: (results[k], expected[k]) for k in expected if results[k] != expected[k]}
    assert not wrong
    assert not shots.errors
