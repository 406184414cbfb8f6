"""The web client in a real Chromium — sending in a conversation: a direct message started
from the user search (formatting, line breaks, drafts, the other side's unread badge),
attachments with their preview, and a failed send's retry and delete."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, message, open_as


def test_dm_from_user_search_send_and_history_survives_reload(shots: Browser, rest: Rest) -> None:
    alice = rest.user("alice", "Alice Liddell")
    bob = rest.user("bob", "Bob Builder")
    page = open_as(shots, alice)
    page.get_by_role("button", name="New message").first.click()
    dialog = page.get_by_role("dialog", name="New message")
    dialog.get_by_role("searchbox").fill(bob.username)
    dialog.get_by_role("option", name=re.compile("Bob Builder")).click()
    expect(page.get_by_role("heading", name="Bob Builder", level=1)).to_be_visible()

    composer = page.get_by_role("textbox", name="Message Bob Builder")
    composer.fill("Hello **Bob**, see https://example.com/docs")
    composer.press("Enter")
    sent = message(page, "Hello Bob")
    expect(sent).to_be_visible()
    expect(sent.locator("strong")).to_have_text("Bob")
    expect(sent.locator("a")).to_have_attribute("href", "https://example.com/docs")
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    # Shift+Enter is a line break, not a send.
    composer.fill("line one")
    composer.press("Shift+Enter")
    composer.type("line two")
    composer.press("Enter")
    expect(message(page, "line one").locator("br")).to_have_count(1)
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    conversation_id = page.url.rsplit("/", 1)[1]
    history = rest.history(bob, conversation_id)
    assert [m["content"] for m in history] == [
        "Hello **Bob**, see https://example.com/docs",
        "line one\nline two",
    ]

    # A draft is kept per conversation, across a reload.
    composer.fill("an unfinished thought")
    page.wait_for_function(
        "() => Object.keys(localStorage).some(k => k.startsWith('parley.draft.'))"
    )
    page.reload()
    expect(message(page, "Hello Bob")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message Bob Builder")).to_have_value(
        "an unfinished thought"
    )

    # Bob sees the conversation with an unread badge and the preview.
    bob_page = open_as(shots, bob)
    item = conversation_link(bob_page, conversation_id)
    expect(item).to_contain_text("Alice Liddell")
    expect(item.locator(".badge")).to_have_text("2")
    expect(item.locator(".conv-preview")).to_contain_text("line one line two")
    item.click()
    expect(message(bob_page, "Hello Bob")).to_be_visible()
    expect(bob_page.locator(".unread-divider")).to_be_visible()
    expect(item.locator(".badge")).to_have_count(0)
    assert not shots.errors, shots.errors


def png_bytes(width: int = 640, height: int = 400) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (79, 70, 229))
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=(250, 204, 21)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_attachments_upload_preview_and_render(shots: Browser, rest: Rest) -> None:
    alice = rest.user("att", "Ada Attacher")
    bob = rest.user("attb", "Bert Receiver")
    conversation = rest.direct(alice, bob)
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    page.locator(".composer input[type=file]").set_input_files(
        [
            {"name": "chart.png", "mimeType": "image/png", "buffer": png_bytes()},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"meeting notes\nline two\n"},
        ]
    )
    chips = page.get_by_role("list", name="Attachments").get_by_role("listitem")
    expect(chips).to_have_count(2)
    expect(chips.first.locator(".file-chip-thumb")).to_be_visible()  # a local blob: preview
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    composer = page.get_by_role("textbox", name="Message Bert Receiver")
    composer.fill("Q3 numbers attached")
    composer.press("Enter")
    expect(chips).to_have_count(0)

    bob_page = open_as(shots, bob, f"/c/{conversation['id']}")
    sent = bob_page.locator(".msg", has_text="Q3 numbers attached")
    image = sent.locator("img.attachment-img")
    expect(image).to_have_attribute("alt", "chart.png")
    bob_page.wait_for_function(
        "() => document.querySelector('img.attachment-img')?.naturalWidth > 0"
    )
    expect(sent.locator(".attachment-image")).to_have_attribute(
        "href", re.compile(r"^/api/v1/attachments/.+/original\?")
    )
    file = sent.locator(".attachment-file")
    expect(file).to_contain_text("notes.txt")
    expect(file).to_have_attribute("download", "notes.txt")
    expect(bob_page.locator(".conv-item .conv-preview")).to_contain_text("Q3 numbers attached")
    assert not shots.errors, shots.errors


def test_failed_send_offers_retry_and_delete(shots: Browser, rest: Rest) -> None:
    alice = rest.user("fail", "Fay Failing")
    bob = rest.user("failb", "Blake Blocker")
    conversation = rest.direct(alice, bob)
    rest.call(bob, "POST", "/blocks", json={"user_id": alice.id})
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    composer = page.get_by_role("textbox", name="Message Blake Blocker")
    composer.fill("this one cannot go out")
    composer.press("Enter")
    failed = page.locator(".msg.is-failed", has_text="this one cannot go out")
    expect(failed).to_contain_text("Not sent")
    composer.fill("neither can this")
    composer.press("Enter")
    expect(page.locator(".msg.is-failed")).to_have_count(2)
    page.locator(".msg.is-failed", has_text="neither can this").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator(".msg.is-failed")).to_have_count(1)

    rest.call(bob, "DELETE", f"/blocks/{alice.id}")
    failed.get_by_role("button", name="Retry").click()
    expect(page.locator(".msg.is-failed, .msg.is-pending")).to_have_count(0)
    expect(message(page, "this one cannot go out")).to_have_count(1)
    assert [m["content"] for m in rest.history(bob, conversation["id"])] == [
        "this one cannot go out"
    ]
