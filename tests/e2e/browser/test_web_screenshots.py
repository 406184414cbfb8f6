"""Screenshots of the main screens, light and dark, desktop and phone width.

Always taken (so the screens are exercised with realistic content); copied into
``docs/screenshots/`` for the README only with ``PARLEY_UPDATE_SCREENSHOTS=1``:

    PARLEY_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/e2e/browser/test_web_screenshots.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import MOBILE, UPDATE_SCREENSHOTS, Browser, Rest, dismiss_notifications_card, open_as
from tests.support.link_site import Site
from tests.support.link_site import site as site  # noqa: F401 (fixture)
from tests.support.paths import SCREENSHOTS

SCREEN = {"width": 1440, "height": 940}

CONVERSATION = [
    ("maya", "Morning all! The **release candidate** is up on staging 🎉"),
    ("jonas", "Nice. I ran the smoke tests: all green except the export job."),
    (
        "jonas",
        "Log from the failing run:\n```\nExportError: bucket 'reports' not found\n"
        "  at export.run (jobs/export.py:88)\n```",
    ),
    ("maya", "Ah, that's the bucket rename from last week. @{me} can you update the config?"),
    ("me", "On it. I'll push the fix in ~10 minutes and re-run the job."),
    (
        "priya",
        "Docs are ready too: [release notes draft](https://example.com/notes)"
        " — _comments welcome_.",
    ),
    ("me", "Fix is in. Export job passes now ✅"),
    ("priya", "東京チームも確認しました。ありがとう！ 🙏"),
    ("maya", "Announcement draft for Thursday: {site}/article"),
]


def mockup_png() -> bytes:
    """A small drawing of a settings screen, for the image attachment in the screenshots."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (720, 440), (246, 246, 249))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 180, 440), fill=(79, 70, 229))
    for i in range(5):
        draw.rounded_rectangle((20, 40 + i * 44, 160, 68 + i * 44), radius=8, fill=(129, 140, 248))
    draw.rounded_rectangle(
        (220, 40, 680, 150), radius=14, fill=(255, 255, 255), outline=(227, 227, 234)
    )
    draw.rounded_rectangle(
        (220, 180, 680, 400), radius=14, fill=(255, 255, 255), outline=(227, 227, 234)
    )
    draw.ellipse((245, 65, 305, 125), fill=(250, 204, 21))
    for i in range(4):
        draw.rounded_rectangle(
            (250, 210 + i * 45, 640 - i * 60, 228 + i * 45), radius=6, fill=(228, 228, 240)
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_screenshots_of_the_main_screens(
    shots: Browser, rest: Rest, tmp_path: Path, site: Site
) -> None:
    # Exact, readable usernames (they show in mentions): this test runs once per server.
    me = rest.user("sam.rivera", "Sam Rivera", exact=True)
    people = {
        "maya": rest.user("maya.chen", "Maya Chen", exact=True),
        "jonas": rest.user("jonas", "Jonas Weber", exact=True),
        "priya": rest.user("priya", "Priya Natarajan", exact=True),
        "me": me,
    }
    group = rest.group(people["maya"], "Release 2.4", [me, people["jonas"], people["priya"]])
    rest.call(
        people["maya"],
        "PATCH",
        f"/conversations/{group['id']}",
        json={"topic": "Shipping Thursday"},
    )
    sent = []
    for who, text in CONVERSATION:
        text = text.replace("{me}", me.username).replace("{site}", site.url("").rstrip("/"))
        sent.append(rest.send(people[who], group["id"], text))
    upload = rest.http.post(
        "/api/v1/uploads",
        headers=people["priya"].headers,
        files={"file": ("settings-mockup.png", mockup_png(), "image/png")},
    )
    assert upload.status_code == 201, upload.text
    sent.append(
        rest.send(
            people["priya"],
            group["id"],
            "And the updated mockup for the settings page:",
            attachment_ids=[upload.json()["attachment"]["id"]],
        )
    )
    rest.call(people["jonas"], "PUT", f"/messages/{sent[0]['id']}/reactions/🎉")
    rest.call(people["priya"], "PUT", f"/messages/{sent[0]['id']}/reactions/🎉")
    rest.call(me, "PUT", f"/messages/{sent[0]['id']}/reactions/🚀")
    fix = sent[6]
    rest.call(people["maya"], "PUT", f"/messages/{fix['id']}/reactions/🙏")
    rest.send(people["jonas"], group["id"], "Confirmed on my side too 👍", reply_to_id=fix["id"])
    for person in ("maya", "jonas", "priya"):
        rest.call(
            people[person],
            "POST",
            f"/conversations/{group['id']}/read",
            json={"seq": sent[-1]["seq"]},
        )

    latest = rest.history(me, group["id"])[-1]
    rest.call(me, "POST", f"/conversations/{group['id']}/read", json={"seq": latest["seq"]})

    dm = rest.direct(people["priya"], me)
    rest.send(people["priya"], dm["id"], "Could you review the docs PR when you have a minute?")
    rest.send(people["priya"], dm["id"], "No rush, tomorrow is fine.")
    other = rest.direct(people["jonas"], me)
    rest.send(me, other["id"], "Thanks for the smoke tests!")
    rest.send(people["jonas"], other["id"], "Any time 🙂")
    rest.call(me, "POST", f"/conversations/{other['id']}/read", json={"seq": 2})

    out = tmp_path / "screens"
    out.mkdir()
    for scheme in ("light", "dark"):
        for name, viewport in (("desktop", SCREEN), ("mobile", MOBILE)):
            login = shots.page(shots.context(viewport=viewport, color_scheme=scheme))
            login.goto("/login")
            expect(login.locator(".auth-card")).to_be_visible()
            login.screenshot(path=str(out / f"login-{scheme}-{name}.png"))

            page = open_as(shots, me, f"/c/{group['id']}", viewport=viewport, color_scheme=scheme)
            dismiss_notifications_card(page)
            expect(page.locator(".msg-text", has_text="Confirmed on my side")).to_be_visible()
            expect(page.locator(".link-preview img")).to_be_visible()
            page.mouse.move(0, 0)
            page.screenshot(path=str(out / f"conversation-{scheme}-{name}.png"))
            if name == "desktop":
                page.get_by_role("button", name="Insert emoji").click()
                picker = page.get_by_role("dialog", name="Insert an emoji")
                expect(picker.locator(".emoji-section")).to_have_count(10)
                picker.get_by_role("searchbox", name="Search emoji").fill("party")
                expect(picker.locator(".emoji-btn").first).to_be_visible()
                page.screenshot(path=str(out / f"emoji-{scheme}-{name}.png"))
                page.keyboard.press("Escape")
                page.locator(".attachment-image").click()
                viewer = page.get_by_role("dialog", name="Image viewer")
                page.wait_for_function("() => document.querySelector('.viewer-img')?.naturalWidth > 0")
                page.screenshot(path=str(out / f"viewer-{scheme}-{name}.png"))
                page.keyboard.press("Escape")
                expect(viewer).to_have_count(0)
            if name == "mobile":
                page.get_by_role("link", name="Back to conversations").click()
                expect(page.locator(".sidebar")).to_be_visible()
                page.screenshot(path=str(out / f"sidebar-{scheme}-{name}.png"))
            else:
                page.get_by_role("button", name="Group settings").click()
                expect(page.locator(".member-row")).to_have_count(4)
                expect(page.locator(".gallery-section .gallery-thumb img")).to_be_visible()
                expect(page.locator(".gallery-section")).not_to_contain_text("null")
                page.screenshot(path=str(out / f"group-settings-{scheme}-{name}.png"))
                page.goto("/search?q=export")
                expect(page.locator(".search-result").first).to_be_visible()
                page.screenshot(path=str(out / f"search-{scheme}-{name}.png"))
    assert not shots.errors, shots.errors
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for file in out.iterdir():
            shutil.copyfile(file, SCREENSHOTS / file.name)
