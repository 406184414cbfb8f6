"""The web client over the real-time gateway (``/ws``), in Chromium: two or three people in
separate browser contexts see each other's messages, typing, receipts, edits, deletes,
reactions and membership changes live; going offline shows the banner and nothing is lost
or duplicated when the connection comes back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import IN_CI, TEST_PASSWORD
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, message, open_as, unique
from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module", autouse=True)
def gateway(web_server: ServerProcess) -> None:
    """These tests need ``/ws``; before the gateway existed they were skipped (never in CI)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(web_server.base_url.replace("http", "ws") + "/ws", open_timeout=5):
            pass
    except InvalidStatus as exc:
        message = f"the gateway does not answer on /ws ({exc})"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def connected(page) -> None:
    """Wait until the client is identified on the gateway (no banner, state ready)."""
    page.wait_for_function(
        "() => document.querySelector('.connection-banner')?.dataset.state === 'ready'"
    )


def register(browser: Browser, username: str, display_name: str):
    context = browser.context()
    page = browser.page(context)
    page.goto("/register")
    page.fill("#register-username", username)
    page.fill("#register-display_name", display_name)
    page.fill("#register-password", TEST_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name=f"Welcome, {display_name}")).to_be_visible()
    connected(page)
    return page


def test_two_people_chat_live(shots: Browser) -> None:
    alice_name, bob_name = unique("ali"), unique("bobby")
    alice = register(shots, alice_name, "Alice Live")
    bob = register(shots, bob_name, "Bob Live")

    # Alice opens a DM with Bob from user search and says hello.
    alice.get_by_role("button", name="New message").first.click()
    dialog = alice.get_by_role("dialog", name="New message")
    dialog.get_by_role("searchbox").fill(bob_name)
    dialog.get_by_role("option", name=re.compile("Bob Live")).click()
    composer = alice.get_by_role("textbox", name="Message Bob Live")
    composer.fill("Hi Bob, are you there?")
    composer.press("Enter")
    mine = alice.locator(".msg.is-own", has_text="Hi Bob, are you there?")
    expect(mine.locator(".msg-ticks")).to_have_attribute(
        "data-status", re.compile("sent|delivered")
    )

    # Bob gets it live: the conversation appears with an unread badge; the title counts it.
    item = bob.locator(".conv-item", has_text="Alice Live")
    expect(item.locator(".badge")).to_have_text("1")
    expect(bob).to_have_title(re.compile(r"^\(1\) "))
    expect(mine.locator(".msg-ticks")).to_have_attribute("data-status", "delivered")
    item.click()
    expect(message(bob, "are you there?")).to_be_visible()
    # Reading it turns Alice's ticks to read.
    expect(mine.locator(".msg-ticks")).to_have_attribute("data-status", "read")
    expect(bob).not_to_have_title(re.compile(r"^\("))

    # Typing shows on the other side, and stops.
    bob_box = bob.get_by_role("textbox", name="Message Alice Live")
    bob_box.type("Yes, I'm h")
    expect(alice.locator(".typing")).to_contain_text("Bob Live is typing")
    bob_box.type("ere!")
    bob_box.press("Enter")
    expect(message(alice, "Yes, I'm here!")).to_be_visible()
    expect(alice.locator(".typing")).not_to_contain_text("typing")

    # Alice edits her message: Bob sees the new text, marked edited.
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    editor = alice.get_by_role("textbox", name="Edit message")
    editor.fill("Hi Bob, are you there? (edited to add: lunch?)")
    editor.press("Enter")
    expect(message(bob, "lunch?")).to_contain_text("(edited)")

    # Bob reacts; Alice sees the count and who reacted.
    theirs = bob.locator(".msg", has_text="lunch?")
    theirs.hover()
    theirs.get_by_role("button", name="Add reaction").click()
    bob.get_by_role("button", name="React with 👍").first.click()
    chip = alice.locator(".msg", has_text="lunch?").locator(".reaction", has_text="👍")
    expect(chip.locator(".reaction-count")).to_have_text("1")
    expect(chip).to_have_attribute("title", re.compile("Bob Live reacted"))
    chip.click()  # Alice adds hers
    expect(
        bob.locator(".msg", has_text="lunch?").locator(".reaction .reaction-count")
    ).to_have_text("2")

    # A reply with a quote, then Bob deletes his message: Alice sees the tombstone.
    reply_target = alice.locator(".msg", has_text="Yes, I'm here!")
    reply_target.hover()
    reply_target.get_by_role("button", name="Reply").click()
    composer.fill("Great, see you at noon")
    composer.press("Enter")
    expect(bob.locator(".msg", has_text="see you at noon").locator(".msg-quote")).to_contain_text(
        "Yes, I'm here!"
    )
    own = bob.locator(".msg.is-own", has_text="Yes, I'm here!")
    own.hover()
    own.get_by_role("button", name="More actions").click()
    bob.get_by_role("menuitem", name="Delete message").click()
    bob.get_by_role("dialog", name="Delete message?").get_by_role("button", name="Delete").click()
    expect(alice.locator(".msg.is-deleted")).to_contain_text("This message was deleted")
    expect(alice.locator(".msg", has_text="see you at noon").locator(".msg-quote")).to_contain_text(
        "deleted"
    )
    assert not shots.errors, shots.errors


def test_group_membership_changes_live(shots: Browser, rest: Rest) -> None:
    owner = rest.user("gown", "Gwen Owner")
    bob = rest.user("gbob", "Gabe Member")
    carol = rest.user("gcar", "Cora Newcomer")
    conversation = rest.group(owner, "Live crew", [bob])
    owner_page = open_as(shots, owner, f"/c/{conversation['id']}")
    bob_page = open_as(shots, bob, f"/c/{conversation['id']}")
    carol_page = open_as(shots, carol)
    for page in (owner_page, bob_page, carol_page):
        connected(page)

    owner_page.get_by_role("button", name="Group settings").click()
    panel = owner_page.get_by_role("complementary", name="Conversation details")
    panel.get_by_role("button", name="Add people").click()
    add = owner_page.get_by_role("dialog", name="Add people")
    add.get_by_role("searchbox").fill(carol.username)
    add.get_by_role("option", name=re.compile("Cora Newcomer")).click()
    add.get_by_role("button", name="Add", exact=True).click()

    # Carol's sidebar gets the group without a reload; Bob sees the system message.
    expect(
        carol_page.locator(f'.conv-item[data-conversation-id="{conversation["id"]}"]')
    ).to_contain_text("Live crew")
    expect(bob_page.locator(".msg-system", has_text="added Cora Newcomer")).to_be_visible()

    # The owner's member list (which the autocomplete reads) reloads on member.added.
    expect(panel.get_by_role("button", name="Actions for Cora Newcomer")).to_be_visible()
    owner_box = owner_page.get_by_role("textbox", name="Message Live crew")
    # @mention autocomplete: typing "@" and a prefix offers members; Enter picks one.
    owner_box.type("Welcome @" + carol.username[:4])
    expect(owner_page.get_by_role("option", name=re.compile("Cora Newcomer"))).to_be_visible()
    owner_box.press("Enter")
    expect(owner_box).to_have_value(f"Welcome @{carol.username} ")
    owner_box.type("glad you're here")
    owner_box.press("Enter")
    carol_page.locator(f'.conv-item[data-conversation-id="{conversation["id"]}"]').click()
    mention = carol_page.locator(".msg.is-mentioned .mention-me")
    expect(mention).to_have_text("@" + carol.username)

    # "Read by N" on the owner's message as people read it.
    ticks = owner_page.locator(".msg.is-own", has_text="Welcome").locator(".msg-ticks")
    expect(ticks).to_have_attribute("data-status", "read")  # Bob and Carol both have it open

    # Removing Bob: his open conversation turns into the no-access view, live.
    panel.get_by_role("button", name="Actions for Gabe Member").click()
    owner_page.get_by_role("menuitem", name="Remove from group").click()
    owner_page.get_by_role("dialog", name="Remove from group?").get_by_role(
        "button", name="Remove"
    ).click()
    expect(
        bob_page.get_by_role("heading", name="You don't have access to this conversation")
    ).to_be_visible()
    expect(bob_page.locator(".conv-item")).to_have_count(0)
    expect(carol_page.locator(".msg-system", has_text="removed Gabe Member")).to_be_visible()
    assert not shots.errors, shots.errors


def test_offline_banner_catch_up_and_queued_send(shots: Browser, rest: Rest) -> None:
    alice = rest.user("offa", "Olga Offline")
    bob = rest.user("offb", "Otto Online")
    conversation = rest.direct(alice, bob)
    rest.send(bob, conversation["id"], "before the outage")
    alice_page = open_as(shots, alice, f"/c/{conversation['id']}")
    bob_page = open_as(shots, bob, f"/c/{conversation['id']}")
    connected(alice_page)
    connected(bob_page)

    alice_context = alice_page.context
    alice_context.set_offline(True)
    banner = alice_page.locator(".connection-banner")
    expect(banner).to_have_attribute("data-state", "offline")
    expect(banner).to_contain_text("You're offline")

    # Meanwhile Bob writes; Alice writes too, into the outbox.
    bob_box = bob_page.get_by_role("textbox", name="Message Olga Offline")
    bob_box.fill("sent while you were away")
    bob_box.press("Enter")
    expect(bob_page.locator(".msg.is-pending")).to_have_count(0)
    alice_box = alice_page.get_by_role("textbox", name="Message Otto Online")
    alice_box.fill("typed while offline")
    alice_box.press("Enter")
    queued = alice_page.locator(".msg.is-pending", has_text="typed while offline")
    expect(queued).to_contain_text("Waiting for connection")
    expect(banner).to_contain_text("1 message will be sent")
    expect(message(alice_page, "sent while you were away")).to_have_count(0)

    alice_context.set_offline(False)
    expect(banner).to_be_hidden()
    expect(message(alice_page, "sent while you were away")).to_be_visible()
    expect(alice_page.locator(".msg.is-pending")).to_have_count(0)
    expect(message(bob_page, "typed while offline")).to_have_count(1)
    expect(message(alice_page, "typed while offline")).to_have_count(1)
    contents = [m["content"] for m in rest.history(bob, conversation["id"])]
    assert contents.count("typed while offline") == 1
    assert contents.count("sent while you were away") == 1
    unexpected = [e for e in shots.errors if "ERR_INTERNET_DISCONNECTED" not in e]
    assert not unexpected, unexpected


def test_reload_keeps_live_session(shots: Browser, rest: Rest) -> None:
    alice = rest.user("rel", "Rhea Reload")
    bob = rest.user("relb", "Ben Reload")
    conversation = rest.direct(alice, bob)
    page = open_as(shots, alice, f"/c/{conversation['id']}")
    connected(page)
    page.reload()
    connected(page)
    rest.send(bob, conversation["id"], "arrives after the reload")
    expect(message(page, "arrives after the reload")).to_be_visible()
    assert not shots.errors, shots.errors


HIDDEN_TAB_WITH_NOTIFICATIONS = """
window.__notes = [];
class FakeNotification {
  constructor(title, options) { window.__notes.push({ title, body: options && options.body }); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
  close() {}
}
Object.defineProperty(window, "Notification", { value: FakeNotification, configurable: true });
Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
Object.defineProperty(document, "hidden", { get: () => true, configurable: true });
document.hasFocus = () => false;
"""


def test_desktop_notification_while_the_tab_is_hidden(shots: Browser, rest: Rest) -> None:
    alice = rest.user("note", "Nora Notified")
    bob = rest.user("noteb", "Ned Notifier")
    conversation = rest.direct(alice, bob)
    context = shots.context()
    context.add_init_script(script=HIDDEN_TAB_WITH_NOTIFICATIONS)
    context.request.post(
        "/api/v1/auth/login",
        data={"username": alice.username, "password": TEST_PASSWORD, "cookie": True},
    )
    page = shots.page(context)
    page.goto(f"/c/{conversation['id']}")
    connected(page)
    rest.send(bob, conversation["id"], "ping while you're away")
    page.wait_for_function("() => window.__notes.length === 1")
    assert page.evaluate("window.__notes") == [
        {"title": "Ned Notifier", "body": "ping while you're away"}
    ]
    # Hidden, so not read: the title counts it.
    expect(page).to_have_title(re.compile(r"^\(1\) Ned Notifier"))
    rest.send(alice, conversation["id"], "my own messages never notify me")
    expect(message(page, "never notify me")).to_be_visible()
    assert page.evaluate("window.__notes.length") == 1
