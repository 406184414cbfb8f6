"""The web client in a real Chromium — a group's picture: its owner sets it from the details
panel; it replaces the hash sign in the conversation list, the header and the details panel,
for another member too without a reload; "Remove picture" brings the sign back."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.support.attachment_helpers import png_bytes
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, open_as


def test_group_picture(shots: Browser, rest: Rest, tmp_path: Path) -> None:
    alice = rest.user("gpa")
    bob = rest.user("gpb")
    group = rest.group(alice, "Pictured team", [bob])
    picture = tmp_path / "team.png"
    picture.write_bytes(png_bytes())

    watcher = open_as(shots, bob, f"/c/{group['id']}")
    item = watcher.locator(f'.conv-item[data-conversation-id="{group["id"]}"] .avatar-img')
    expect(watcher.locator(".conv-header .avatar-group")).to_be_visible()
    expect(item).to_have_count(0)

    page = open_as(shots, alice, f"/c/{group['id']}")
    page.get_by_role("button", name="Group settings").click()
    page.locator(f"#group-avatar-file-{group['id']}").set_input_files(str(picture))
    expect(page.locator(".toast").last).to_contain_text("Group picture updated")
    expect(page.locator(".details-hero .avatar-img")).to_be_visible()
    expect(page.locator(".conv-header .avatar-img")).to_be_visible()

    # The other member sees it in the list and the header without reloading.
    expect(item).to_be_visible()
    expect(watcher.locator(".conv-header .avatar-img")).to_be_visible()
    src = item.get_attribute("src") or ""
    assert src.startswith(f"/api/v1/group-avatars/{group['id']}/")

    page.get_by_role("button", name="Remove picture").click()
    expect(page.locator(".details-hero .avatar-img")).to_have_count(0)
    expect(item).to_have_count(0)
    assert not shots.errors, shots.errors
