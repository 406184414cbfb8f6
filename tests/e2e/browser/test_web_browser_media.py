"""The web client in a real Chromium — media: the image viewer (full size, previous / next,
download, Escape), the files and media gallery of the details panel, voice messages
recorded with MediaRecorder (Chromium's fake microphone), with the level meter and the
player, and link preview cards (a stand-in site on loopback)."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import expect

from tests.support.attachment_helpers import pdf_bytes
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import MOBILE, Browser, Rest, User, open_as
from tests.support.link_site import Site
from tests.support.link_site import site as site  # noqa: F401 (fixture)

COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220)}


def png(color: tuple[int, int, int], size: tuple[int, int] = (800, 500)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def upload(rest: Rest, user: User, name: str, data: bytes, content_type: str) -> str:
    response = rest.http.post(
        "/api/v1/uploads", files={"file": (name, data, content_type)}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["attachment"]["id"])


def test_image_viewer_and_the_gallery(shots: Browser, rest: Rest) -> None:
    alice = rest.user("view", "Vera Viewer")
    bob = rest.user("viewb", "Bram Sender")
    conversation = rest.direct(alice, bob)
    cid = conversation["id"]
    for name, color in COLORS.items():
        rest.send(bob, cid, f"{name} one", attachment_ids=[upload(rest, bob, f"{name}.png", png(color), "image/png")])
    rest.send(bob, cid, "the brief", attachment_ids=[upload(rest, bob, "brief.pdf", pdf_bytes(), "application/pdf")])
    page = open_as(shots, alice, f"/c/{cid}")

    thumbs = page.locator(".attachment-image")
    expect(thumbs).to_have_count(3)
    thumbs.nth(1).click()
    viewer = page.get_by_role("dialog", name="Image viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".viewer-title")).to_have_text("green.png")
    expect(viewer.locator(".viewer-counter")).to_have_text(re.compile(r"^2 of 3"))
    expect(viewer.locator(".viewer-meta")).to_contain_text("Bram Sender")
    # Full size: the original, not a thumbnail, as large as the screen allows.
    image = viewer.locator(".viewer-img")
    expect(image).to_have_attribute("src", re.compile(r"/original\?"))
    page.wait_for_function("() => document.querySelector('.viewer-img').naturalWidth === 800")
    page.keyboard.press("ArrowRight")
    expect(viewer.locator(".viewer-title")).to_have_text("blue.png")
    expect(viewer.get_by_role("button", name="Next image")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(viewer.locator(".viewer-title")).to_have_text("red.png")
    download = viewer.get_by_role("link", name="Download")
    expect(download).to_have_attribute("download", "red.png")
    with page.expect_download() as saved:
        download.click()
    assert saved.value.suggested_filename == "red.png"
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    expect(thumbs.nth(1)).to_be_focused()  # back where the viewer was opened

    # The gallery: the latest pictures and files in the details panel, all in a dialog.
    page.get_by_role("button", name="Conversation details").click()
    section = page.locator(".gallery-section")
    expect(section.locator(".gallery-thumb")).to_have_count(3)
    expect(section.locator(".gallery-file")).to_have_text([re.compile("brief.pdf")])
    section.get_by_role("button", name="View red.png").click()
    expect(viewer.locator(".viewer-title")).to_have_text("red.png")
    expect(viewer.locator(".viewer-counter")).to_have_text(re.compile(r"^1 of 3"))
    page.keyboard.press("Escape")
    section.get_by_role("button", name="Show all").click()
    dialog = page.get_by_role("dialog", name="Files and media")
    expect(dialog.get_by_role("tab", name="Media")).to_have_attribute("aria-selected", "true")
    expect(dialog.locator(".gallery-grid .gallery-thumb")).to_have_count(3)
    page.keyboard.press("ArrowRight")
    expect(dialog.get_by_role("tab", name="Files")).to_have_attribute("aria-selected", "true")
    expect(dialog.get_by_role("link", name="Download brief.pdf")).to_be_visible()
    dialog.get_by_role("link", name="Show brief.pdf in the conversation").click()
    expect(dialog).to_have_count(0)
    expect(page.locator(".msg.is-highlighted")).to_contain_text("the brief")
    page.screenshot(path="/tmp/wpshots/gallery.png")
    assert not shots.errors, shots.errors


def test_the_viewer_fits_a_phone(shots: Browser, rest: Rest) -> None:
    alice = rest.user("vphone", "Pho Viewer")
    bob = rest.user("vphoneb", "Pia Pics")
    conversation = rest.direct(alice, bob)
    rest.send(bob, conversation["id"], "", attachment_ids=[upload(rest, bob, "wide.png", png((200, 120, 20), (1600, 400)), "image/png")])
    page = open_as(shots, alice, f"/c/{conversation['id']}", viewport={"width": 360, "height": 740})
    page.locator(".attachment-image").click()
    viewer = page.get_by_role("dialog", name="Image viewer")
    image = viewer.locator(".viewer-img")
    expect(image).to_be_visible()
    box = image.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="Close (Escape)").click()
    expect(viewer).to_have_count(0)
    assert MOBILE["width"] > 360  # the phone size above is the smallest supported
    assert not shots.errors, shots.errors


def test_voice_message_recorded_sent_and_played(shots: Browser, rest: Rest) -> None:
    alice = rest.user("voice", "Val Voice")
    bob = rest.user("voiceb", "Bo Listener")
    conversation = rest.direct(alice, bob)
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    page.get_by_role("button", name="Record a voice message").click()
    recorder = page.get_by_role("group", name="Recording a voice message")
    expect(recorder).to_be_visible()
    expect(page.get_by_role("textbox", name="Message Bo Listener")).to_be_hidden()
    # The fake microphone beeps: the meter moves and the clock runs.
    page.wait_for_function("() => Number(document.querySelector('.voice-meter')?.dataset.level) > 0.02")
    expect(recorder.locator(".voice-time")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=5000)
    page.screenshot(path="/tmp/wpshots/recording.png")
    recorder.get_by_role("button", name="Send").click()
    expect(recorder).to_have_count(0)
    player = page.locator(".msg .voice-player")
    expect(player).to_be_visible()
    expect(page.locator(".msg.is-pending")).to_have_count(0)

    [sent] = rest.history(bob, conversation["id"])
    [voice] = sent["attachments"]
    assert voice["kind"] == "audio" and voice["content_type"] == "audio/webm", voice
    assert voice["name"].startswith("Voice message ") and voice["size"] > 1000

    # The other side plays it: the clock advances, the button becomes Pause.
    bob_page = open_as(shots, bob, f"/c/{conversation['id']}")
    theirs = bob_page.locator(".msg .voice-player")
    expect(theirs.locator(".voice-clock")).to_have_text(re.compile(r"^0:00 / 0:0[1-9]$"))
    theirs.get_by_role("button", name=re.compile("^Play")).click()
    expect(theirs.get_by_role("button", name=re.compile("^Pause"))).to_be_visible()
    expect(theirs.locator(".voice-clock")).not_to_have_text(re.compile(r"^0:00 /"), timeout=5000)

    # Cancelling a recording sends nothing.
    page.get_by_role("button", name="Record a voice message").click()
    expect(recorder).to_be_visible()
    recorder.get_by_role("button", name="Cancel").click()
    expect(recorder).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message Bo Listener")).to_be_focused()
    assert len(rest.history(bob, conversation["id"])) == 1
    assert not shots.errors, shots.errors


def test_link_preview_card_arrives_live_with_a_picture_from_parley(
    shots: Browser, rest: Rest, site: Site
) -> None:
    alice = rest.user("lnk", "Lina Linker")
    bob = rest.user("lnkb", "Lou Reader")
    conversation = rest.direct(alice, bob)
    page = open_as(shots, bob, f"/c/{conversation['id']}")
    expect(page.locator(".timeline-intro")).to_be_visible()
    rest.send(alice, conversation["id"], f"read this {site.url('/article')}")
    card = page.get_by_role("group", name=re.compile("^Link preview: Parley & friends ship 2.0"))
    expect(card).to_be_visible()  # arrives as message.updated, after the message itself
    expect(card.locator(".link-preview-site")).to_have_text("The Parley Blog")
    expect(card.get_by_role("link", name="Parley & friends ship 2.0")).to_have_attribute("href", site.url("/article"))
    expect(card.locator(".link-preview-description")).to_have_text("Threads, pins and a faster gateway.")
    picture = card.locator("img")
    expect(picture).to_have_attribute("src", re.compile(r"^/api/v1/link-previews/"))
    page.wait_for_function("() => document.querySelector('.link-preview img')?.naturalWidth > 0")
    # The browser never asked the linked site for anything: only Parley's server did.
    assert site.hits["/pic.png"] == 1 and site.hits["/article"] == 1
    assert not shots.errors, shots.errors
