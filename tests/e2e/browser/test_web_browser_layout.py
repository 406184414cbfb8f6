"""The web client in a real Chromium — the layout fits every width from 360 px: on a phone
the sidebar and the conversation take turns, and nothing scrolls sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, message, open_as


@pytest.mark.parametrize("width", [360, 1280])
def test_layout_fits_from_360px(shots: Browser, rest: Rest, width: int) -> None:
    alice = rest.user("narrow", "Nara Row")
    bob = rest.user("narrowb", "Wide Bob")
    conversation = rest.direct(alice, bob)
    rest.send(bob, conversation["id"], "a long unbroken " + "word" * 60 + " in a message")
    page = open_as(shots, alice, viewport={"width": width, "height": 740})
    if width < 700:
        expect(page.locator(".sidebar")).to_be_visible()
        conversation_link(page, conversation["id"]).click()
        expect(page.locator(".sidebar")).to_be_hidden()
        page.get_by_role("link", name="Back to conversations").click()
        expect(page.locator(".sidebar")).to_be_visible()
        conversation_link(page, conversation["id"]).click()
    else:
        conversation_link(page, conversation["id"]).click()
    expect(message(page, "a long unbroken")).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    expect(page.get_by_role("textbox", name="Message Wide Bob")).to_be_visible()
