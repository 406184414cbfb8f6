"""End-to-end encryption in the web client, part 2 (issue #21, docs/e2ee.md "In the web
client"): verifying contacts (safety numbers equal in two browsers and the SDK, a QR code
drawn in the browser, "mark as verified", the warning when keys change), turning
encryption on for an existing group, and searching encrypted conversations locally — in
Debian's Chromium, against a real server and the Python SDK."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from playwright.sync_api import expect

from parley.client import ParleyClient
from tests.support.browser_e2ee import browser_device, in_sdk, nothing, sdk_opens_encrypted_dm
from tests.support.browser_helpers import *  # noqa: F403
from tests.support.browser_helpers import (
    UPDATE_SCREENSHOTS,
    Browser,
    Rest,
    User,
    conversation_link,
    dismiss_notifications_card,
    message,
    open_as,
    unique,
)
from tests.support.paths import SCREENSHOTS
from tests.support.qr_decode import read_qr
from tests.support.server_process import ServerProcess

T = TypeVar("T")
NUMBER = re.compile(r"^(\d{5} ){11}\d{5}$")


def sdk_number(server: ServerProcess, user: User, state: Path, other: User) -> str:
    async def number(client: ParleyClient) -> str:
        assert client.e2ee is not None
        return await client.e2ee.safety_number(other.id)

    return in_sdk(server, user, state, number)


def eventually(probe: Callable[[], T | None], what: str) -> T:
    """``probe``'s first answer that is not None (asked again for up to 10 seconds)."""
    deadline = time.monotonic() + 10
    while (answer := probe()) is None:
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return answer


def stored_texts(rest: Rest, user: User, conversation_id: str, count: int) -> list[dict[str, Any]]:
    """The conversation's text messages once the server holds ``count`` of them: a send is
    acknowledged (an empty "pending" list alone can be seen before the send has begun)."""

    def texts() -> list[dict[str, Any]] | None:
        found = [m for m in rest.history(user, conversation_id) if m["kind"] == "text"]
        return found if len(found) >= count else None

    found = eventually(texts, f"fewer than {count} messages stored")
    assert len(found) == count, found
    return found


def inbox_read(rest: Rest, user: User, device_id: str) -> None:
    """Wait until the device (a live browser) has read and acknowledged its to-device inbox."""

    def empty() -> bool | None:
        return not rest.call(user, "GET", "/to-device", params={"device_id": device_id})["messages"] or None

    eventually(empty, f"{device_id} left its inbox unread")


def dark_modules(svg_path: str) -> set[tuple[int, int]]:
    """(row, column) of each dark module of views/verify.js's QR path (4 modules of margin)."""
    return {(int(y) - 4, int(x) - 4) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", svg_path)}


def test_verify_a_contact_then_their_keys_change(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("tra", "Ann Web"), rest.user("trb", "Ben Both")
    dm = rest.direct(alice, bob)
    rest.call(alice, "PATCH", f"/conversations/{dm['id']}", json={"encrypted": True})
    in_sdk(web_server, bob, tmp_path / "bob", nothing, device_id="BENSDK")  # Bob has a phone...
    bob_page = open_as(shots, bob, f"/c/{dm['id']}")  # ...and a browser
    bob_browser = browser_device(bob_page)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    dismiss_notifications_card(page)

    # The same 60 digits in Alice's browser, Bob's browser and Bob's SDK device.
    page.get_by_role("button", name="Show details of Ben Both").click()
    details = page.get_by_role("complementary", name="Conversation details")
    shown = details.get_by_label("Safety number")
    expect(shown).to_have_text(NUMBER)
    number = shown.inner_text()
    dismiss_notifications_card(bob_page)
    bob_page.get_by_role("button", name="Show details of Ann Web").click()
    expect(bob_page.get_by_label("Safety number")).to_have_text(number)
    assert sdk_number(web_server, bob, tmp_path / "bob", alice) == number
    # Bob's browser showed a number over his phone's keys: it knows them from now on.

    # The verify view: the number and a QR code of it, drawn in the browser, which an
    # independent reader (tests/support/qr_decode.py) reads back.
    details.get_by_role("button", name="Verify Ben Both").click()
    dialog = page.get_by_role("dialog", name="Verify Ben Both")
    expect(dialog.get_by_label("Safety number", exact=True)).to_have_text(number)
    qr = dialog.get_by_role("img", name="QR code of the safety number with Ben Both")
    text = qr.get_attribute("data-qr-text")
    low, high = sorted([alice.id, bob.id])
    assert text == f"parley-safety-number:v1:{low}:{high}:{number.replace(' ', '')}"
    drawn = dark_modules(qr.locator("path").get_attribute("d") or "")
    size = int(qr.get_attribute("data-modules") or 0)
    assert read_qr([[(r, c) in drawn for c in range(size)] for r in range(size)]) == [text.encode()]
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-verify-light-desktop.png").write_bytes(page.screenshot())
    dialog.get_by_role("button", name="Mark as verified").click()
    expect(dialog).to_have_count(0)
    header = page.locator(".conv-header")
    expect(header.locator(".verified-badge")).to_have_text("Verified")
    expect(details.locator(".verified-badge")).to_be_visible()
    expect(page.locator(".trust-banner")).to_be_hidden()
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-verified-light-desktop.png").write_bytes(page.screenshot())
    # Kept in this browser only: after a reload, still verified.
    page.reload()
    browser_device(page)
    expect(header.locator(".verified-badge")).to_be_visible()

    # Bob re-registers his phone: the same device id, new keys. Alice's open page hears
    # of it (device.updated), the badge goes and the warning shows.
    rest.call(bob, "DELETE", "/devices/BENSDK")
    in_sdk(web_server, bob, tmp_path / "bob-again", nothing, device_id="BENSDK")
    banner = page.locator(".trust-banner")
    expect(banner).to_contain_text("Ben Both's keys changed")
    expect(header.locator(".verified-badge")).to_have_count(0)
    dismiss_notifications_card(page)
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-keys-changed-light-desktop.png").write_bytes(page.screenshot())
    # The changed device is left out of what Alice sends until she verifies again.
    composer = page.get_by_role("textbox", name="Message Ben Both")
    composer.fill("before verifying again")
    composer.press("Enter")
    stored_texts(rest, alice, dm["id"], 1)  # on the server before anything below happens

    async def read(client: ParleyClient) -> list[str]:
        history = await client.history(dm["id"])
        return [m["content"] for m in history["messages"] if m["kind"] == "text" and m["decrypted"]]

    assert in_sdk(web_server, bob, tmp_path / "bob-again", read, device_id="BENSDK") == []
    # The phone, unable to read it, asked Bob's other devices for the key: his browser read
    # the request and, the phone's keys not being the ones it knows, did not answer it.
    inbox_read(rest, bob, bob_browser)

    # Compared again (the new number is the SDK's) and marked: the device is used again.
    new_number = sdk_number(web_server, bob, tmp_path / "bob-again", alice)
    assert new_number != number
    banner.get_by_role("button", name="Verify Ben Both").click()
    dialog = page.get_by_role("dialog", name="Verify Ben Both")
    expect(dialog.get_by_role("alert")).to_contain_text("keys changed")
    expect(dialog.get_by_label("Safety number", exact=True)).to_have_text(new_number)
    dialog.get_by_role("button", name="Mark as verified").click()
    expect(banner).to_be_hidden()
    expect(header.locator(".verified-badge")).to_be_visible()
    composer.fill("after verifying again")
    composer.press("Enter")
    # A new epoch for the device with new keys: nothing sent while it was left out is in a
    # chain Alice shares with it (and Bob's browser forwards it nothing, as above).
    assert len({m["e2ee"]["session_id"] for m in stored_texts(rest, alice, dm["id"], 2)}) == 2
    assert in_sdk(web_server, bob, tmp_path / "bob-again", read, device_id="BENSDK") == ["after verifying again"]

    # A new device of a verified contact changes the number: the badge goes, and the
    # banner says the number changed.
    in_sdk(web_server, bob, tmp_path / "bob-tablet", nothing, device_id="BENTAB")
    expect(banner).to_contain_text("Ben Both's safety number changed since you verified it")
    expect(header.locator(".verified-badge")).to_have_count(0)
    assert not shots.errors


def test_turn_on_encryption_as_admin_never_as_member(shots: Browser, rest: Rest, web_server: ServerProcess) -> None:
    alice, bob = rest.user("trc", "Ann Admin"), rest.user("trd", "Ben Member")
    group = rest.group(alice, "Open plans", [bob])
    bob_page = open_as(shots, bob, f"/c/{group['id']}")
    browser_device(bob_page)
    page = open_as(shots, alice, f"/c/{group['id']}")
    browser_device(page)
    dismiss_notifications_card(page)
    dismiss_notifications_card(bob_page)

    # A member sees no switch, and the server refuses one all the same.
    bob_page.get_by_role("button", name="Group settings").click()
    bob_section = bob_page.get_by_role("region", name="Encryption")
    expect(bob_section).to_contain_text("A group admin can turn on end-to-end encryption")
    expect(bob_section.get_by_role("button")).to_have_count(0)
    refused = rest.http.patch(f"/api/v1/conversations/{group['id']}", json={"encrypted": True}, headers=bob.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"

    page.get_by_role("button", name="Group settings").click()
    section = page.get_by_role("region", name="Encryption")
    section.get_by_role("button", name="Turn on encryption").click()
    confirm = page.get_by_role("dialog", name="Turn on end-to-end encryption?")
    confirm.get_by_role("button", name="Turn on encryption").click()
    # Both pages switch (the member's through conversation.updated): lock, section, line.
    for each in (page, bob_page):
        each.locator(".conv-header .conv-lock").wait_for()
        conversation_link(each, group["id"]).locator(".conv-lock").wait_for()
        expect(each.get_by_role("region", name="Encryption")).to_contain_text("End-to-end encrypted")
    page.locator(".msg-system-text", has_text="You turned on end-to-end encryption").wait_for()
    bob_page.locator(".msg-system-text", has_text="Ann Admin turned on end-to-end encryption").wait_for()
    composer = page.get_by_role("textbox", name="Message Open plans")
    composer.fill("sealed from now on")
    composer.press("Enter")
    message(bob_page, "sealed from now on").wait_for()
    stored = [m for m in rest.history(bob, group["id"]) if m["kind"] == "text"]
    assert [m["content"] for m in stored] == [""] and stored[0]["ciphertext"]

    # Members verify each other from the member list: the same number on both sides.
    numbers = []
    for each, other in ((page, "Ben Member"), (bob_page, "Ann Admin")):
        each.get_by_role("button", name=f"Actions for {other}").click()
        each.get_by_role("menuitem", name="Verify").click()
        dialog = each.get_by_role("dialog", name=f"Verify {other}")
        expect(dialog.get_by_label("Safety number", exact=True)).to_have_text(NUMBER)
        numbers.append(dialog.get_by_label("Safety number", exact=True).inner_text())
        dialog.get_by_role("button", name="Not now").click()
    assert numbers[0] == numbers[1]
    assert not shots.errors


def test_search_finds_encrypted_messages_locally_only(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("tre", "Ann Finder"), rest.user("trf", "Ben Sdk")
    word = unique("quokka")  # a word nobody else sends
    state = tmp_path / "bob"

    async def write(client: ParleyClient) -> dict[str, Any]:
        dm = await client.create_direct(alice.id, encrypted=True)
        return dict(dm)

    in_sdk(web_server, bob, state, nothing)
    page = open_as(shots, alice)
    browser_device(page)
    dm = in_sdk(web_server, bob, state, write)

    async def send(client: ParleyClient) -> list[str]:
        texts = [f"The {word} migrates at dawn", "東京タワーに行く", "nothing to see here"]
        return [(await client.send_message(dm["id"], t))["id"] for t in texts]

    ids = in_sdk(web_server, bob, state, send)
    page.goto(f"/c/{dm['id']}")
    message(page, f"The {word} migrates at dawn").wait_for()
    message(page, "東京タワーに行く").wait_for()

    # Words, prefixes and CJK substrings, as the server's search would find them.
    for query, found in ((word, ids[0]), (word[:-2] + "*", ids[0]), ("タワー", ids[1]), (f'"{word} migrates"', ids[0])):
        page.goto(f"/search?q={query}")
        result = page.locator(f'.search-result[data-message-id="{found}"]')
        expect(result).to_contain_text("Found on this device")
        expect(page.locator(".search-result")).to_have_count(1)
    page.goto(f"/search?q={word}")
    expect(page.locator(".search-result")).to_contain_text("Found on this device")
    dismiss_notifications_card(page)
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-local-search-light-desktop.png").write_bytes(page.screenshot())
    # The deep link opens the message.
    page.locator(".search-result").first.click()
    expect(page).to_have_url(re.compile(f"/c/{dm['id']}/m/{ids[0]}$"))
    expect(page.locator(f"#message-{ids[0]}")).to_have_class(re.compile("is-highlighted"))

    # The server has neither the text nor a match for it.
    assert rest.call(alice, "GET", "/search", params={"q": word})["results"] == []
    database = Path(web_server.env["PARLEY_DATABASE_URL"].removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert word.encode() not in stored and "東京タワー".encode() not in stored
    # Deleted by its sender: gone from the local index too.
    rest.call(bob, "DELETE", f"/messages/{ids[0]}")
    page.goto(f"/c/{dm['id']}")
    message(page, "東京タワーに行く").wait_for()
    expect(page.locator(f"#message-{ids[0]}")).not_to_contain_text(word)
    page.goto(f"/search?q={word}")
    expect(page.locator(".search-status")).to_contain_text("No messages match")
    assert not shots.errors


# Everything a database holds, read straight from IndexedDB (not through search_index.js):
# what a thief of the browser profile gets. Every string (values, object keys, record keys
# and index keys) and every byte string, hex; null while `wanted` is not stored yet.
RAW_DATABASE_JS = """async ([name, wanted]) => {
    const db = await new Promise((resolve, reject) => {
        const request = indexedDB.open(name);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
    });
    const strings = [], blobs = [], records = [];
    const walk = (value) => {
        if (typeof value === "string") strings.push(value);
        else if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
            const bytes = new Uint8Array(value.buffer ?? value, value.byteOffset ?? 0, value.byteLength);
            blobs.push(Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
        } else if (Array.isArray(value)) value.forEach(walk);
        else if (value && typeof value === "object") {
            for (const [k, v] of Object.entries(value)) { strings.push(k); walk(v); }
        } else if (value !== null && value !== undefined) strings.push(String(value));
    };
    const read = (request) => new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
    });
    for (const storeName of db.objectStoreNames) {
        const store = db.transaction(storeName).objectStore(storeName);
        const values = await read(store.getAll());
        records.push(...values);
        walk(values);
        walk(await read(store.getAllKeys()));
        for (const indexName of store.indexNames) {
            const index = db.transaction(storeName).objectStore(storeName).index(indexName);
            await new Promise((resolve, reject) => {
                const cursor = index.openKeyCursor();
                cursor.onsuccess = () => {
                    if (!cursor.result) return resolve();
                    walk(cursor.result.key);
                    cursor.result.continue();
                };
                cursor.onerror = () => reject(cursor.error);
            });
        }
    }
    const version = db.version, stores = [...db.objectStoreNames];
    db.close();
    if (!records.some((r) => r.id === wanted)) return null;
    return { version, stores, strings, blobs, fields: records.map((r) => Object.keys(r).sort()),
             keys: records.flatMap((r) => r.keys) };
}"""


def test_the_local_index_holds_no_plaintext_and_drops_an_unsealed_one(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("trk", "Ann Sealed"), rest.user("trl", "Ben Sdk")
    state = tmp_path / "bob"
    word = unique("pangolin")  # every word of the text long enough never to appear by chance
    text = f"Meeting {word} tomorrow beneath lighthouse 東京タワー"
    old_word = unique("albatross")
    in_sdk(web_server, bob, state, nothing)
    page = open_as(shots, alice)
    browser_device(page)
    database = f"parley-e2ee-search:{alice.id}"
    # An index as the client wrote it before sealing (version 1: text and terms in the clear).
    page.evaluate(
        """async ([name, oldWord]) => new Promise((resolve, reject) => {
            const request = indexedDB.open(name, 1);
            request.onupgradeneeded = () => {
                const store = request.result.createObjectStore("messages", { keyPath: "id" });
                store.createIndex("keys", "keys", { multiEntry: true });
                store.createIndex("conversation", "conversation_id");
                store.put({ id: "01OLDMESSAGE", conversation_id: "c", sender_id: "s", seq: 1,
                            created_at: "2026-01-01T00:00:00Z", text: `an ${oldWord} of old`, keys: [oldWord] });
            };
            request.onsuccess = () => { request.result.close(); resolve(); };
            request.onerror = () => reject(request.error);
        })""",
        [database, old_word],
    )

    async def send(client: ParleyClient) -> tuple[str, str]:
        dm = await client.create_direct(alice.id, encrypted=True)
        return str(dm["id"]), str((await client.send_message(dm["id"], text))["id"])

    dm_id, message_id = in_sdk(web_server, bob, state, send)
    page.goto(f"/c/{dm_id}")
    message(page, text).wait_for()  # decrypted here: filed in the index
    raw = eventually(lambda: page.evaluate(RAW_DATABASE_JS, [database, message_id]), "the message was never indexed")

    # Upgraded: the unsealed entry dropped, the new one sealed, with only what must stay clear.
    assert raw["version"] == 2 and raw["stores"] == ["messages"]
    assert raw["fields"] == [["conversation_id", "data", "id", "iv", "keys", "seq"]]
    assert len(raw["keys"]) > 20 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", key) for key in raw["keys"])
    # No word of the message (as sent or folded), nor its text, anywhere: not in a string
    # (values, record and index keys), not in the sealed bytes; nor the old entry's.
    plaintext = [text, *text.split(), "東京", "タワー", old_word, "of old"]
    for needle in plaintext:
        assert not any(needle.lower() in s.lower() for s in raw["strings"]), needle
        assert not any(needle.encode().hex() in blob for blob in raw["blobs"]), needle
    # Nor any term it is filed under (words, prefixes, trigrams) as a key of its own.
    terms: list[str] = page.evaluate(
        """async (text) => (await import("/static/e2ee/search_terms.js")).indexKeys(text)""", text
    )
    assert "^pangol" in terms and set(terms).isdisjoint(raw["strings"])

    # Searching still finds it, highlighted — and the dropped entry is not found.
    for query, highlight in ((word, word), ("lighthou*", "lighthou"), ("タワー", "タワー")):
        page.goto(f"/search?q={query}")
        result = page.locator(f'.search-result[data-message-id="{message_id}"]')
        expect(result).to_contain_text("Found on this device")
        expect(result.locator("mark")).to_have_text(highlight, ignore_case=True)
    page.goto(f"/search?q={old_word}")
    expect(page.locator(".search-status")).to_contain_text("No messages match")
    assert not shots.errors


# Texts and queries on which the local index must answer as the server's search does.
CORPUS = [
    "Deploy to prod at noon",
    "deployment notes (final), v2",
    "Café résumé naïve",
    "東京タワーに行く",
    "北京欢迎你",
    "the e-mail went out",
    "🎉 party at five 🎉",
    "go there now",
    "Прием в пятницу",
    "ready?! yes.",
]
QUERIES = [
    "deploy",
    "Deploy prod",
    "deplo*",
    '"deploy to prod"',
    '"deploy to pro"*',
    "ploy",
    "cafe",
    "RÉSUMÉ",
    "タワー",
    "東京",
    "欢迎",
    "e-mail",
    "mail",
    "🎉 party",
    "🎉🎉",
    "go",
    "пятниц*",
    "prod noon",
    "ready",
    "'; --",
    "NEAR OR",
]


def test_the_local_index_finds_what_the_server_would(shots: Browser, rest: Rest) -> None:
    alice, bob = rest.user("trg"), rest.user("trh")
    plain = rest.direct(alice, bob)
    ids = {rest.send(bob, plain["id"], text)["id"]: text for text in CORPUS}
    server = {
        q: sorted(ids[r["message_id"]] for r in rest.call(alice, "GET", "/search", params={"q": q})["results"])
        for q in QUERIES
    }
    assert server["deploy"] and server["タワー"] and server["cafe"]  # the corpus means something
    page = open_as(shots, alice)
    browser_device(page)
    # The same texts filed in the local index as decrypted messages would be, then searched.
    local = page.evaluate(
        """async ([userId, texts, queries]) => {
            const app = [...document.scripts].map((s) => s.src).find((s) => s.includes("/static/"));
            const base = app.replace(/app\\.js.*$/, ""); // the app's own module instances
            const index = await import(base + "e2ee/search_index.js");
            for (const [i, text] of texts.entries()) {
                const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
                const message = { id: `m${i}`, conversation_id: "c", sender_id: "s", created_at: at };
                await index.add(userId, { ...message, content: text });
            }
            const out = {};
            for (const q of queries) out[q] = (await index.search(userId, q)).map((r) => r.snippet).sort();
            return out;
        }""",
        [alice.id, CORPUS, QUERIES],
    )
    assert local == server
    assert not shots.errors


def test_notifications_of_encrypted_messages_show_text_only_once_decrypted_here(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("tri", "Ann"), rest.user("trj", "Ben Sdk")
    state = tmp_path / "bob"

    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, permissions=["notifications"])
    # The page in the background, and every notification it shows recorded.
    page.add_init_script(
        """window.Notification = class {
            constructor(title, options) {
                const record = document.createElement("p");
                record.className = "test-notification";
                record.textContent = `${title}: ${options.body}`;
                document.body.append(record);
            }
            static get permission() { return "granted"; }
        };
        document.hasFocus = () => false;"""
    )
    page.reload()
    browser_device(page)

    async def send(client: ParleyClient) -> None:
        await client.send_message(dm["id"], "the gate code is 4711")

    in_sdk(web_server, bob, state, send)
    shown = page.locator(".test-notification")
    expect(shown).to_have_text(["Ben Sdk: the gate code is 4711"])
    # Ciphertext no key here opens: no text, ever.
    sealed = next(m for m in rest.history(alice, dm["id"]) if m["kind"] == "text")
    forged = sealed["e2ee"] | {"index": sealed["e2ee"]["index"] + 5}
    rest.send(bob, dm["id"], "", ciphertext=sealed["ciphertext"], e2ee=forged)
    expect(shown).to_have_text(["Ben Sdk: the gate code is 4711", "Ben Sdk: New encrypted message"])
    assert not shots.errors


def test_either_side_turns_on_encryption_in_a_direct_conversation(shots: Browser, rest: Rest) -> None:
    alice, bob = rest.user("trk", "Ann Starter"), rest.user("trl", "Ben Other")
    dm = rest.direct(alice, bob)  # Alice started it; Bob switches it on
    page = open_as(shots, bob, f"/c/{dm['id']}")
    browser_device(page)
    dismiss_notifications_card(page)
    page.get_by_role("button", name="Show details of Ann Starter").click()
    section = page.get_by_role("region", name="Encryption")
    expect(section).to_contain_text("Not end-to-end encrypted")
    section.get_by_role("button", name="Turn on encryption").click()
    page.get_by_role("dialog", name="Turn on end-to-end encryption?").get_by_role(
        "button", name="Turn on encryption"
    ).click()
    page.locator(".conv-header .conv-lock").wait_for()
    # The details now show the pair's safety number, and the server has the switch.
    expect(page.get_by_role("region", name="Encryption").get_by_label("Safety number")).to_have_text(NUMBER)
    assert rest.call(alice, "GET", f"/conversations/{dm['id']}")["conversation"]["encrypted"] is True
    assert not shots.errors
