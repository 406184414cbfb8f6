"""Keys in the web client (issue #21, docs/e2ee.md): key requests between one user's devices,
the key backup across three browsers, a removed member, logout removing the device, and the
IndexedDB state encrypted at rest — in Debian's Chromium, with SDK users on the other side."""

from __future__ import annotations

import re
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
    User,
    delivered,
    dismiss_notifications_card,
    message,
    open_as,
)
from tests.support.paths import SCREENSHOTS
from tests.support.server_process import ServerProcess

PASSPHRASE = "correct horse battery staple"


def ready(page: Any) -> str:
    device = browser_device(page)
    dismiss_notifications_card(page)
    return device


def sdk_send(server: ServerProcess, user: User, state: Path, conversation_id: str, *texts: str) -> list[dict[str, Any]]:
    async def work(client: ParleyClient) -> list[dict[str, Any]]:
        return [dict(await client.send_message(conversation_id, text)) for text in texts]

    return in_sdk(server, user, state, work)


def sdk_group(server: ServerProcess, tmp_path: Path, name: str, bob: User, alice: User, carol: User) -> dict[str, Any]:
    """An encrypted group Bob (SDK) creates with Alice and Carol (SDK, her device made first)."""
    in_sdk(server, carol, tmp_path / "carol", nothing)

    async def create(client: ParleyClient) -> dict[str, Any]:
        return dict(await client.create_group(name, [alice.id, carol.id], encrypted=True))

    return in_sdk(server, bob, tmp_path / "bob", create)


def test_a_key_request_to_another_browser_makes_a_message_readable(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e4a", "Ann"), rest.user("e4b", "Ben Sdk")
    state = tmp_path / "bob"

    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    first = open_as(shots, alice, f"/c/{dm['id']}")
    ready(first)
    sdk_send(web_server, bob, state, dm["id"], "only the first browser got this key")
    message(first, "only the first browser got this key").wait_for()

    # A second browser of Alice's: a new device, which the key was never shared with.
    second = open_as(shots, alice, f"/c/{dm['id']}")
    assert ready(second) != browser_device(first)
    missing = second.locator(".msg-undecrypted", has_text="Can't decrypt this message yet")
    missing.wait_for()
    missing.get_by_role("button", name="Ask my other devices").click()
    # Asked: the first browser (open, online) answers with a forwarded key.
    message(second, "only the first browser got this key").wait_for()
    expect(second.locator(".msg-undecrypted")).to_have_count(0)
    # Kept: readable after a reload too.
    second.reload()
    message(second, "only the first browser got this key").wait_for()
    assert not shots.errors


def test_an_sdk_device_answers_a_browsers_key_request(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e4c", "Ann"), rest.user("e4d", "Ben Sdk")

    in_sdk(web_server, alice, tmp_path / "alice", nothing)  # Alice's SDK device
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, tmp_path / "bob")
    sdk_send(web_server, bob, tmp_path / "bob", dm["id"], "held by the SDK only")
    page = open_as(shots, alice, f"/c/{dm['id']}")
    ready(page)
    missing = page.locator(".msg-undecrypted", has_text="Can't decrypt this message yet")
    if UPDATE_SCREENSHOTS:
        missing.wait_for()
        (SCREENSHOTS / "e2ee-cant-decrypt-light-desktop.png").write_bytes(page.screenshot())
    missing.get_by_role("button", name="Ask my other devices").click()
    # Waiting until a device of Alice's answers (her SDK is not running yet).
    expect(page.locator(".msg-undecrypted.is-waiting")).to_contain_text("Waiting for keys from your other devices")
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-waiting-for-keys-light-desktop.png").write_bytes(page.screenshot())

    # Alice's SDK reads its inbox (as it does when it runs): it answers its own user's device.
    async def sync(client: ParleyClient) -> int:
        assert client.e2ee is not None
        return await client.e2ee.sync_inbox()

    assert in_sdk(web_server, alice, tmp_path / "alice", sync) >= 1
    message(page, "held by the SDK only").wait_for()
    assert not shots.errors


def test_two_browsers_then_a_third_restored_from_the_backup_read_the_same_history(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, carol = rest.user("e4e", "Alice Web"), rest.user("e4f", "Bob Sdk"), rest.user("e4g")
    group = sdk_group(web_server, tmp_path, "Backed up", bob, alice, carol)
    first = open_as(shots, alice, f"/c/{group['id']}")
    ready(first)
    second = open_as(shots, alice, f"/c/{group['id']}")
    ready(second)
    history = ["from bob, one", "from bob, two"]
    sdk_send(web_server, bob, tmp_path / "bob", group["id"], *history)
    composer = first.get_by_role("textbox", name="Message Backed up")
    composer.fill("from alice's first browser")
    composer.press("Enter")
    delivered(first, "from alice's first browser")
    history.append("from alice's first browser")
    for page in (first, second):
        for text in history:
            message(page, text).wait_for()
        expect(page.locator(".msg-undecrypted")).to_have_count(0)

    # A recovery passphrase set in the first browser: Settings → Security → Key backup.
    first.goto("/settings")
    card = first.get_by_role("region", name="Key backup")
    expect(card).to_contain_text("No key backup yet")
    card.get_by_label("Recovery passphrase").fill("too short")
    card.get_by_role("button", name="Back up keys").click()
    expect(card.get_by_role("alert")).to_contain_text("at least 10 characters")
    card.get_by_label("Recovery passphrase").fill(PASSPHRASE)
    card.get_by_role("button", name="Back up keys").click()
    # Two sessions: Bob's chain and this browser's own.
    expect(card.get_by_role("status")).to_contain_text("Backed up 2 conversation keys")
    expect(card).to_contain_text("Backed up (version 1")
    expect(card).to_contain_text("New keys are backed up automatically from this browser")
    stored = rest.call(alice, "GET", "/key-backup")["backup"]
    assert all(text not in stored["data"] for text in history)

    # A key that arrives later (Carol's first message: her own sender key) is backed up by
    # itself, under the key the passphrase derived (remembered, non-extractable).
    sdk_send(web_server, carol, tmp_path / "carol", group["id"], "from carol, after the backup")
    history.append("from carol, after the backup")
    first.locator('html[data-e2ee-backup-version="2"]').wait_for(state="attached")
    message(second, "from carol, after the backup").wait_for()

    # A third browser: a new device that no key was shared with reads nothing yet...
    third = open_as(shots, alice, f"/c/{group['id']}")
    ready(third)
    expect(third.locator(".msg-undecrypted", has_text="Can't decrypt this message yet")).to_have_count(4)
    # ...until the backup is restored (a wrong passphrase is refused first).
    third.goto("/settings")
    card = third.get_by_role("region", name="Key backup")
    card.get_by_label("Passphrase to restore").fill("not the passphrase at all")
    card.get_by_role("button", name="Restore keys").click()
    expect(card.get_by_role("alert")).to_contain_text("That passphrase does not open your key backup")
    card.get_by_label("Passphrase to restore").fill(PASSPHRASE)
    card.get_by_role("button", name="Restore keys").click()
    expect(card.get_by_role("status")).to_contain_text("Restored 3 conversation keys")
    expect(card).to_contain_text("New keys are backed up automatically from this browser")
    if UPDATE_SCREENSHOTS:
        card.get_by_role("status").scroll_into_view_if_needed()
        (SCREENSHOTS / "e2ee-key-backup-light-desktop.png").write_bytes(third.screenshot())
    third.goto(f"/c/{group['id']}")
    for text in history:
        message(third, text).wait_for()
    expect(third.locator(".msg-undecrypted")).to_have_count(0)

    # The SDK restores the same blob: the format is shared.
    async def restore(client: ParleyClient) -> list[str]:
        assert client.e2ee is not None
        await client.e2ee.restore_keys(PASSPHRASE)
        page_ = await client.history(group["id"])
        return [m["content"] for m in page_["messages"] if m["kind"] == "text" and m["decrypted"]]

    assert in_sdk(web_server, alice, tmp_path / "alice-sdk", restore) == history
    assert not shots.errors


def test_a_removed_member_cannot_read_what_is_sent_after_the_removal(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob, carol = rest.user("e4h", "Alice Web"), rest.user("e4i", "Bob Sdk"), rest.user("e4j")
    group = sdk_group(web_server, tmp_path, "Rotating", bob, alice, carol)
    page = open_as(shots, alice, f"/c/{group['id']}")
    ready(page)
    (before,) = sdk_send(web_server, bob, tmp_path / "bob", group["id"], "while alice is in")
    message(page, "while alice is in").wait_for()

    async def remove_then_send(client: ParleyClient) -> dict[str, Any]:
        await client.remove_member(group["id"], alice.id)
        sent = dict(await client.send_message(group["id"], "after alice was removed"))
        await client.add_members(group["id"], [alice.id])
        return sent

    after = in_sdk(web_server, bob, tmp_path / "bob", remove_then_send)
    # The SDK started a new epoch without Alice's device: a new session.
    assert after["e2ee"]["session_id"] != before["e2ee"]["session_id"]

    async def read(client: ParleyClient) -> list[str]:
        page_ = await client.history(group["id"])
        return [m["content"] for m in page_["messages"] if m["kind"] == "text" and m["decrypted"]]

    assert in_sdk(web_server, carol, tmp_path / "carol", read) == ["while alice is in", "after alice was removed"]

    # Back in the group, Alice's browser still has no key for what was sent while she was out.
    page.goto("/")
    page.goto(f"/c/{group['id']}")
    message(page, "while alice is in").wait_for()
    missing = page.locator(".msg-undecrypted", has_text="Can't decrypt this message yet")
    expect(missing).to_have_count(1)
    held = page.evaluate(
        """async (userId) => {
            const idb = await import("/static/e2ee/idb.js");
            return Object.values((await idb.load(userId)).inbound).map((s) => s.sessionId);
        }""",
        alice.id,
    )
    assert before["e2ee"]["session_id"] in held and after["e2ee"]["session_id"] not in held
    # What comes next reaches her again (the epoch is shared from its current index on).
    sdk_send(web_server, bob, tmp_path / "bob", group["id"], "welcome back")
    message(page, "welcome back").wait_for()
    expect(missing).to_have_count(1)
    assert not shots.errors


def test_logging_out_deletes_the_browsers_device(shots: Browser, rest: Rest) -> None:
    alice = rest.user("e4k", "Ann")
    page = open_as(shots, alice)
    device_id = ready(page)
    assert [d["device_id"] for d in rest.call(alice, "GET", "/devices")["devices"]] == [device_id]
    page.get_by_role("button", name="Your account").click()
    page.get_by_role("menuitem", name="Log out").click()
    dialog = page.get_by_role("dialog", name="Log out of this browser?")
    expect(dialog).to_contain_text("can't be read here again")
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-logout-warning-light-desktop.png").write_bytes(page.screenshot())
    # Cancelled: nothing happens.
    dialog.get_by_role("button", name="Cancel").click()
    assert page.evaluate("document.documentElement.dataset.e2eeDevice") == device_id
    page.get_by_role("button", name="Your account").click()
    page.get_by_role("menuitem", name="Log out").click()
    dialog.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # Gone from the server (keys, prekeys and inbox with it) and from this browser.
    assert rest.call(alice, "GET", "/devices")["devices"] == []
    assert rest.call(alice, "POST", "/keys/query", json={"user_ids": [alice.id]})["devices"].get(alice.id, []) == []
    left = page.evaluate(
        """async (userId) => {
            const idb = await import("/static/e2ee/idb.js");
            return (await idb.raw(userId)) === undefined;
        }""",
        alice.id,
    )
    assert left is True
    assert not shots.errors


def test_the_indexeddb_state_holds_no_plaintext_keys(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e4l", "Ann"), rest.user("e4m", "Ben Sdk")
    state = tmp_path / "bob"

    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    ready(page)
    sdk_send(web_server, bob, state, dm["id"], "a secret worth keeping")
    message(page, "a secret worth keeping").wait_for()
    composer = page.get_by_role("textbox", name="Message Ben Sdk")
    composer.fill("and one back")
    composer.press("Enter")
    delivered(page, "and one back")
    # Read straight from IndexedDB (not through idb.js): what a thief of the profile gets.
    found = page.evaluate(
        """async (userId) => {
            const { b64encode, hex } = await import("/static/e2ee/primitives.js");
            const idb = await import("/static/e2ee/idb.js");
            const state = await idb.load(userId);
            const secrets = [];
            for (const s of Object.values(state.inbound)) secrets.push(s.firstChainKey);
            for (const s of Object.values(state.outbound)) secrets.push(s.chainKey);
            for (const list of Object.values(state.pairwise)) {
                for (const s of list) secrets.push(s.ratchet.rk);
            }
            const record = await new Promise((resolve, reject) => {
                const open = indexedDB.open("parley-e2ee");
                open.onsuccess = () => {
                    const request = open.result.transaction("devices").objectStore("devices").get(userId);
                    request.onsuccess = () => resolve(request.result);
                    request.onerror = () => reject(request.error);
                };
            });
            const key = await new Promise((resolve) => {
                const open = indexedDB.open("parley-e2ee");
                open.onsuccess = () => {
                    const request = open.result.transaction("keys").objectStore("keys").get(userId);
                    request.onsuccess = () => resolve(request.result);
                };
            });
            const bytes = record.data;
            const haystack = hex(bytes) + " " + b64encode(bytes) + " " + JSON.stringify(Object.keys(record));
            const contains = (needle) => {
                for (let i = 0; i + needle.length <= bytes.length; i++) {
                    if (needle.every((b, j) => bytes[i + j] === b)) return true;
                }
                return false;
            };
            const real = secrets.filter((s) => s instanceof Uint8Array);
            return {
                fields: Object.keys(record).sort(),
                keyKinds: record.keys.map((k) => [k.constructor.name, k.extractable]),
                secrets: real.length,
                leaked: real.filter((s) => contains(s) || haystack.includes(hex(s))
                    || haystack.includes(b64encode(s))).length,
                plaintextWords: haystack.includes("inbound") || new TextDecoder().decode(bytes).includes("chainKey"),
                atRestKey: [key.constructor.name, key.extractable, key.algorithm.name, key.usages.sort()],
            };
        }""",
        alice.id,
    )
    assert found["fields"] == ["data", "format", "iv", "keys"]
    assert found["keyKinds"] and all(kind == ["CryptoKey", False] for kind in found["keyKinds"])
    assert found["secrets"] >= 3  # Bob's chain, Alice's own chain and at least one ratchet root
    assert found["leaked"] == 0 and found["plaintextWords"] is False
    assert found["atRestKey"] == ["CryptoKey", False, "AES-GCM", ["decrypt", "encrypt"]]
    # The app still reads everything after a reload (the state opens with that key).
    page.reload()
    message(page, "a secret worth keeping").wait_for()
    assert not shots.errors


def test_restoring_without_a_backup_or_from_a_broken_one_says_so(shots: Browser, rest: Rest) -> None:
    alice = rest.user("e4n", "Ann")
    page = open_as(shots, alice, "/settings")
    ready(page)
    card = page.get_by_role("region", name="Key backup")
    card.get_by_label("Passphrase to restore").fill(PASSPHRASE)
    card.get_by_role("button", name="Restore keys").click()
    expect(card.get_by_role("alert")).to_contain_text("There is no key backup for your account yet")
    # The server holds whatever a client put there: a blob that is no backup (not JSON,
    # another format, fields missing) is refused like a wrong passphrase; nothing changes.
    version = 0
    broken = '{"v": 1, "kdf": "pbkdf2-sha256", "iterations": 0, "salt": "A+/=", "nonce": "", "ciphertext": ""}'
    for junk in ("not json at all ☃", '{"v": 2, "kdf": "scrypt"}', '{"v": 1, "kdf": "pbkdf2-sha256"}', broken):
        put = rest.call(alice, "PUT", "/key-backup", json={"data": junk, "if_version": version})
        version = put["backup"]["version"]
        card.get_by_role("button", name="Restore keys").click()
        expect(card.get_by_role("alert")).to_contain_text("That passphrase does not open your key backup")
        card.get_by_role("alert").evaluate("(el) => { el.textContent = ''; }")
    # Backing up over it with a passphrase that does not open it offers to replace it.
    card.get_by_label("Recovery passphrase").fill(PASSPHRASE)
    card.get_by_role("button", name="Back up keys").click()
    expect(card.get_by_role("alert")).to_contain_text("This passphrase does not open your existing key backup")
    card.get_by_role("button", name="Replace it with a new backup").click()
    expect(card.get_by_role("status")).to_contain_text("Backed up 0 conversation keys")
    assert rest.call(alice, "GET", "/key-backup")["backup"]["version"] == version + 1
    assert not shots.errors
