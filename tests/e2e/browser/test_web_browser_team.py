"""The web client in a real Chromium — threads (the panel beside the conversation, a full
screen on phones, live replies and summaries, "also send to the conversation", the
Threads view), pins (the menu, the system line, the details panel), forwarding (the
dialog, the attribution), the public group directory, and invite links (copied, made,
listed and revoked in the details panel, joined from their page)."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import (
    MOBILE,
    UPDATE_SCREENSHOTS,
    Browser,
    Rest,
    conversation_link,
    message,
    open_as,
)
from tests.support.paths import SCREENSHOTS

# docs/team-chat.md shows these screens; refreshed as test_web_screenshots refreshes its own.


def document(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if UPDATE_SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_threads_panel_live_replies_and_the_threads_view(shots: Browser, rest: Rest) -> None:
    alice = rest.user("thra", "Ada Thread")
    bob = rest.user("thrb", "Ben Thread")
    group = rest.group(alice, "Thread crew", [bob])
    cid = group["id"]
    root = rest.send(alice, cid, "which release name?")

    bob_page = open_as(shots, bob, f"/c/{cid}")
    alice_page = open_as(shots, alice, f"/c/{cid}")
    bubble = bob_page.locator(".msg", has_text="which release name?")
    bubble.hover()
    bubble.get_by_role("button", name="Thread", exact=True).click()
    panel = bob_page.get_by_role("complementary", name="Thread")
    expect(panel.locator(".thread-root")).to_contain_text("which release name?")
    box = panel.get_by_role("textbox", name="Reply in thread")
    expect(box).to_be_focused()
    box.fill("Hummingbird")
    box.press("Enter")
    expect(panel.locator(".thread-replies .msg-text")).to_have_text(["Hummingbird"])
    # The reply stays in its thread; the root shows the summary, live on both sides.
    expect(message(bob_page, "Hummingbird")).to_have_count(0)
    for page in (bob_page, alice_page):
        summary = page.locator(".msg", has_text="which release name?").locator(".msg-thread")
        expect(summary).to_contain_text("1 reply")
    assert "thread=" in bob_page.url

    # Alice opens it from the summary, sees the reply, answers "also to the conversation".
    alice_page.locator(".msg-thread").click()
    alice_panel = alice_page.get_by_role("complementary", name="Thread")
    expect(alice_panel.locator(".thread-replies .msg-text")).to_have_text(["Hummingbird"])
    alice_panel.get_by_label("Also send to the conversation").check()
    alice_panel.get_by_role("textbox", name="Reply in thread").fill("Hummingbird it is")
    alice_panel.get_by_role("button", name="Reply", exact=True).click()
    expect(panel.locator(".thread-replies .msg-text")).to_have_text(["Hummingbird", "Hummingbird it is"])
    expect(message(bob_page, "Hummingbird it is")).to_be_visible()  # in the timeline too
    expect(bob_page.locator(".msg", has_text="which release name?").locator(".msg-thread")).to_contain_text("2 replies")
    document(bob_page, "thread-light-desktop")

    # The Threads view lists what Bob follows (he took part), with what he has not read
    # (his open panel read everything so far; now it is closed).
    bob_page.close()
    kestrel = rest.send(alice, cid, "one more idea: Kestrel", thread_root_id=root["id"])
    threads_page = open_as(shots, bob, "/threads")
    item = threads_page.locator(".threads-item", has_text="which release name?")
    expect(item).to_be_visible()
    expect(item.locator(".badge")).to_have_text("1")
    item.locator("a").click()
    expect(threads_page.get_by_role("complementary", name="Thread").locator(".thread-replies .msg-text")).to_have_count(3)

    # A link to a reply in a thread (a search hit, a notification) opens its thread.
    linked = open_as(shots, alice, f"/c/{cid}/m/{kestrel['id']}")
    linked_panel = linked.get_by_role("complementary", name="Thread")
    expect(linked_panel.locator(".thread-replies .msg-text")).to_have_count(3)
    expect(linked.locator(".msg.is-highlighted", has_text="which release name?")).to_be_visible()

    # React to, edit and delete a reply from the panel.
    entry = linked_panel.locator(".thread-msg", has_text="Kestrel")
    entry.hover()
    entry.get_by_role("button", name="Add reaction").click()
    picker = linked.get_by_role("dialog", name="Choose a reaction")
    picker.get_by_role("searchbox", name="Search emoji").fill("rocket")
    picker.get_by_role("button", name=re.compile(r"^React with 🚀")).click()
    expect(entry.locator(".reaction", has_text="🚀")).to_have_attribute("aria-pressed", "true")
    entry.hover()
    entry.get_by_role("button", name="Edit").click()
    editor = entry.get_by_role("textbox", name="Edit reply")
    editor.fill("one more idea: Kestrel or Osprey")
    editor.press("Enter")
    expect(linked_panel.locator(".thread-msg", has_text="Osprey")).to_be_visible()
    osprey = linked_panel.locator(".thread-msg", has_text="Osprey")
    osprey.hover()
    osprey.get_by_role("button", name="Delete").click()
    linked.get_by_role("dialog", name="Delete reply?").get_by_role("button", name="Delete").click()
    expect(linked_panel.locator(".msg-tombstone")).to_have_text("This message was deleted")

    # On a phone the panel is the whole screen.
    phone = open_as(shots, bob, f"/c/{cid}?thread={root['id']}", viewport=MOBILE)
    phone_panel = phone.get_by_role("complementary", name="Thread")
    expect(phone_panel.locator(".thread-replies .msg-text")).to_have_count(3)
    document(phone, "thread-light-mobile")
    box_width = phone_panel.bounding_box()["width"]
    assert box_width == MOBILE["width"], box_width
    phone_panel.get_by_role("button", name="Close thread").click()
    expect(phone_panel).to_have_count(0)

    # The reply box is the composer: a picture and an emoji go into the thread.
    picture = io.BytesIO()
    Image.new("RGB", (320, 200), (30, 140, 90)).save(picture, format="PNG")
    linked_panel.locator("input[type=file]").set_input_files(
        {"name": "sketch.png", "mimeType": "image/png", "buffer": picture.getvalue()}
    )
    expect(linked_panel.locator(".file-chip", has_text="sketch.png")).not_to_contain_text("Uploading")
    linked_panel.get_by_role("textbox", name="Reply in thread").fill("logo sketch ")
    linked_panel.get_by_role("button", name="Insert emoji").click()
    picker = linked.get_by_role("dialog", name="Insert an emoji")
    picker.get_by_role("searchbox", name="Search emoji").fill("bird")
    picker.get_by_role("button", name=re.compile(r"^Insert 🐦")).click()
    linked_panel.get_by_role("button", name="Reply", exact=True).click()
    sent = linked_panel.locator(".thread-msg", has_text="logo sketch 🐦")
    expect(sent.locator("img.attachment-img")).to_be_visible()
    replies = rest.call(alice, "GET", f"/messages/{root['id']}/thread")["messages"]
    stored = [m for m in replies if m["content"] == "logo sketch 🐦"]
    assert len(stored) == 1 and stored[0]["thread_root_id"] == root["id"], stored
    assert [a["name"] for a in stored[0]["attachments"]] == ["sketch.png"]
    assert not shots.errors, shots.errors


def test_pins_and_forwarding(shots: Browser, rest: Rest) -> None:
    alice = rest.user("pina", "Pia Pin")
    bob = rest.user("pinb", "Bo Pin")
    group = rest.group(alice, "Pin board", [bob])
    other = rest.group(alice, "Elsewhere", [])
    rest.send(bob, group["id"], "the wiki is at /wiki")
    page = open_as(shots, alice, f"/c/{group['id']}")

    bubble = page.locator(".msg", has_text="the wiki is at /wiki")
    bubble.hover()
    bubble.get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Pin to conversation").click()
    expect(page.locator(".msg-system", has_text="You pinned a message")).to_be_visible()
    expect(bubble.locator(".msg-pinned")).to_be_visible()
    page.get_by_role("button", name="Group settings").click()
    details = page.get_by_role("complementary", name="Conversation details")
    expect(details.locator(".pin-item")).to_have_count(1)
    expect(details.locator(".pin-item")).to_contain_text("the wiki is at /wiki")
    details.locator(".pins").scroll_into_view_if_needed()
    document(page, "pins-light-desktop")

    # Forward to another conversation: the copy says where it came from.
    bubble.hover()
    bubble.get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Forward…").click()
    dialog = page.get_by_role("dialog", name="Forward message")
    dialog.get_by_label("Elsewhere").check()
    dialog.get_by_role("button", name="Forward").click()
    expect(dialog).to_have_count(0)
    conversation_link(page, other["id"]).click()
    copy = page.locator(".msg", has_text="the wiki is at /wiki")
    expect(copy.locator(".msg-forwarded")).to_have_text(re.compile("Forwarded from Bo Pin"))

    # Unpinning empties the list (back in the first conversation).
    conversation_link(page, group["id"]).click()
    bubble = page.locator(".msg", has_text="the wiki is at /wiki")
    bubble.hover()
    bubble.get_by_role("button", name="More actions").click()
    page.get_by_role("menuitem", name="Unpin").click()
    expect(page.locator(".msg-system", has_text="You unpinned a message")).to_be_visible()
    assert not shots.errors, shots.errors


def test_directory_and_invite_links(shots: Browser, rest: Rest) -> None:
    alice = rest.user("dira", "Dee Owner")
    bob = rest.user("dirb", "Dan Joiner")
    carol = rest.user("dirc", "Cy Invited")
    name = f"Open garden {alice.username}"
    public = rest.call(
        alice, "POST", "/conversations", json={"type": "group", "name": name, "member_ids": [], "visibility": "public"}
    )["conversation"]
    private = rest.group(alice, f"Back room {alice.username}", [])

    page = open_as(shots, bob, "/")
    page.get_by_role("link", name="Browse groups").click()
    page.get_by_role("searchbox", name="Search public groups").fill(alice.username)
    row = page.locator(".directory-item", has_text=name)
    expect(row).to_be_visible()
    expect(page.locator(".directory-item", has_text="Back room")).to_have_count(0)
    document(page, "directory-light-desktop")
    row.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    expect(page.locator(".msg-system", has_text="You joined")).to_be_visible()
    expect(conversation_link(page, public["id"])).to_be_visible()

    # Copy an invite link from the details panel of the private group.
    owner = open_as(shots, alice, f"/c/{private['id']}", permissions=["clipboard-read", "clipboard-write"])
    owner.get_by_role("button", name="Group settings").click()
    owner.get_by_role("button", name="Copy invite link").click()
    expect(owner.get_by_text("Copied to clipboard")).to_be_visible()
    link = owner.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/invite/[A-Za-z0-9_-]+", link), link

    # Carol, signed out, opens it: logs in, comes back to the join page, joins.
    context = shots.context()
    guest = shots.page(context)
    guest.goto(link)
    guest.get_by_label("Username").fill(carol.username)
    guest.get_by_label("Password").fill(carol.password)
    guest.get_by_role("button", name=re.compile("Log in")).click()
    expect(guest.get_by_role("heading", name=private["name"])).to_be_visible()
    guest.get_by_role("button", name="Join the group").click()
    expect(guest.get_by_role("heading", name=private["name"], level=1)).to_be_visible()
    expect(guest.locator(".msg-system", has_text="joined with an invite link")).to_be_visible()

    # The owner manages the links: the copied one shows its use; a new one limited to one
    # use is shown once; revoking the first closes it for the next visitor.
    links = owner.get_by_role("list", name="Invite links")
    expect(links.locator(".invite-row")).to_have_count(1)
    owner.get_by_role("button", name="New link").click()
    owner.locator("#invite-lifetime").select_option(label="1 day")
    owner.locator("#invite-limit").select_option(label="1 use")
    owner.get_by_role("button", name="Create link").click()
    once = owner.get_by_role("textbox", name="The link")
    expect(once).to_have_value(re.compile(r"http://127\.0\.0\.1:\d+/invite/[A-Za-z0-9_-]+"))
    assert once.input_value() != link
    owner.get_by_role("button", name="Done").click()
    expect(links.locator(".invite-row")).to_have_count(2)
    expect(links.locator(".invite-row", has_text="0 of 1 used")).to_be_visible()
    used = links.locator(".invite-row", has_text="1 used").filter(has_not_text="of 1")
    expect(used.locator(".tag")).to_have_text("Active")  # reloaded after the new link: Carol's use shows
    links.scroll_into_view_if_needed()
    document(owner, "invite-links-light-desktop")
    used.get_by_role("button", name=re.compile("Revoke")).click()
    owner.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(used.locator(".tag")).to_have_text("Revoked")
    expect(used.get_by_role("button", name=re.compile("Revoke"))).to_have_count(0)
    listed = rest.call(alice, "GET", f"/conversations/{private['id']}/invites")["invites"]
    assert sorted((i["revoked"], i["max_uses"], i["uses"]) for i in listed) == [(False, 1, 0), (True, None, 1)]
    page.goto(link)  # Bob is not in the group
    expect(page.get_by_role("alert")).to_contain_text("revoked")
    expect(page.get_by_role("button", name="Join the group")).to_be_disabled()
    assert not shots.errors, shots.errors
