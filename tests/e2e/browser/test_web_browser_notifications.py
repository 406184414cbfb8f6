"""The web client's notifications in a real Chromium: the service worker registers, the
app is installable (manifest, icons) and shows an offline page instead of the browser's
error page; the permission flow (granted through Playwright); the notification menu and
the default level set and show the levels; a push delivered to the service worker shows a
notification that opens the message.

What cannot run here: ``pushManager.subscribe``. Chromium refuses it in Playwright's
browser contexts (they are incognito-like; crbug.com/41124656), and it would need Google's
push service (FCM) to hand out an endpoint, which this machine cannot reach (no internet). The server side of a push (encryption, VAPID, delivery, decryption as a browser
does it) is tested against a push-service stand-in in ``test_notifications_push``; here
the push is delivered to the service worker through the DevTools protocol
(``ServiceWorker.deliverPushMessage``) with the payload the server sends, and the
notification it shows is read back with ``registration.getNotifications()``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.support.browser_helpers import *  # noqa: F403 (fixtures)
from tests.support.browser_helpers import Browser, Rest, conversation_link, open_as, unique

WORKER_READY = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return { script: registration.active && registration.active.scriptURL, scope: registration.scope };
}"""


def test_service_worker_manifest_and_offline_page(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    page = open_as(shots, ann, "/")
    worker = page.evaluate(WORKER_READY)
    assert worker["script"].endswith("/sw.js")
    assert worker["scope"] == shots.base_url + "/"

    manifest_href = page.locator('link[rel="manifest"]').get_attribute("href")
    assert manifest_href and manifest_href.endswith("/manifest.webmanifest")
    manifest = page.request.get(manifest_href)
    assert manifest.ok and manifest.headers["content-type"].startswith("application/manifest+json")
    data = json.loads(manifest.body())
    assert data["display"] == "standalone" and data["start_url"] == "/"
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        fetched = page.request.get(icon["src"])
        assert fetched.ok, icon["src"]

    # Offline: a navigation gets Parley's offline page from the worker's cache.
    errors_before = len(shots.errors)
    page.context.set_offline(True)
    try:
        page.goto("/contacts")
        expect(page.get_by_role("heading", name="You're offline")).to_be_visible()
    finally:
        page.context.set_offline(False)
    # While offline, a load the app had in flight (a picture, a call) fails as it should;
    # any other error is still one.
    shots.errors[errors_before:] = [
        error for error in shots.errors[errors_before:] if "net::ERR_INTERNET_DISCONNECTED" not in error
    ]
    page.goto("/")
    page.locator(".layout").wait_for(state="attached")
    assert shots.errors == []


def test_levels_and_mutes_from_the_conversation_menu(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    bob = rest.user("bob")
    group = rest.group(ann, unique("Crew"), [bob])
    page = open_as(shots, bob, f"/c/{group['id']}")
    bell = page.locator(".conv-header .notify-btn")
    expect(bell).to_have_attribute("aria-label", "Notifications: All messages")

    bell.click()
    page.get_by_role("menuitem", name="Direct messages and @mentions").click()
    expect(bell).to_have_attribute("aria-label", "Notifications: Direct messages and @mentions")
    assert rest.call(bob, "GET", f"/conversations/{group['id']}")["conversation"]["notify"] == "mentions"

    bell.click()
    page.get_by_role("menuitem", name="Mute for 1 hour").click()
    expect(bell).to_have_attribute("aria-label", re.compile(r"^Muted until "))
    expect(conversation_link(page, group["id"])).to_have_class(re.compile(r"\bis-muted\b"))
    muted_until = rest.call(bob, "GET", f"/conversations/{group['id']}")["conversation"]["muted_until"]
    assert muted_until is not None

    # Quiet counts: a plain message is counted softly, a mention stands out.
    rest.send(ann, group["id"], "plain news")
    rest.send(ann, group["id"], f"@{bob.username} look at this")
    page.goto("/")  # away from the conversation, so the messages stay unread
    item = conversation_link(page, group["id"])
    expect(item.locator(".badge-quiet")).to_have_text("2")
    expect(item.locator(".badge-mention")).to_have_text("@1")

    page.goto(f"/c/{group['id']}")
    bell.click()
    page.get_by_role("menuitem", name="Unmute").click()
    expect(bell).to_have_attribute("aria-label", "Notifications: Direct messages and @mentions")
    assert rest.call(bob, "GET", f"/conversations/{group['id']}")["conversation"]["muted_until"] is None

    # The default, from Settings; "Default" in the menu follows it.
    page.goto("/settings")
    page.locator(".notify-settings").get_by_role("radio", name="Nothing").check()
    expect(page.locator("#toast")).to_have_text("Saved")
    assert rest.call(bob, "GET", "/users/me/notifications")["notifications"]["notify_default"] == "none"
    page.goto(f"/c/{group['id']}")
    bell.click()
    page.get_by_role("menuitem", name="Default (Nothing)").click()
    expect(bell).to_have_attribute("aria-label", "Notifications: Nothing")
    assert rest.call(bob, "GET", f"/conversations/{group['id']}")["conversation"]["notify"] is None
    assert shots.errors == []


def test_permission_flow_and_a_push_shown_by_the_worker(shots: Browser, rest: Rest) -> None:
    ann = rest.user("ann")
    bob = rest.user("bob")
    dm = rest.direct(ann, bob)
    sent = rest.send(ann, dm["id"], "see you at noon")
    page = open_as(shots, bob, "/settings", permissions=["notifications"])
    assert page.evaluate("Notification.permission") == "granted"
    page.evaluate(WORKER_READY)
    card = page.locator(".notify-settings")
    expect(card.locator("#push-state")).to_contain_text("Get a notification on this device")

    # Turning push on asks the browser to subscribe: refused here (see above), and the card
    # says so and stays "off" — nothing half-registered on the server.
    card.locator("#push-toggle").click()
    expect(page.locator("#toast")).to_contain_text("Couldn't turn on push")
    expect(card.locator("#push-toggle")).to_have_attribute("data-state", "off")
    assert rest.call(bob, "GET", "/push/subscriptions")["subscriptions"] == []
    refusal = [e for e in shots.errors if "does not support the Push API in incognito" in e]
    assert len(refusal) == 1
    shots.errors.remove(refusal[0])

    # The payload the server pushes, delivered to the worker as a push service would.
    payload = {
        "v": 1,
        "type": "message",
        "conversation_id": dm["id"],
        "message_id": sent["id"],
        "seq": sent["seq"],
        "count": 1,
        "title": ann.display_name,
        "body": "see you at noon",
        "url": f"/c/{dm['id']}/m/{sent['id']}",
        "tag": f"conversation:{dm['id']}",
        "sent_at": sent["created_at"],
    }
    cdp = page.context.new_cdp_session(page)
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    for registration_id in _registration_ids(page, cdp, scope):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": shots.base_url, "registrationId": registration_id, "data": json.dumps(payload)},
        )
    # Read back by polling (wait_for_function would take the async predicate's promise
    # itself as a truthy answer).
    shown = None
    for _ in range(300):
        shown = page.evaluate(
            """async (tag) => {
              const registration = await navigator.serviceWorker.ready;
              const found = await registration.getNotifications({ tag });
              return found.length ? { title: found[0].title, body: found[0].body, url: found[0].data.url } : null;
            }""",
            payload["tag"],
        )
        if shown:
            break
        page.wait_for_timeout(100)
    assert shown == {"title": ann.display_name, "body": "see you at noon", "url": payload["url"]}
    assert shots.errors == []


def _registration_ids(page: Any, cdp: Any, scope: str) -> list[str]:
    """The DevTools ids of the live worker registrations with ``scope``
    (``ServiceWorker.enable`` reports every registration as an update event)."""
    found: list[str] = []

    def on_update(event: dict[str, list[dict[str, Any]]]) -> None:
        found.extend(
            r["registrationId"]
            for r in event["registrations"]
            if r["scopeURL"] == scope and not r.get("isDeleted")
        )

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_update)
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        if found:
            page.wait_for_timeout(200)  # the rest of the burst of updates
            return sorted(set(found))
        page.wait_for_timeout(100)
    raise AssertionError("DevTools reported no service worker registration")
