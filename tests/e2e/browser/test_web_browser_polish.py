"""The web client in a real Chromium — defects where the merged features meet (the polish
pass after the six branches landed together), one test each."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, open_as, unique

# Counts every login form the page draws (a MutationObserver on the app root).
COUNT_AUTH_FORMS = """() => {
  window.__authForms = 0;
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType === 1 && (n.matches('.auth-form') || n.querySelector('.auth-form'))) window.__authForms++;
    }
  }).observe(document.getElementById('app'), { childList: true, subtree: true });
}"""


def _answer_after_the_socket_closed(page: Any, method: str, path: str) -> None:
    """Hold the server's answer to ``method path`` back a moment: the server closes the
    page's socket (4001) as soon as it signs the account out, and the page's refresh then
    draws the login page before the answer comes — the order a user sees on a slow link."""

    def handle(route: Any) -> None:
        if route.request.method != method:
            route.continue_()
            return
        response = route.fetch()
        # Forces the order of two events for the test (not a wait for a condition): the
        # browser runs on while this handler holds the answer.
        time.sleep(1.5)
        route.fulfill(response=response)

    page.route(f"**/api/v1{path}", handle)


def _the_login_page_stays(page: Any) -> None:
    """The user types into the login page; nothing draws it again under their fingers."""
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill("typed-by-the-user")
    # Every request of the old session's teardown has come back once the network is idle.
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Username")).to_have_value("typed-by-the-user")
    assert page.evaluate("window.__authForms") == 1


def test_sign_out_everywhere_draws_the_login_page_once(shots: Browser, rest: Rest) -> None:
    alice = rest.user("once", "Onc E")
    page = open_as(shots, alice, "/settings")
    page.evaluate(COUNT_AUTH_FORMS)
    _answer_after_the_socket_closed(page, "POST", "/auth/logout-all")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_role("dialog").get_by_role("button", name="Sign out everywhere").click()
    _the_login_page_stays(page)
    assert not shots.errors, shots.errors


def test_account_erasure_draws_the_login_page_once(shots: Browser, rest: Rest) -> None:
    alice = rest.user("erz", "Era Sed")
    page = open_as(shots, alice, "/settings")
    page.evaluate(COUNT_AUTH_FORMS)
    _answer_after_the_socket_closed(page, "DELETE", "/users/me")
    page.get_by_role("button", name="Delete my account").click()
    dialog = page.get_by_role("dialog", name="Delete your account")
    dialog.get_by_label("Your password").fill(TEST_PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    _the_login_page_stays(page)
    assert not shots.errors, shots.errors


def test_a_revoked_session_draws_the_login_page_once(shots: Browser, rest: Rest) -> None:
    alice = rest.user("once", "Onc E")
    page = open_as(shots, alice)
    expect(page.get_by_role("heading", name="Welcome, Onc E")).to_be_visible()
    page.evaluate(COUNT_AUTH_FORMS)
    rest.call(alice, "POST", "/auth/logout-all")
    expect(page.locator(".form-notice")).to_contain_text("Your session has ended")
    _the_login_page_stays(page)
    assert not shots.errors, shots.errors


def test_a_slash_command_in_the_thread_panel_runs_in_the_thread(shots: Browser, rest: Rest) -> None:
    alice = rest.user("slt", "Sal Thread")
    bob = rest.user("sltb", "Sid Thread")
    group = rest.group(alice, "Slash threads", [bob])
    root = rest.send(alice, group["id"], "shall we ship friday?")
    page = open_as(shots, bob, f"/c/{group['id']}?thread={root['id']}")
    panel = page.get_by_role("complementary", name="Thread")
    expect(panel.locator(".thread-root")).to_contain_text("shall we ship friday?")
    box = panel.get_by_role("textbox", name="Reply in thread")
    # "/" offers the commands here too; Tab completes.
    box.fill("/")
    menu = panel.get_by_role("listbox", name="Commands")
    expect(menu).to_be_visible()
    box.press_sequentially("shr")
    box.press("Tab")
    expect(box).to_have_value("/shrug ")
    box.press_sequentially("who knows")
    box.press("Enter")
    expect(panel.locator(".thread-replies .msg-text")).to_have_text(["who knows ¯\\_(ツ)_/¯"])
    replies = rest.call(alice, "GET", f"/messages/{root['id']}/thread")["messages"]
    assert [m["content"] for m in replies] == ["who knows ¯\\_(ツ)_/¯"]
    # An unknown command is explained and nothing is sent; the text stays to be fixed.
    box.fill("/nosuch thing")
    box.press("Enter")
    expect(page.locator("#toast")).to_contain_text("/nosuch is not a command here")
    expect(box).to_have_value("/nosuch thing")
    assert len(rest.call(alice, "GET", f"/messages/{root['id']}/thread")["messages"]) == 1
    assert not [e for e in shots.errors if "400" not in e], shots.errors

def test_a_bots_reply_in_the_thread_panel_is_marked_as_a_bots(shots: Browser, rest: Rest) -> None:
    owner = rest.user("bto", "Bo Owner")
    created = rest.call(owner, "POST", "/bots", json={"username": unique("helper")})
    bot_id, token = created["bot"]["id"], created["token"]
    group = rest.group(owner, "Bot threads", [])
    rest.call(owner, "POST", f"/conversations/{group['id']}/members", json={"user_ids": [bot_id]})
    root = rest.send(owner, group["id"], "bot, what's the build status?")
    answer = rest.http.post(
        f"/api/v1/conversations/{group['id']}/messages",
        json={"content": "green", "thread_root_id": root["id"]},
        headers={"Authorization": f"Bot {token}"},
    )
    assert answer.status_code == 201, answer.text
    page = open_as(shots, owner, f"/c/{group['id']}?thread={root['id']}")
    reply = page.get_by_role("complementary", name="Thread").locator(".thread-msg", has_text="green")
    expect(reply.locator(".bot-tag")).to_have_text("Bot")
    assert not shots.errors, shots.errors
