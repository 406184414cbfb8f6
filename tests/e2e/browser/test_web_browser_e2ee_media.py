"""Encrypted attachments, replies, edits and deletes in the web client (issue #21,
docs/e2ee.md "Encrypted attachments"): the browser and the Python SDK exchange sealed images
and files both ways, in Debian's Chromium; malformed keys read as "can't decrypt"."""

from __future__ import annotations

import io
import re
import secrets
import uuid
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from parley.client import ParleyClient
from parley.client.e2ee.files import encrypt_file
from parley.e2ee.formats import b64encode
from tests.support.browser_e2ee import browser_device, in_sdk, sdk_opens_encrypted_dm
from tests.support.browser_helpers import *  # noqa: F403
from tests.support.browser_helpers import (
    UPDATE_SCREENSHOTS,
    Browser,
    Rest,
    delivered,
    dismiss_notifications_card,
    message,
    open_as,
)
from tests.support.paths import SCREENSHOTS
from tests.support.server_process import ServerProcess

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\x00\xff end of a binary file\n"


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def test_the_browser_shows_and_downloads_what_the_sdk_sends_sealed(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e3a", "Ann"), rest.user("e3b", "Ben Sdk")
    state = tmp_path / "bob"
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    picture = png(640, 480, (200, 40, 90))

    async def send(client: ParleyClient) -> None:
        await client.send_file(dm["id"], picture, "holiday.png", "image/png", text="the view")
        await client.send_file(dm["id"], PDF, "report.pdf", "application/pdf")

    in_sdk(web_server, bob, state, send)
    message(page, "the view").wait_for()
    # The image: decrypted here into a blob: URL (the server holds an opaque blob only).
    image = page.get_by_role("link", name="Open image holiday.png").locator("img")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("(img) => img.complete && img.naturalWidth === 640", arg=image.element_handle())
    for stored in rest.history(alice, dm["id"]):
        if stored["kind"] == "text":
            assert stored["content"] == "" and stored["ciphertext"]
            assert all(a["name"] == "encrypted.bin" for a in stored["attachments"])

    # Opened full size in the viewer.
    page.get_by_role("link", name="Open image holiday.png").click()
    viewer = page.get_by_role("dialog")
    expect(viewer.locator("img")).to_have_attribute("src", re.compile(r"^blob:"))
    page.keyboard.press("Escape")

    # The file downloads decrypted: the same bytes the SDK sent.
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile(r"^Download report\.pdf, ")).click()
    assert download.value.suggested_filename == "report.pdf"
    assert Path(download.value.path()).read_bytes() == PDF
    assert not shots.errors


def test_the_sdk_reads_the_image_and_file_the_browser_sends_sealed(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e3c", "Alice Web"), rest.user("e3d", "Bob Sdk")
    state = tmp_path / "bob"
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    dismiss_notifications_card(page)
    picture = png(1200, 800, (20, 120, 200))
    page.locator(".composer input[type=file]").set_input_files([
        {"name": "sunset.png", "mimeType": "image/png", "buffer": picture},
        {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": PDF},
    ])
    composer = page.get_by_role("textbox", name="Message Bob Sdk")
    composer.fill("two files, sealed")
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    composer.press("Enter")
    delivered(page, "two files, sealed")
    # Shown from what this browser sealed: the thumbnail and the file chip.
    page.get_by_role("link", name="Open image sunset.png").wait_for()
    page.get_by_role("button", name=re.compile(r"^Download notes\.pdf, ")).wait_for()

    stored = [m for m in rest.history(bob, dm["id"]) if m["kind"] == "text"]
    assert len(stored) == 1 and stored[0]["content"] == "" and stored[0]["ciphertext"]
    # The file, its thumbnail and the other file: all opaque to the server.
    assert [a["name"] for a in stored[0]["attachments"]] == ["encrypted.bin"] * 3

    async def read(client: ParleyClient) -> dict[str, Any]:
        history = await client.history(dm["id"])
        got = next(m for m in history["messages"] if m["kind"] == "text")
        files = [await client.download_file(got, i) for i in range(len(got["e2ee_attachments"]))]
        thumb = got["e2ee_attachments"][0]["thumbnail"]
        thumbnail = await client.download_file({"e2ee_attachments": [thumb]})
        return {"message": got, "files": files, "thumbnail": thumbnail}

    got = in_sdk(web_server, bob, state, read)
    described = got["message"]["e2ee_attachments"]
    assert got["message"]["content"] == "two files, sealed"
    assert [(d["name"], d["content_type"], d["size"]) for d in described] == [
        ("sunset.png", "image/png", len(picture)),
        ("notes.pdf", "application/pdf", len(PDF)),
    ]
    assert got["files"] == [picture, PDF]
    assert (described[0]["width"], described[0]["height"]) == (1200, 800)
    thumb = Image.open(io.BytesIO(got["thumbnail"]))
    assert thumb.format == "JPEG" and max(thumb.size) == 320
    assert not shots.errors


def test_malformed_attachment_keys_read_as_cant_decrypt(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e3e", "Ann"), rest.user("e3f", "Ben Sdk")
    state = tmp_path / "bob"
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)
    dismiss_notifications_card(page)
    picture = png(64, 64, (0, 0, 0))

    async def send_bad(client: ParleyClient) -> None:
        assert client.e2ee is not None
        bad_infos = [
            ("bad-key.png", "image/png", lambda info: info | {"key": "not base64url!"}),
            ("wrong-key.pdf", "application/pdf", lambda info: info | {"key": b64encode(secrets.token_bytes(32))}),
            ("short-nonce.pdf", "application/pdf", lambda info: info | {"nonce": b64encode(b"\x00" * 5)}),
            ("other-hash.png", "image/png", lambda info: info | {"sha256": b64encode(secrets.token_bytes(32))}),
        ]
        described, ids = [], []
        for name, kind, spoil in bad_infos:
            blob, info = encrypt_file(picture)
            uploaded = await client.upload(blob, "encrypted.bin", encrypted=True)
            described.append(spoil(info | {"id": uploaded["id"], "name": name, "content_type": kind}))
            ids.append(uploaded["id"])
        sealed = await client.e2ee.encrypt(dm["id"], "four broken files", described)
        body = sealed | {"content": "", "attachment_ids": ids, "client_msg_id": uuid.uuid4().hex}
        await client.request("POST", f"/api/v1/conversations/{dm['id']}/messages", json=body)
        await client.send_message(dm["id"], "still here after them")

    in_sdk(web_server, bob, state, send_bad)
    message(page, "still here after them").wait_for()
    # The images fail on their own; the files when asked for. Each says so in place.
    expect(page.locator(".attachment-undecrypted")).to_have_count(2)
    for name in ("wrong-key.pdf", "short-nonce.pdf"):
        page.get_by_role("button", name=re.compile(f"^Download {name}")).click()
    expect(page.locator(".attachment-undecrypted")).to_have_count(4)
    for name in ("bad-key.png", "wrong-key.pdf", "short-nonce.pdf", "other-hash.png"):
        expect(page.locator(".attachment-undecrypted", has_text=f"Can't decrypt {name}")).to_have_count(1)
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-attachment-undecrypted-light-desktop.png").write_bytes(page.screenshot())
    # The page goes on: a message typed now is sealed and sent.
    composer = page.get_by_role("textbox", name="Message Ben Sdk")
    composer.fill("the rest still works")
    composer.press("Enter")
    delivered(page, "the rest still works")
    assert not shots.errors


def test_replies_edits_and_deletes_in_an_encrypted_conversation(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e3g", "Alice Web"), rest.user("e3h", "Bob Sdk")
    state = tmp_path / "bob"
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)

    async def first(client: ParleyClient) -> dict[str, Any]:
        return dict(await client.send_message(dm["id"], "which train do we take?"))

    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)  # before Bob writes: his key is shared with this browser's device
    dismiss_notifications_card(page)
    asked = in_sdk(web_server, bob, state, first)
    question = page.locator(".msg", has_text="which train do we take?")
    question.hover()
    question.get_by_role("button", name="Reply").click()
    composer = page.get_by_role("textbox", name="Message Bob Sdk")
    page.locator(".composer input[type=file]").set_input_files(
        [{"name": "timetable.png", "mimeType": "image/png", "buffer": png(300, 200, (90, 90, 20))}]
    )
    composer.fill("the 9:15")
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    composer.press("Enter")
    reply = page.locator(".msg", has_text="the 9:15")
    # The quote shows the decrypted text of the message replied to.
    expect(reply.locator(".msg-quote-text")).to_have_text("which train do we take?")
    delivered(page, "the 9:15")

    # Edited: new ciphertext that keeps the file.
    reply.hover()
    reply.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("the 9:15, platform 4")
    editor.press("Enter")
    edited = page.locator(".msg", has_text="the 9:15, platform 4")
    edited.locator(".msg-edited").wait_for()
    edited.get_by_role("link", name="Open image timetable.png").wait_for()

    # A message deleted from the browser: its ciphertext is erased on the server.
    composer.fill("oops, wrong chat")
    composer.press("Enter")
    oops = page.locator(".msg", has_text="oops, wrong chat")
    delivered(page, "oops, wrong chat")
    oops.hover()
    oops.get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.locator(".msg-tombstone").wait_for()

    async def read(client: ParleyClient) -> list[dict[str, Any]]:
        return [m for m in (await client.history(dm["id"]))["messages"] if m["kind"] == "text"]

    seen = in_sdk(web_server, bob, state, read)
    assert seen[0]["content"] == "which train do we take?"
    answer = seen[1]
    assert answer["reply_to_id"] == asked["id"] and answer["edited_at"]
    assert answer["content"] == "the 9:15, platform 4" and answer["decrypted"]
    assert [a["name"] for a in answer["e2ee_attachments"]] == ["timetable.png"]
    assert seen[2]["deleted"] and not seen[2].get("ciphertext")

    # The server's quote of an encrypted message has no text: the browser decrypts it.
    stored = next(m for m in rest.history(alice, dm["id"]) if m["id"] == answer["id"])
    assert stored["reply_to"]["id"] == asked["id"] and stored["reply_to"]["content"] == ""

    # Reloaded: the history, the quote and the file are decrypted again from IndexedDB.
    page.reload()
    browser_device(page)
    expect(page.locator(".msg", has_text="the 9:15, platform 4").locator(".msg-quote-text")).to_have_text(
        "which train do we take?"
    )
    if UPDATE_SCREENSHOTS:
        (SCREENSHOTS / "e2ee-attachments-light-desktop.png").write_bytes(page.screenshot())
    assert not shots.errors


def test_a_reply_quotes_an_encrypted_message_that_is_not_loaded(
    shots: Browser, rest: Rest, web_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = rest.user("e3i", "Ann"), rest.user("e3j", "Ben Sdk")
    state = tmp_path / "bob"
    dm = sdk_opens_encrypted_dm(web_server, bob, alice, state)
    page = open_as(shots, alice, f"/c/{dm['id']}")
    browser_device(page)

    async def send(client: ParleyClient) -> dict[str, Any]:
        question = await client.send_message(dm["id"], "the question from long ago")
        for i in range(55):  # more than a page: the question is not loaded with the answer
            await client.send_message(dm["id"], f"filler {i}")
        return dict(await client.send_message(dm["id"], "the late answer", reply_to_id=question["id"]))

    answer = in_sdk(web_server, bob, state, send)
    # All read: a fresh page of the same browser (its keys) opens at the latest page, which
    # holds the answer and not the question.
    rest.call(alice, "POST", f"/conversations/{dm['id']}/read", json={"seq": answer["seq"]})
    page.close()
    page = shots.page(shots.contexts[-1])
    page.goto(f"/c/{dm['id']}")
    browser_device(page)
    message(page, "the late answer").wait_for()
    reply = page.locator(".msg", has_text="the late answer")
    expect(reply.locator(".msg-quote-text")).to_have_text("the question from long ago")
    assert message(page, "the question from long ago").count() == 0  # quoted, not loaded
    assert not shots.errors

