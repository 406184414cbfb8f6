"""The web client in a real Chromium — accounts and sessions: registering, reloading,
logging out and in (the refresh token only in an HttpOnly cookie), the profile, signed-in
devices and contacts, and a session revoked from elsewhere."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, open_as, unique


def test_register_reload_logout_and_login(shots: Browser) -> None:
    context = shots.context()
    page = shots.page(context)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_role("link", name="Create an account").click()
    username = unique("reg")

    # Inline errors: the server's field messages land under the field.
    page.fill("#register-username", username)
    page.fill("#register-password", "short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#register-password-error")).to_contain_text("at least 10")

    page.fill("#register-display_name", "Regina Tester")
    page.fill("#register-password", TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()

    # The refresh token is in an HttpOnly cookie scoped to the auth path; nothing readable.
    cookies = {c["name"]: c for c in context.cookies()}
    assert (
        cookies["parley_refresh"]["httpOnly"] and cookies["parley_refresh"]["sameSite"] == "Strict"
    )
    assert cookies["parley_refresh"]["path"] == "/api/v1/auth"
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("JSON.stringify(localStorage)").find("refresh") < 0

    page.reload()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()

    page.locator("html[data-e2ee-device]").wait_for(state="attached")
    page.get_by_role("button", name="Your account").click()
    page.get_by_role("menuitem", name="Log out").click()
    # This browser's E2EE device goes with the session (docs/e2ee.md): a warning first.
    page.get_by_role("dialog", name="Log out of this browser?").get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.reload()
    expect(page.locator(".auth-card")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login$"))

    page.fill("#login-username", username)
    page.fill("#login-password", "wrong password entirely")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_contain_text("don't match")
    page.fill("#login-password", TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Welcome, Regina Tester")).to_be_visible()
    assert not shots.errors, shots.errors


def test_profile_sessions_and_contacts(shots: Browser, rest: Rest) -> None:
    alice = rest.user("prof", "Pat Profile")
    bob = rest.user("profb", "Quinn Contact")
    page = open_as(shots, alice, "/settings")
    name = page.get_by_label("Display name", exact=True)  # not the bot card's "Bot display name"
    name.fill("Pat P. Profile")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#toast")).to_contain_text("Profile saved")
    assert rest.call(alice, "GET", "/users/me")["user"]["display_name"] == "Pat P. Profile"
    sessions = page.get_by_role("list", name="Signed-in devices")
    expect(sessions.locator(".session-row")).to_have_count(2)  # the REST login and this one
    expect(sessions.locator(".session-row.is-current")).to_contain_text("This device")
    sessions.locator(".session-row:not(.is-current)").get_by_role("button", name="Sign out").click()
    expect(sessions.locator(".session-row")).to_have_count(1)

    # Contacts: request, accept on the other side, block and unblock.
    page.goto("/contacts")
    page.get_by_role("searchbox", name="Find people to add as contacts").fill(bob.username)
    page.get_by_role("option", name=re.compile("Quinn Contact")).click()
    expect(page.locator("#toast")).to_contain_text("Contact request sent")
    bob_page = open_as(shots, bob, "/contacts")
    bob_page.get_by_role("tab", name=re.compile("Requests")).click()
    bob_page.get_by_role("button", name="Accept").click()
    expect(bob_page.locator("#toast")).to_contain_text("is now a contact")
    bob_page.get_by_role("tab", name="Contacts").click()
    expect(bob_page.locator(".person-row")).to_contain_text("Pat P. Profile")
    bob_page.get_by_role("button", name="Block").click()
    bob_page.get_by_role("dialog").get_by_role("button", name="Block").click()
    expect(bob_page.locator("#toast")).to_contain_text("Blocked Pat P. Profile")
    # The lists reloaded (Pat is no contact now) before another tab is chosen.
    expect(bob_page.get_by_role("tabpanel")).to_contain_text("No contacts yet")
    bob_page.get_by_role("tab", name="Blocked").click()
    expect(bob_page.locator(".person-row")).to_contain_text("Pat P. Profile")
    bob_page.get_by_role("button", name="Unblock").click()
    expect(bob_page.locator(".person-row")).to_have_count(0)
    assert not shots.errors, shots.errors


def test_a_session_revoked_elsewhere_ends_in_the_login_page(shots: Browser, rest: Rest) -> None:
    alice = rest.user("revoke", "Rev Oked")
    page = open_as(shots, alice)
    expect(page.get_by_role("heading", name="Welcome, Rev Oked")).to_be_visible()
    rest.call(alice, "POST", "/auth/logout-all")
    # Nothing to click: the server closes the page's socket at once (4001), and the page's
    # refresh then finds the session gone.
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".form-notice")).to_contain_text("Your session has ended")
    page.reload()
    expect(page.locator(".auth-card")).to_be_visible()
