"""The web client in a real Chromium — your data (DESIGN §6.4): exporting with a live
progress bar and downloading the ZIP, a group's retention setting in its details, a
conversation export, and deleting the account (wrong password refused, then signed out
and unable to log in)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, message, open_as
from tests.support.server_process import ServerProcess


def zip_names(page: object, href: str) -> set[str]:
    response = page.request.get(href)  # type: ignore[attr-defined]
    assert response.status == 200, response.status
    return set(zipfile.ZipFile(io.BytesIO(response.body())).namelist())


def test_export_my_data_and_delete_account(shots: Browser, rest: Rest) -> None:
    alice = rest.user("life", "Lena Lifecycle")
    bob = rest.user("lifeb", "Bo Bystander")
    direct = rest.direct(alice, bob)
    rest.send(alice, direct["id"], "something of mine")
    page = open_as(shots, alice, "/settings")
    expect(page.locator("#email-status")).to_be_visible()
    expect(page.locator(".settings-page")).not_to_contain_text("null")  # notify-settings once did
    page.get_by_role("button", name="Export my data").click()
    exports = page.get_by_role("list", name="Your exports")
    row = exports.locator(".export-row").first
    expect(row).to_have_attribute("data-status", "ready")  # pushed by export.updated
    link = row.get_by_role("link", name="Download")
    href = link.get_attribute("href")
    assert href and "/download?" in href
    assert {"profile.json", "messages.json", "index.html"} <= zip_names(page, href)

    # Delete the account: a wrong password is refused in the dialog.
    page.get_by_role("button", name="Delete my account").click()
    dialog = page.get_by_role("dialog", name="Delete your account")
    dialog.get_by_label("Your password").fill("not my password at all")
    dialog.get_by_role("button", name="Delete my account").click()
    expect(dialog.locator(".dialog-error")).to_contain_text("password is not right")
    dialog.get_by_label("Your password").fill(TEST_PASSWORD)
    dialog.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/login")  # a fresh page: the old session's teardown may still re-render
    form = page.get_by_role("form", name="Log in")
    form.get_by_label("Username").fill(alice.username)
    form.get_by_label("Password").fill(TEST_PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_contain_text("don't match")
    # Bob still sees the conversation, her message now a tombstone (live, or when loaded:
    # a job erases messages), from "Deleted user".
    bob_page = open_as(shots, bob, f"/c/{direct['id']}")
    expect(bob_page.get_by_role("heading", name="Deleted user", level=1)).to_be_visible()
    expect(bob_page.locator(".msg-tombstone")).to_have_count(1)
    expect(message(bob_page, "something of mine")).to_have_count(0)
    assert not shots.errors, shots.errors


def test_group_retention_setting_and_conversation_export(shots: Browser, rest: Rest) -> None:
    owner = rest.user("ret", "Rita Retention")
    member = rest.user("retm", "Milo Member")
    group = rest.group(owner, "Short memory", [member])
    rest.send(owner, group["id"], "kept for a while")
    page = open_as(shots, owner, f"/c/{group['id']}")
    page.get_by_role("button", name="Group settings").click()
    panel = page.get_by_role("complementary", name="Conversation details")
    keep = panel.get_by_label("Keep messages")
    expect(keep).to_have_value("")
    keep.select_option("30")
    expect(page.locator("#toast")).to_contain_text("kept 30 days")
    assert rest.call(owner, "GET", f"/conversations/{group['id']}")["conversation"]["retention_days"] == 30
    # Every member sees the change in the timeline; a plain member cannot change it.
    member_page = open_as(shots, member, f"/c/{group['id']}")
    member_page.get_by_role("button", name="Group settings").click()
    member_panel = member_page.get_by_role("complementary", name="Conversation details")
    expect(member_panel.get_by_label("Keep messages")).to_have_value("30")
    expect(member_panel.get_by_label("Keep messages")).to_be_disabled()
    expect(member_panel.get_by_role("button", name="Export conversation")).to_have_count(0)

    # The owner exports the conversation; it shows up under Settings when ready.
    panel.get_by_role("button", name="Export conversation").click()
    expect(page.locator("#toast")).to_contain_text("Export started")
    page.goto("/settings")
    row = page.get_by_role("list", name="Your exports").locator(".export-row").first
    expect(row).to_contain_text("Short memory")
    expect(row).to_have_attribute("data-status", "ready")
    href = row.get_by_role("link", name="Download").get_attribute("href")
    assert href and {"conversation.json", "messages.json", "index.html"} <= zip_names(page, href)
    # Back to the site default.
    page.goto(f"/c/{group['id']}")
    page.get_by_role("button", name="Group settings").click()
    panel = page.get_by_role("complementary", name="Conversation details")
    panel.get_by_label("Keep messages").select_option("")
    expect(page.locator("#toast")).to_contain_text("site's retention")
    assert rest.call(owner, "GET", f"/conversations/{group['id']}")["conversation"]["retention_days"] is None
    assert not shots.errors, shots.errors


def test_messages_removed_by_retention_leave_the_open_timeline(
    shots: Browser, rest: Rest, web_server: ServerProcess
) -> None:
    owner = rest.user("exp", "Eva Expiry")
    group = rest.group(owner, "Fleeting", [])
    for text in ("old news one", "old news two"):
        rest.send(owner, group["id"], text)
    rest.call(owner, "PUT", f"/conversations/{group['id']}/retention", json={"retention_days": 1})
    page = open_as(shots, owner, f"/c/{group['id']}")
    expect(message(page, "old news two")).to_be_visible()
    # An operator runs the sweep as of the day after tomorrow (another process: no live
    # event reaches this page), then the page comes back from a network loss.
    as_of = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "parley"), "retention", "run", "--as-of", as_of],
        env=web_server.env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["messages_deleted"] >= 2
    page.context.set_offline(True)
    page.context.set_offline(False)
    expect(message(page, "old news one")).to_have_count(0)
    expect(message(page, "old news two")).to_have_count(0)
    assert not shots.errors, shots.errors
