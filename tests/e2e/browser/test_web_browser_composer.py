"""The web client in a real Chromium — the composer's emoji: the picker (search, groups,
recently used, keyboard), ``:shortcode:`` completion and conversion, and the reaction picker
reading the same table."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, message, open_as


def test_emoji_picker_shortcodes_and_recently_used(shots: Browser, rest: Rest) -> None:
    alice = rest.user("emo", "Emma Oji")
    bob = rest.user("emob", "Bert Emote")
    conversation = rest.direct(alice, bob)
    rest.send(bob, conversation["id"], "ship it?")
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    composer = page.get_by_role("textbox", name="Message Bert Emote")

    # The picker: search by name or keyword, Enter inserts the first match at the caret.
    composer.fill("party ")
    page.get_by_role("button", name="Insert emoji").click()
    picker = page.get_by_role("dialog", name="Insert an emoji")
    expect(picker.get_by_role("searchbox", name="Search emoji")).to_be_focused()
    expect(picker.locator(".emoji-section")).to_have_count(10)  # recent + 9 groups, loaded
    picker.get_by_role("searchbox", name="Search emoji").fill("tada")
    expect(picker.locator(".emoji-btn").first).to_have_text("🎉")
    page.keyboard.press("Enter")
    expect(picker).to_be_hidden()
    expect(composer).to_have_value("party 🎉")
    expect(composer).to_be_focused()

    # Keyboard only: Down into the grid, Right, Enter.
    page.get_by_role("button", name="Insert emoji").click()
    search = picker.get_by_role("searchbox", name="Search emoji")
    search.fill("cat face")
    page.keyboard.press("ArrowDown")
    expect(picker.locator(".emoji-btn").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(composer).to_have_value(re.compile(r"^party 🎉🐱$"))

    # :shortcode: completion: a list after two letters, Enter picks.
    composer.fill("")
    composer.type("so funny :jo")
    options = page.get_by_role("listbox", name="Emoji").get_by_role("option")
    expect(options.first).to_contain_text(":joy:")
    page.keyboard.press("Enter")
    expect(composer).to_have_value("so funny 😂")
    # A whole known code turns into its emoji as the closing colon is typed.
    composer.type(" :thumbsup:")
    expect(composer).to_have_value("so funny 😂 👍")
    # Times and URLs are left alone.
    composer.type(" at 10:30:")
    expect(composer).to_have_value("so funny 😂 👍 at 10:30:")
    expect(page.get_by_role("listbox", name="Emoji")).to_be_hidden()
    composer.fill("so funny 😂 👍")
    composer.press("Enter")
    expect(message(page, "so funny")).to_have_text("so funny 😂 👍")

    # Recently used, newest first, shared with reactions.
    page.get_by_role("button", name="Insert emoji").click()
    recent = picker.locator("#emoji-group-recent .emoji-btn")
    expect(recent.nth(0)).to_have_text("👍")
    expect(recent.nth(1)).to_have_text("😂")
    expect(recent.nth(2)).to_have_text("🐱")
    expect(recent.nth(3)).to_have_text("🎉")
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()

    # The reaction picker: the same table, searchable.
    bubble = page.locator(".msg", has_text="ship it?")
    bubble.hover()
    bubble.get_by_role("button", name="Add reaction").click()
    reactions = page.get_by_role("dialog", name="Choose a reaction")
    page.screenshot(path="/tmp/wpshots/emoji-picker.png")
    reactions.get_by_role("searchbox", name="Search emoji").fill("rocket")
    reactions.get_by_role("button", name=re.compile(r"^React with 🚀")).click()
    expect(bubble.locator(".reaction", has_text="🚀")).to_have_attribute("aria-pressed", "true")
    [reacted] = [m for m in rest.history(bob, conversation["id"]) if m["content"] == "ship it?"]
    assert [r["emoji"] for r in reacted["reactions"]] == ["🚀"]
    page.screenshot(path="/tmp/wpshots/emoji.png")
    assert not shots.errors, shots.errors
