"""Integrations in the web client (DESIGN §6.6), in a real Chromium: an incoming webhook's
post appears live, marked as a bot's; the composer's slash-command menu completes and runs
commands, an ephemeral answer shows only to the caller; bots and webhooks are managed from
Settings and the group's details panel."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from playwright.sync_api import expect

from tests.support.attachment_helpers import png_bytes
from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, message, open_as, unique


@contextmanager
def command_endpoint(answer: dict[str, str]) -> Iterator[tuple[str, list[bytes]]]:
    """A slash-command endpoint on loopback (the browser tests are synchronous: a thread)."""
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/command", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def composer(page: object) -> object:
    return page.locator("#composer-input")  # type: ignore[attr-defined]


def test_incoming_webhook_post_appears_live(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    group = rest.group(ann, unique("Deploys"), [])
    hook = rest.call(ann, "POST", f"/conversations/{group['id']}/webhooks", json={"kind": "incoming", "name": "CI"})["webhook"]
    page = open_as(shots, ann, f"/c/{group['id']}")
    expect(composer(page)).to_be_visible()
    posted = httpx.post(shots.base_url + hook["path"], json={"text": "Build **42** passed"}, timeout=10)
    assert posted.status_code == 200, posted.text
    expect(message(page, "Build 42 passed")).to_be_visible()
    row = page.locator(".msg", has=page.locator(".msg-text", has_text="Build 42 passed"))
    expect(row.locator(".msg-author")).to_have_text("CI")
    expect(row.locator(".bot-tag")).to_have_text("Bot")
    assert shots.errors == []


def test_slash_commands_in_the_composer(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    bob = rest.user("bob")
    group = rest.group(ann, unique("Slash"), [bob])
    bob_page = open_as(shots, bob, f"/c/{group['id']}")
    ann_page = open_as(shots, ann, f"/c/{group['id']}")
    box = composer(bob_page)

    # "/" offers the commands; typing narrows; Tab completes.
    box.fill("/")
    menu = bob_page.get_by_role("listbox", name="Commands")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("option")).to_have_count(4)
    box.press_sequentially("sh")
    expect(menu.get_by_role("option")).to_have_count(1)
    box.press("Tab")
    expect(box).to_have_value("/shrug ")
    expect(menu).to_be_hidden()
    box.press_sequentially("oh well")
    box.press("Enter")
    expect(message(ann_page, "oh well ¯\\_(ツ)_/¯")).to_be_visible()
    expect(box).to_have_value("")

    # An ephemeral answer: a note for bob only.
    box.fill("/mute")
    box.press("Enter")
    note = bob_page.locator(".command-note")
    expect(note).to_contain_text("Only visible to you")
    expect(note).to_contain_text("This conversation is muted")
    expect(bob_page.locator(".command-note")).to_have_count(1)  # the event and the answer: once

    # An unknown command is explained the same way, and nothing is sent.
    box.fill("/nosuch thing")
    box.press("Enter")
    expect(bob_page.locator(".command-note.is-error")).to_contain_text("/nosuch is not a command here")

    # Ann saw the public answer, never bob's notes: her next message arrives after them.
    rest.send(ann, group["id"], "after the notes")
    expect(message(ann_page, "after the notes")).to_be_visible()
    expect(ann_page.locator(".command-note")).to_have_count(0)
    assert shots.errors == []


def test_manage_bots_and_webhooks(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    group = rest.group(ann, unique("Hooks"), [])
    page = open_as(shots, ann, "/settings")
    card = page.locator("section.card", has=page.get_by_role("heading", name="Bots"))
    expect(card.get_by_text("No bots yet.")).to_be_visible()
    name = unique("helper")
    card.get_by_label("Bot username").fill(name)
    card.get_by_label("Bot display name").fill("Helper")
    card.get_by_role("button", name="Create bot").click()
    dialog = page.get_by_role("dialog", name=f"Bot @{name} created")
    token = dialog.get_by_label("Its token").input_value()
    assert token.startswith("pbot_")
    dialog.get_by_role("button", name="Done").click()
    expect(card.locator(".bot-row")).to_have_count(1)
    me = httpx.get(shots.base_url + "/api/v1/users/me", headers={"Authorization": f"Bot {token}"}, timeout=10)
    assert me.status_code == 200 and me.json()["user"]["is_bot"] is True

    # A picture for the bot: shown in its row at once, then removed.
    row = card.locator(".bot-row")
    expect(row.locator(".avatar img")).to_have_count(0)
    card.get_by_label(f"Picture for @{name}").set_input_files(
        files=[{"name": "bot.png", "mimeType": "image/png", "buffer": png_bytes(120, 90)}]
    )
    expect(row.locator(".avatar img")).to_have_attribute("src", re.compile(r"/api/v1/avatars/.+/64$"))
    bot_profile = httpx.get(shots.base_url + "/api/v1/users/me", headers={"Authorization": f"Bot {token}"}, timeout=10)
    assert bot_profile.json()["user"]["avatar"] is not None
    card.get_by_role("button", name=f"Remove the picture of @{name}").click()
    expect(row.locator(".avatar img")).to_have_count(0)
    expect(card.get_by_role("button", name=f"Remove the picture of @{name}")).to_have_count(0)

    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete bot").click()
    expect(card.get_by_text("No bots yet.")).to_be_visible()
    gone = httpx.get(shots.base_url + "/api/v1/users/me", headers={"Authorization": f"Bot {token}"}, timeout=10)
    assert gone.status_code == 401

    # The group's details: add an incoming webhook, use its URL, delete it.
    page.goto(f"/c/{group['id']}")
    page.get_by_role("button", name="Group settings").click()
    section = page.locator(".webhooks-section")
    expect(section.get_by_text("No webhooks.")).to_be_visible()
    section.get_by_role("button", name="Incoming webhook").click()
    create = page.get_by_role("dialog", name="Add an incoming webhook")
    create.get_by_label("Name").fill("Alerts")
    create.get_by_role("button", name="Create").click()
    shown = page.get_by_role("dialog", name="Webhook Alerts")
    url = shown.get_by_label("Its URL").input_value()
    assert re.search(r"/hooks/[0-9A-Z]{26}/\S+$", url)
    shown.get_by_role("button", name="Done").click()
    expect(section.locator(".webhook-row")).to_have_count(1)
    assert httpx.post(url, json={"text": "disk almost full"}, timeout=10).status_code == 200
    expect(message(page, "disk almost full")).to_be_visible()
    section.get_by_role("button", name="Delete webhook Alerts").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(section.get_by_text("No webhooks.")).to_be_visible()
    assert httpx.post(url, json={"text": "too late"}, timeout=10).status_code == 404

    # A custom slash command for this group, run from the composer against its endpoint.
    with command_endpoint({"text": "pong from the endpoint"}) as (endpoint, seen):
        section.get_by_role("button", name="Slash command").click()
        add = page.get_by_role("dialog", name="Add a slash command")
        add.get_by_label("Name").fill("pingme")
        add.get_by_label("URL").fill(endpoint)
        add.get_by_label("Description").fill("Answers pong")
        add.get_by_role("button", name="Create").click()
        secret_dialog = page.get_by_role("dialog", name="Command /pingme")
        assert len(secret_dialog.get_by_label("Its signing secret").input_value()) >= 40
        secret_dialog.get_by_role("button", name="Done").click()
        expect(section.locator(".command-list .webhook-row")).to_have_count(1)
        box = composer(page)
        box.fill("/ping")
        expect(page.get_by_role("listbox", name="Commands").get_by_role("option", name="/pingme: Answers pong")).to_be_visible()
        box.press("Tab")
        box.press_sequentially("now")
        box.press("Enter")
        expect(page.locator(".command-note")).to_contain_text("pong from the endpoint")
        assert json.loads(seen[0])["text"] == "now"
    section.get_by_role("button", name="Delete command /pingme").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(section.locator(".command-list .webhook-row")).to_have_count(0)
    assert shots.errors == []
