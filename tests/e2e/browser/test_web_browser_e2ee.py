"""End-to-end encryption in the web client (issue #21, docs/e2ee.md): the browser's
WebCrypto implementation (``src/parley/web/static/e2ee/``) against part 1's test vectors and
the Python SDK, in Debian's Chromium."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from parley.client import ParleyClient
from tests.support.browser_e2ee import browser_device, in_sdk, nothing, sdk_opens_encrypted_dm
from tests.support.browser_helpers import *  # noqa: F403
from tests.support.browser_helpers import (
    UPDATE_SCREENSHOTS,
    Browser,
    Rest,
    conversation_link,
    dismiss_notifications_card,
    message,
    open_as,
)
from tests.support.e2ee_vectors import build
from tests.support.paths import SCREENSHOTS, SUPPORT
from tests.support.server_process import ServerProcess

VECTORS: dict[str, Any] = json.loads((SUPPORT / "e2ee_vectors.json").read_text())
CHECK_JS = (SUPPORT / "js" / "e2ee_vectors_check.js").read_text()


def expected_vector_results() -> dict[str, Any]:
    """What tests/support/js/e2ee_vectors_check.js must return: every value of the JSON."""
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


def test_a_browser_is_a_device_the_sdk_sees(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e2a"), rest.user("e2b")
    page = open_as(shots, alice)
    device_id = browser_device(page)
    assert device_id.startswith("WB")
    listed = rest.call(alice, "GET", "/devices")["devices"]
    assert [d["device_id"] for d in listed] == [device_id]
    assert listed[0]["display_name"].endswith("(web)")
    count = rest.call(alice, "GET", "/keys/count", params={"device_id": device_id})
    assert count["one_time_prekeys"] == 50 and count["signed_prekey_id"] == 1

    # The SDK verifies the browser's self-signatures and lists the device.
    async def devices_of_alice(client: ParleyClient) -> list[dict[str, Any]]:
        assert client.e2ee is not None
        return await client.e2ee.user_devices(alice.id)

    seen = in_sdk(web_server, bob, tmp_path / "bob", devices_of_alice)
    assert [d["device_id"] for d in seen] == [device_id]
    assert seen[0]["identity_keys"] == listed[0]["identity_keys"]

    # A reload (or a second tab) keeps the same device and its keys: no new upload of
    # prekeys, no change the SDK would flag.
    page.reload()
    assert browser_device(page) == device_id
    again = rest.call(alice, "GET", "/devices")["devices"]
    assert [d["identity_keys"] for d in again] == [listed[0]["identity_keys"]]
    assert rest.call(alice, "GET", "/keys/count", params={"device_id": device_id})["one_time_prekeys"] == 50
    # The private keys never leave the browser: not extractable from IndexedDB either.
    extractable = page.evaluate(
        """async (userId) => {
            const idb = await import("/static/e2ee/idb.js");
            const state = await idb.load(userId);
            return [state.signing.privateKey.extractable, state.identity.privateKey.extractable,
                    state.signedPrekeys[1].privateKey.extractable,
                    Object.values(state.oneTimePrekeys).some((k) => k.privateKey.extractable)];
        }""",
        alice.id,
    )
    assert extractable == [False, False, False, False]
    assert not shots.errors


def test_prekeys_are_replenished_when_claimed_below_the_watermark(
    shots: Browser, rest: Rest
) -> None:
    alice, bob = rest.user("e2c"), rest.user("e2d")
    rest.direct(bob, alice)
    page = open_as(shots, alice)
    device_id = browser_device(page)
    for _ in range(35):  # 50 → 15 left, below the watermark of 20
        rest.call(bob, "POST", "/keys/claim", json={"devices": [{"user_id": alice.id, "device_id": device_id}]})
    assert rest.call(alice, "GET", "/keys/count", params={"device_id": device_id})["one_time_prekeys"] == 15
    page.reload()
    browser_device(page)
    # The next start tops up by a batch; the new ids follow the old ones.
    assert rest.call(alice, "GET", "/keys/count", params={"device_id": device_id})["one_time_prekeys"] == 65
    assert not shots.errors


def test_the_browser_reads_what_the_sdk_encrypts(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e2e", "Ann"), rest.user("e2f", "Ben Sdk")
    state = tmp_path / "bob"

    # Sent before Alice's browser has a device: its key never reaches that browser.
    async def before(client: ParleyClient) -> dict[str, Any]:
        dm = await client.create_direct(alice.id, encrypted=True)
        await client.send_message(dm["id"], "sealed before the browser existed")
        return dict(dm)

    dm = in_sdk(web_server, bob, state, before)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    undecrypted = page.locator(".msg-undecrypted", has_text="Can't decrypt this message yet")
    undecrypted.wait_for()
    page.locator(".conv-header .conv-lock").wait_for()
    conversation_link(page, dm["id"]).locator(".conv-lock").wait_for()

    # Sent now: the SDK shares its key with the browser's device first; the open page
    # decrypts it live, and the server holds ciphertext only.
    async def after(client: ParleyClient) -> dict[str, Any]:
        return dict(await client.send_message(dm["id"], "hello **browser** from the SDK"))

    sent = in_sdk(web_server, bob, state, after)
    message(page, "hello browser from the SDK").wait_for()
    assert page.locator(".msg-text strong", has_text="browser").count() == 1  # Markdown as usual
    assert undecrypted.count() == 1
    stored = next(m for m in rest.history(alice, dm["id"]) if m["id"] == sent["id"])
    assert stored["content"] == "" and stored["ciphertext"] and stored["e2ee"]["sender_device_id"]

    # Reloaded: the history is read again from the keys kept in IndexedDB.
    page.reload()
    message(page, "hello browser from the SDK").wait_for()
    expect(page.locator(".msg-undecrypted")).to_have_count(1)
    # The sidebar's preview is decrypted on its own, after the open conversation: wait for it.
    expect(conversation_link(page, dm["id"])).to_contain_text("hello")
    dismiss_notifications_card(page)
    shot = page.screenshot()  # the lock, a decrypted message and one that cannot be
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-light-desktop.png").write_bytes(shot)

    # Ciphertext that no key opens: forged under the real session (the signature fails) and
    # under a session nobody shared. Each reads as undecryptable; the page goes on.
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    for session_id in (stored["e2ee"]["session_id"], b64(secrets.token_bytes(32))):
        envelope = stored["e2ee"] | {"session_id": session_id, "index": 3}
        rest.send(bob, dm["id"], "", ciphertext=b64(secrets.token_bytes(120)), e2ee=envelope)
    # Damaged ciphertext says so (no retry: no key would open it); the missing key stays "yet".
    expect(page.locator(".msg-undecrypted.is-damaged")).to_have_count(2)
    expect(page.locator(".msg-undecrypted.is-damaged").first).to_contain_text("does not open with its key")
    expect(undecrypted).to_have_count(1)
    message(page, "hello browser from the SDK").wait_for()
    expect(conversation_link(page, dm["id"])).to_contain_text("Encrypted message")
    assert not shots.errors


def test_the_sdk_reads_what_the_browser_encrypts(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e2g", "Alice Web"), rest.user("e2h", "Bob Sdk")
    state = tmp_path / "bob"

    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)  # Bob's SDK device exists first
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    composer = page.get_by_role("textbox", name="Message Bob Sdk")
    for text in ("first from the browser", "second, with ünïcödé and 漢字"):
        composer.fill(text)
        composer.press("Enter")
        message(page, text).wait_for()
    # Acknowledged (no longer pending) before the SDK reads.
    page.locator(".msg.is-pending").first.wait_for(state="detached")
    # An edit is new ciphertext too.
    first = page.locator(".msg", has_text="first from the browser")
    first.hover()
    first.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("first from the browser, edited")
    editor.press("Enter")
    page.locator(".msg", has_text="first from the browser, edited").locator(".msg-edited").wait_for()
    stored = [m for m in rest.history(bob, dm["id"]) if m["kind"] == "text"]
    assert len(stored) == 2 and all(m["content"] == "" and m["ciphertext"] for m in stored)
    assert stored[0]["edited_at"]

    async def read(client: ParleyClient) -> list[dict[str, Any]]:
        page_ = await client.history(dm["id"])
        return [m for m in page_["messages"] if m["kind"] == "text"]

    read_by_sdk = in_sdk(web_server, bob, state, read)
    assert [m["content"] for m in read_by_sdk] == ["first from the browser, edited", "second, with ünïcödé and 漢字"]
    assert all(m["decrypted"] for m in read_by_sdk)

    # And back: the SDK's answer is read in the browser over the same channel.
    async def answer(client: ParleyClient) -> None:
        await client.send_message(dm["id"], "got both, thanks")

    in_sdk(web_server, bob, state, answer)
    message(page, "got both, thanks").wait_for()
    page.reload()
    for text in ("first from the browser, edited", "got both, thanks"):
        message(page, text).wait_for()
    assert page.locator(".msg-undecrypted").count() == 0
    assert not shots.errors


def test_a_browser_and_two_sdk_users_in_an_encrypted_group(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, carol = rest.user("e2i", "Alice Web"), rest.user("e2j"), rest.user("e2k")

    in_sdk(web_server, carol, tmp_path / "carol", nothing)  # Carol's device exists

    async def create(client: ParleyClient) -> dict[str, Any]:
        return dict(await client.create_group("Sealed room", [alice.id, carol.id], encrypted=True))

    group = in_sdk(web_server, bob, tmp_path / "bob", create)
    page = open_as(shots, alice, f"/c/{group['id']}")
    browser_device(page)
    composer = page.get_by_role("textbox", name="Message Sealed room")
    composer.fill("hello group from the browser")
    composer.press("Enter")
    message(page, "hello group from the browser").wait_for()
    page.locator(".msg.is-pending").first.wait_for(state="detached")

    async def read(client: ParleyClient) -> list[str]:
        history = await client.history(group["id"])
        return [m["content"] for m in history["messages"] if m["kind"] == "text" and m["decrypted"]]

    assert in_sdk(web_server, bob, tmp_path / "bob", read) == ["hello group from the browser"]
    assert in_sdk(web_server, carol, tmp_path / "carol", read) == ["hello group from the browser"]

    async def answer(client: ParleyClient) -> None:
        await client.send_message(group["id"], "carol read it")

    in_sdk(web_server, carol, tmp_path / "carol", answer)
    message(page, "carol read it").wait_for()
    assert page.locator(".msg-undecrypted").count() == 0
    assert not shots.errors


def test_the_safety_number_matches_the_sdks(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e2l", "Ann"), rest.user("e2m", "Ben Sdk")
    state = tmp_path / "bob"

    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    dismiss_notifications_card(page)
    page.get_by_role("button", name="Show details of Ben Sdk").click()
    shown = page.get_by_label("Safety number")
    expect(shown).to_have_text(re.compile(r"^(\d{5} ){11}\d{5}$"))

    async def number(client: ParleyClient) -> str:
        assert client.e2ee is not None
        return await client.e2ee.safety_number(alice.id)

    assert shown.inner_text() == in_sdk(web_server, bob, state, number)
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-safety-number-light-desktop.png").write_bytes(page.screenshot())
    assert page.locator(".e2ee-warning").count() == 0

    # As if the server swapped the keys of Bob's device: what this browser remembers no
    # longer matches the list, so the device is left out and the change flagged.
    page.evaluate(
        """async (userId) => {
            const idb = await import("/static/e2ee/idb.js");
            const state = await idb.load(userId);
            for (const [key, known] of Object.entries(state.knownDevices)) {
                if (!key.startsWith(userId + "|")) known.identity_key = "A".repeat(43);
            }
            await idb.save(userId, state);
        }""",
        alice.id,
    )
    page.reload()
    browser_device(page)
    page.get_by_role("button", name="Show details of Ben Sdk").click()
    details = page.get_by_role("complementary", name="Conversation details")
    expect(details.get_by_role("alert")).to_contain_text("A device of Ben Sdk changed its keys")
    expect(page.locator(".trust-banner")).to_contain_text("Ben Sdk's keys changed")
    # The number shown is over the keys listed now (the ones to compare with Ben's own
    # screen): here the server did not really swap them, so it still equals the SDK's.
    expect(shown).to_have_text(in_sdk(web_server, bob, state, number))
    assert not shots.errors


def test_a_new_encrypted_conversation_from_the_browser(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e2n", "Ann"), rest.user("e2o", "Ben Sdk")
    state = tmp_path / "bob"

    in_sdk(web_server, bob, state, nothing)  # Bob's device exists
    page = open_as(shots, alice)
    browser_device(page)
    page.get_by_role("button", name="New message").first.click()
    dialog = page.get_by_role("dialog", name="New message")
    dialog.get_by_label(re.compile("End-to-end encrypted")).check()
    dialog.get_by_role("searchbox").fill(bob.username)
    dialog.get_by_role("option", name=re.compile("Ben Sdk")).click()
    expect(page.get_by_role("heading", name=re.compile("^Ben Sdk"), level=1)).to_be_visible()
    page.locator(".conv-header .conv-lock").wait_for()
    composer = page.get_by_role("textbox", name="Message Ben Sdk")
    composer.fill("sealed from the first message on")
    composer.press("Enter")
    message(page, "sealed from the first message on").wait_for()
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    async def read(client: ParleyClient) -> list[str]:
        conversations = [c for c in await client.conversations() if c["type"] == "direct"]
        assert len(conversations) == 1 and conversations[0]["encrypted"] is True
        history = await client.history(conversations[0]["id"])
        return [m["content"] for m in history["messages"] if m["kind"] == "text" and m["decrypted"]]

    assert in_sdk(web_server, bob, state, read) == ["sealed from the first message on"]
    assert not shots.errors
