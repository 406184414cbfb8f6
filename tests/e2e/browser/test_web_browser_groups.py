"""The web client in a real Chromium — groups: creating one, adding, promoting and removing
members, renaming, and leaving; a removed member loses access."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, open_as


def test_group_create_add_remove_and_settings(shots: Browser, rest: Rest) -> None:
    owner = rest.user("own", "Olivia Owner")
    bob = rest.user("gbob", "Gary Bob")
    carol = rest.user("gcar", "Carol Cole")
    page = open_as(shots, owner)
    page.get_by_role("button", name="New group").first.click()
    dialog = page.get_by_role("dialog", name="New group")
    dialog.get_by_label("Group name").fill("Launch crew")
    picker = dialog.get_by_role("searchbox")
    picker.fill(bob.username)
    dialog.get_by_role("option", name=re.compile("Gary Bob")).click()
    expect(dialog.locator(".chip")).to_have_text(["Gary Bob"])
    dialog.get_by_role("button", name="Create group").click()
    expect(page.get_by_role("heading", name="Launch crew", level=1)).to_be_visible()
    expect(page.locator(".msg-system")).to_contain_text("created the group")

    page.get_by_role("button", name="Group settings").click()
    panel = page.get_by_role("complementary", name="Conversation details")
    expect(panel.locator(".member-row")).to_have_count(2)
    panel.get_by_role("button", name="Add people").click()
    add = page.get_by_role("dialog", name="Add people")
    add.get_by_role("searchbox").fill(carol.username)
    add.get_by_role("option", name=re.compile("Carol Cole")).click()
    add.get_by_role("button", name="Add", exact=True).click()
    expect(panel.locator(".member-row")).to_have_count(3)
    expect(page.locator(".msg-system", has_text="added Carol Cole")).to_be_visible()

    # Promote Carol, then remove Gary.
    panel.get_by_role("button", name="Actions for Carol Cole").click()
    page.get_by_role("menuitem", name="Make admin").click()
    expect(panel.locator(".member-row", has_text="Carol Cole").locator(".role-badge")).to_have_text(
        "Admin"
    )
    panel.get_by_role("button", name="Actions for Gary Bob").click()
    page.get_by_role("menuitem", name="Remove from group").click()
    page.get_by_role("dialog", name="Remove from group?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(panel.locator(".member-row")).to_have_count(2)

    # Rename.
    panel.get_by_label("Name").fill("Launch crew 2")
    panel.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Launch crew 2", level=1)).to_be_visible()
    conversation_id = page.url.rsplit("/", 1)[1]

    # The removed member has lost it; Carol has it.
    bob_page = open_as(shots, bob)
    expect(bob_page.locator(".conv-item")).to_have_count(0)
    bob_page.goto(f"/c/{conversation_id}")
    expect(
        bob_page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    carol_page = open_as(shots, carol)
    expect(conversation_link(carol_page, conversation_id)).to_contain_text("Launch crew 2")

    # Leaving.
    conversation_link(carol_page, conversation_id).click()
    carol_page.get_by_role("button", name="Group settings").click()
    carol_page.get_by_role("button", name="Leave group").click()
    carol_page.get_by_role("dialog", name="Leave this group?").get_by_role(
        "button", name="Leave group"
    ).click()
    expect(conversation_link(carol_page, conversation_id)).to_have_count(0)
    assert not shots.errors, shots.errors
