"""The web client in a real Chromium — archiving a conversation from the admin console: the
member looking at it sees it turn read-only at once (the note instead of the composer,
"Archived" in the header) with its history still there, and the composer comes back when
the administrator unarchives it."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, make_admin, open_as
from tests.support.server_process import ServerProcess


def test_archive_from_the_admin_console(shots: Browser, rest: Rest, web_server: ServerProcess) -> None:
    admin = make_admin(web_server, rest)
    alice = rest.user("arch")
    bob = rest.user("arcb")
    group = rest.group(alice, "Finished project", [bob])
    rest.send(bob, group["id"], "final report attached")

    page = open_as(shots, alice, f"/c/{group['id']}")
    expect(page.locator(".msg", has_text="final report attached")).to_be_visible()
    composer = page.locator(".conv-main-col .composer").first
    expect(composer).to_be_visible()

    console = open_as(shots, admin, "/")
    console.get_by_role("link", name="Admin", exact=True).click()
    console.get_by_role("link", name="Conversations").click()
    console.get_by_role("searchbox", name="Search conversations").fill("Finished project")
    room = console.locator(f'.admin-conversation[data-conversation-id="{group["id"]}"]')
    room.get_by_role("button", name="Archive").click()
    expect(room).to_contain_text("Archived")
    expect(room.get_by_role("button", name="Unarchive")).to_be_visible()

    # The member sees it read-only without reloading; the history stays.
    expect(page.locator(".archived-note")).to_be_visible()
    expect(page.locator(".conv-subtitle")).to_contain_text("Archived")
    expect(composer).to_be_hidden()
    expect(page.locator(".msg", has_text="final report attached")).to_be_visible()

    room.get_by_role("button", name="Unarchive").click()
    expect(room.get_by_role("button", name="Archive")).to_be_visible()
    expect(page.locator(".archived-note")).to_be_hidden()
    expect(composer).to_be_visible()
    assert not shots.errors, shots.errors
