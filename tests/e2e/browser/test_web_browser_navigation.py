"""The web client in a real Chromium — getting to a message: deep links (500 messages back,
through a login, by a group's slug), the no-access view for non-members, search results,
the unread divider with infinite scroll up, and switching conversations from the keyboard.

Real-time behaviour (live messages, typing, ticks, offline catch-up) is in
``test_web_realtime.py``.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, message, open_as, unique


def test_deep_link_to_a_message_500_back(shots: Browser, rest: Rest) -> None:
    alice = rest.user("deep", "Dee Linker")
    bob = rest.user("deepb", "Bo Linked")
    conversation = rest.group(alice, "History buffs", [bob])
    target = None
    for i in range(520):
        sent = rest.send(alice if i % 3 else bob, conversation["id"], f"history message number {i}")
        if i == 19:
            target = sent
    assert target is not None
    page = open_as(shots, bob, f"/c/{conversation['id']}/m/{target['id']}")
    highlighted = page.locator(f'.msg.is-highlighted[data-message-id="{target["id"]}"]')
    expect(highlighted).to_be_visible()
    expect(highlighted).to_contain_text("history message number 19")
    expect(highlighted).to_be_in_viewport()
    # Newer history loads as we scroll down; "jump to latest" gets us to the end.
    page.get_by_role("button", name=re.compile("Jump to latest")).click()
    expect(message(page, "history message number 519")).to_be_in_viewport()
    expect(page).to_have_url(re.compile(rf"/c/{conversation['id']}$"))
    # Copy link gives the same URL shape.
    expect(page.locator(".msg.is-highlighted")).to_have_count(0)

    # A quoted reply jumps to its original, loading history around it. (Bob's read mark
    # must have reached the server first: with hundreds unread, the page opens at the
    # first unread message instead of at the latest.)
    path = f"/conversations/{conversation['id']}"
    deadline = time.monotonic() + 10
    while rest.call(bob, "GET", path)["conversation"]["unread_count"] and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    reply = rest.send(bob, conversation["id"], "replying to an old one", reply_to_id=target["id"])
    page.reload()
    quote = page.locator(f'.msg[data-message-id="{reply["id"]}"] .msg-quote')
    expect(quote).to_contain_text("history message number 19")
    quote.click()
    expect(
        page.locator(f'.msg.is-highlighted[data-message-id="{target["id"]}"]')
    ).to_be_in_viewport()
    assert not shots.errors, shots.errors


def test_non_members_see_a_clear_no_access_view(shots: Browser, rest: Rest) -> None:
    insider = rest.user("ins")
    outsider = rest.user("outs")
    conversation = rest.group(insider, "Secret club", [])
    secret = rest.send(insider, conversation["id"], "the secret word is swordfish")
    rest.call(
        insider, "PATCH", f"/conversations/{conversation['id']}", json={"slug": unique("club")}
    )
    slug = rest.call(insider, "GET", f"/conversations/{conversation['id']}")["conversation"]["slug"]
    page = open_as(shots, outsider, f"/c/{conversation['id']}/m/{secret['id']}")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    expect(page.get_by_text("swordfish")).to_have_count(0)
    page.goto(f"/g/{slug}")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    page.goto("/c/does-not-exist")
    expect(
        page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()

    # A member following the slug link lands in the conversation.
    inside = open_as(shots, insider, f"/g/{slug}")
    expect(inside).to_have_url(re.compile(rf"/c/{conversation['id']}$"))
    expect(message(inside, "swordfish")).to_be_visible()

    # Logged out, a deep link survives the login.
    context = shots.context()
    fresh = shots.page(context)
    fresh.goto(f"/c/{conversation['id']}/m/{secret['id']}")
    expect(fresh).to_have_url(re.compile(r"/login$"))
    fresh.fill("#login-username", insider.username)
    fresh.fill("#login-password", TEST_PASSWORD)
    fresh.get_by_role("button", name="Log in").click()
    expect(fresh.locator(f'.msg.is-highlighted[data-message-id="{secret["id"]}"]')).to_be_visible()


def test_search_result_click_lands_on_the_message(shots: Browser, rest: Rest) -> None:
    alice = rest.user("srch", "Sam Searcher")
    bob = rest.user("srchb", "Rob Found")
    conversation = rest.direct(alice, bob)
    word = unique("zebra")
    found = rest.send(bob, conversation["id"], f"the {word} crossing is on Tuesday")
    for i in range(80):
        rest.send(alice, conversation["id"], f"filler message {i}")
    page = open_as(shots, alice)
    page.keyboard.press("Control+k")
    expect(page).to_have_url(re.compile(r"/search"))
    box = page.get_by_role("searchbox", name="Search messages")
    box.fill(word)
    box.press("Enter")
    result = page.locator(f'.search-result[data-message-id="{found["id"]}"]')
    expect(result).to_be_visible()
    expect(result.locator("mark")).to_have_text(word)
    expect(page.locator(".search-group-title")).to_contain_text("Rob Found")
    # Keyboard: down from the box focuses the first result, Enter opens it.
    box.press("ArrowDown")
    expect(result).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/c/{conversation['id']}/m/{found['id']}$"))
    target = page.locator(f'.msg.is-highlighted[data-message-id="{found["id"]}"]')
    expect(target).to_be_in_viewport()
    assert not shots.errors, shots.errors


def test_unread_divider_and_infinite_scroll_up(shots: Browser, rest: Rest) -> None:
    alice = rest.user("scroll", "Sky Scroller")
    bob = rest.user("scrollb", "Bea Backlog")
    conversation = rest.direct(alice, bob)
    sent = [rest.send(bob, conversation["id"], f"backlog message {i}") for i in range(130)]
    rest.call(
        alice, "POST", f"/conversations/{conversation['id']}/read", json={"seq": sent[99]["seq"]}
    )
    page = open_as(shots, alice)
    item = conversation_link(page, conversation["id"])
    expect(item.locator(".badge")).to_have_text("30")
    expect(page).to_have_title(re.compile(r"^\(30\) "))
    item.click()
    divider = page.locator(".unread-divider")
    expect(divider).to_be_in_viewport()
    expect(divider.locator("xpath=following-sibling::*[1]")).to_contain_text("backlog message 100")

    # Scrolling up loads older pages, keeping the reading position, until the beginning.
    timeline = page.locator(".timeline")
    first = message(page, "backlog message 0")
    for _ in range(10):
        if first.count():
            break
        before = page.locator(".msg").count()
        timeline.evaluate("el => { el.scrollTop = 0; }")
        # More rows, or none left to load (older pages may all have come in meanwhile).
        page.wait_for_function(
            f"() => document.querySelectorAll('.msg').length > {before}"
            " || !document.querySelector('.timeline-top .spinner')"
        )
    expect(first).to_be_attached()
    expect(page.locator(".timeline-intro")).to_contain_text(
        "beginning of your conversation with Bea Backlog"
    )
    assert page.locator(".msg").count() == 130

    # Alt+Down / Alt+Up switch conversations from anywhere.
    other = rest.direct(alice, rest.user("scrollc", "Cy Other"))
    rest.send(alice, other["id"], "hello other")
    page.reload()
    expect(page.locator(".conv-item")).to_have_count(2)
    page.keyboard.press("Alt+ArrowDown")
    expect(page).to_have_url(re.compile(r"/c/"))
    first_url = page.url
    page.keyboard.press("Alt+ArrowDown")
    expect(page).not_to_have_url(first_url)
    assert not shots.errors, shots.errors
