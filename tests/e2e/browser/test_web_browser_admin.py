"""The web client in a real Chromium — account security and administration: changing the
password, turning on two-factor auth from the QR page and logging in with a code, the
forgot-password and reset pages, reporting a message, and the admin console (an
administrator made by ``parley create-admin`` deactivates a user, resolves a report,
switches registration to invite-only and makes an invite link a newcomer registers with).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.support.account_helpers import totp_code
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import ARTIFACTS, UPDATE_SCREENSHOTS, Browser, Rest, make_admin, open_as, unique
from tests.support.paths import SCREENSHOTS
from tests.support.server_process import ServerProcess

NEW_PASSWORD = "a brand new passphrase"


def shoot(page: Any, name: str) -> None:
    """A screenshot in the test artifacts; into docs/screenshots/ too with
    ``PARLEY_UPDATE_SCREENSHOTS=1`` (as tests/e2e/browser/test_web_screenshots.py does)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if UPDATE_SCREENSHOTS:
        shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


def test_password_and_two_factor_from_settings(shots: Browser, rest: Rest) -> None:
    user = rest.user("sec")
    page = open_as(shots, user, "/settings")
    page.fill("#pw-current", "not my password at all")
    page.fill("#pw-new", NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".password-form .field-error")).to_contain_text("current password is not right")
    page.fill("#pw-current", TEST_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".toast").last).to_contain_text("Password changed")
    expect(page.locator("#pw-current")).to_have_value("")
    # The REST session of the setup was another device: signed out.
    assert rest.http.get("/api/v1/users/me", headers=user.headers).status_code == 401

    page.get_by_role("button", name="Set up two-factor authentication").click()
    dialog = page.get_by_role("dialog", name="Set up two-factor authentication")
    qr = dialog.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0  # the SVG data URI renders under the CSP
    secret = dialog.locator(".twofa-secret").inner_text()
    shoot(page, "settings-two-factor-light-desktop")
    dialog.locator("#twofa-code").fill("000000")
    dialog.get_by_role("button", name="Turn on").click()
    expect(dialog.locator(".dialog-error")).to_contain_text("isn't right")
    dialog.locator("#twofa-code").fill(totp_code(secret))
    dialog.get_by_role("button", name="Turn on").click()
    codes_dialog = page.get_by_role("dialog", name="Your recovery codes")
    expect(codes_dialog.locator(".code-list li")).to_have_count(10)
    recovery = codes_dialog.locator(".code-list li").first.inner_text()
    codes_dialog.get_by_role("button", name="I saved them").click()
    expect(page.locator(".twofa-state")).to_contain_text("10 recovery codes left")

    # Logging in again: the password, then a code.
    context = shots.context()
    login = shots.page(context)
    login.goto("/login")
    login.fill("#login-username", user.username)
    login.fill("#login-password", NEW_PASSWORD)
    login.get_by_role("button", name="Log in").click()
    expect(login.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    login.fill("#mfa-code", "123456")
    login.get_by_role("button", name="Verify").click()
    expect(login.locator("#mfa-code-error")).to_contain_text("isn't right")
    login.fill("#mfa-code", totp_code(secret, steps_ahead=1))
    login.get_by_role("button", name="Verify").click()
    expect(login.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()

    # And with a recovery code, on a third device.
    third = shots.page(shots.context())
    third.goto("/login")
    third.fill("#login-username", user.username)
    third.fill("#login-password", NEW_PASSWORD)
    third.get_by_role("button", name="Log in").click()
    third.get_by_role("button", name="Use a recovery code instead").click()
    third.fill("#mfa-code", recovery)
    third.get_by_role("button", name="Verify").click()
    expect(third.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
    assert not shots.errors, shots.errors


def test_forgot_and_reset_pages(shots: Browser, rest: Rest, web_server: ServerProcess) -> None:
    admin = make_admin(web_server, rest)
    user = rest.user("lost")
    page = shots.page(shots.context())
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/forgot-password$"))
    page.fill("#forgot-who", user.username)
    page.get_by_role("button", name="Send a reset link").click()
    expect(page.locator(".form-notice")).to_contain_text("If that account has a confirmed email address")

    link = rest.call(admin, "POST", f"/admin/users/{user.id}/password-reset-link")["url"]
    path = urlsplit(link)
    page.goto(f"{path.path}?{path.query}")
    page.fill("#reset-password", "short")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#reset-error")).to_contain_text("at least 10")
    page.fill("#reset-password", NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator(".form-notice")).to_contain_text("Your password is changed")
    page.goto(f"{path.path}?{path.query}")
    page.fill("#reset-password", "yet another passphrase")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#reset-error")).to_contain_text("already used")
    assert rest.http.post("/api/v1/auth/login", json={"username": user.username, "password": NEW_PASSWORD}).status_code == 200


def test_report_and_admin_console(shots: Browser, rest: Rest, web_server: ServerProcess) -> None:
    admin = make_admin(web_server, rest)
    alice = rest.user("rep")
    spammer = rest.user("spam")
    group = rest.group(alice, "Reported room", [spammer])
    rest.send(spammer, group["id"], "cheap watches here")

    page = open_as(shots, alice, f"/c/{group['id']}")
    row = page.locator(".msg", has_text="cheap watches here")
    row.hover()
    row.get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Report message").click()
    dialog = page.get_by_role("dialog", name="Report message")
    dialog.locator("#report-reason").fill("spam")
    dialog.get_by_role("button", name="Report").click()
    expect(page.locator(".toast").last).to_contain_text("Reported")

    console = open_as(shots, admin, "/")
    console.get_by_role("link", name="Admin", exact=True).click()
    expect(console.get_by_role("heading", name="Administration")).to_be_visible()
    console.get_by_role("link", name="Reports").click()
    report = console.locator(".report-row", has_text="cheap watches here")
    expect(report).to_contain_text("spam")
    shoot(console, "admin-reports-light-desktop")
    report.get_by_role("button", name="Delete message").click()
    expect(console.locator(".report-row", has_text="cheap watches here")).to_have_count(0)
    # The reporter is told, and the message is gone for them.
    expect(page.locator(".toast", has_text="deleted the message you reported")).to_be_visible()
    expect(page.locator(".msg .msg-text", has_text="cheap watches here")).to_have_count(0)

    # Users: find the spammer and deactivate them; their open page logs out by itself.
    spam_page = open_as(shots, spammer, "/")
    console.get_by_role("link", name="Users").click()
    console.get_by_role("searchbox", name="Search users").fill(spammer.username)
    user_row = console.locator(f'.admin-user[data-username="{spammer.username}"]')
    expect(console.locator(".admin-user")).to_have_count(1)
    console.get_by_role("searchbox", name="Search users").fill("")
    expect(console.locator(".admin-user").nth(2)).to_be_visible()
    shoot(console, "admin-users-light-desktop")
    console.get_by_role("searchbox", name="Search users").fill(spammer.username)
    expect(console.locator(".admin-user")).to_have_count(1)
    user_row.get_by_role("button", name="Deactivate").click()
    console.get_by_role("dialog").get_by_role("button", name="Deactivate").click()
    expect(user_row.get_by_role("button", name="Reactivate")).to_be_visible()
    expect(spam_page).to_have_url(re.compile(r"/login$"))

    # Registration: invite only, and an invite link a newcomer registers with.
    console.get_by_role("link", name="Registration").click()
    expect(console.locator("#registration-mode")).to_be_enabled()
    console.locator("#registration-mode").select_option("invite")
    expect(console.locator(".toast").last).to_contain_text("Registration updated")
    console.get_by_role("button", name="Create invite link").click()
    url = console.locator(".invite-url").input_value()
    console.get_by_role("dialog").get_by_role("button", name="Done").click()
    try:
        newcomer = shots.page(shots.context())
        newcomer.goto("/register")
        expect(newcomer.locator(".form-error")).to_contain_text("by invitation")
        invite_path = urlsplit(url)
        newcomer.goto(f"{invite_path.path}?{invite_path.query}")
        expect(newcomer.locator(".form-notice")).to_contain_text("You were invited")
        newcomer.fill("#register-username", unique("new"))
        newcomer.fill("#register-password", TEST_PASSWORD)
        newcomer.get_by_role("button", name="Create account").click()
        expect(newcomer.get_by_role("heading", name=re.compile("Welcome"))).to_be_visible()
        assert rest.call(admin, "GET", "/admin/invites")["invites"][0]["state"] == "used"
    finally:
        rest.call(admin, "PATCH", "/admin/settings", json={"registration": "open"})

    # Conversations: the reported room is deleted; its members see it go.
    console.get_by_role("link", name="Conversations").click()
    console.get_by_role("searchbox", name="Search conversations").fill("Reported room")
    room = console.locator(f'.admin-conversation[data-conversation-id="{group["id"]}"]')
    expect(room).to_contain_text("2")
    room.get_by_role("button", name="Delete").click()
    console.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(room).to_have_count(0)
    expect(page.locator(f'.conv-item[data-conversation-id="{group["id"]}"]')).to_have_count(0)

    console.get_by_role("link", name="Audit log").click()
    expect(console.locator(".audit-row", has_text="invite.created")).to_have_count(1)
    expect(console.locator(".audit-row", has_text="report.resolved").first).to_be_visible()
    assert not shots.errors, shots.errors


def test_profile_picture(shots: Browser, rest: Rest, tmp_path: Path) -> None:
    """A picture chosen in Settings shows in the sidebar, and to a contact in the timeline."""
    from tests.support.attachment_helpers import jpeg_with_exif

    me = rest.user("pic", "Pia Picture")
    friend = rest.user("friend")
    direct = rest.direct(friend, me)
    rest.send(me, direct["id"], "hello with a face")
    page = open_as(shots, me, "/settings")
    photo = tmp_path / "me.jpg"
    photo.write_bytes(jpeg_with_exif(400, 200))
    page.locator("#avatar-file").set_input_files(str(photo))
    expect(page.locator(".toast").last).to_contain_text("Picture updated")
    picture = page.locator(".profile-picture .avatar-img")
    expect(picture).to_be_visible()
    # Loaded and decoded: the public, immutable URL serves the 256 px square.
    page.wait_for_function(
        "() => { const i = document.querySelector('.profile-picture .avatar-img');"
        " return i && i.complete && i.naturalWidth === 256 && i.naturalHeight === 256; }"
    )
    expect(page.locator(".sidebar .avatar-img").first).to_be_visible()

    other = open_as(shots, friend, f"/c/{direct['id']}")
    row = other.locator(".msg", has_text="hello with a face")
    expect(row.locator(".avatar-img")).to_be_visible()
    # Removed: initials again, live on the other side too (user.updated).
    page.get_by_role("button", name="Remove").click()
    expect(page.locator(".profile-picture .avatar-img")).to_have_count(0)
    expect(page.locator(".profile-picture .avatar")).to_contain_text("PP")
    assert not shots.errors, shots.errors
