"""Link previews on both databases, against a real HTTP server on loopback (a stand-in for
the web: there is no internet here; the outbound client, sockets and HTTP are all real).

Fetched after the message commits and delivered as ``message.updated``; cached per URL;
the picture served by Parley (signed URL), never by the linked site; private and loopback
addresses refused unless ``PARLEY_OUTBOUND_ALLOW_PRIVATE``; size and time limits; off with
``PARLEY_LINK_PREVIEWS=false``; never for ciphertext.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from PIL import Image

from parley.container import Container
from parley.jobs.memory import MemoryJobQueue
from parley.services.events import Event
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import open_group, send
from tests.support.link_site import Site
from tests.support.link_site import site as site  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("backend")
ALLOW_PRIVATE = {**NO_SEND_LIMITS, "outbound_allow_private": True, "outbound_timeout_seconds": 2}


async def settle(container: Container) -> None:
    """Every queued preview job has run (the in-process queue of the test app)."""
    assert isinstance(container.jobs, MemoryJobQueue)
    await container.jobs.drain()


async def message(client: httpx.AsyncClient, user: UserHandle, message_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["message"]
    return found


def capture(container: Container) -> list[Event]:
    seen: list[Event] = []

    async def listener(events: Sequence[Event]) -> None:
        seen.extend(events)

    container.events.add_listener(listener)
    return seen


@pytest.mark.settings(**ALLOW_PRIVATE)
async def test_previews_are_fetched_after_commit_cached_and_delivered(
    client: httpx.AsyncClient, container: Container, site: Site
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    cid = (await open_group(client, alice, [bob], name="Links"))["id"]
    events = capture(container)
    sent = await send(client, alice, cid, f"have a look: {site.url('/article')}.")
    assert sent["link_preview"] is None  # the acknowledgement never waits for the page
    await settle(container)

    shown = await message(client, bob, sent["id"])
    preview = shown["link_preview"]
    assert preview["url"] == site.url("/article")
    assert preview["title"] == "Parley & friends ship 2.0"
    assert preview["description"] == "Threads, pins and a faster gateway."
    assert preview["site_name"] == "The Parley Blog"
    assert shown["version_seq"] > sent["version_seq"]
    [update] = [e for e in events if e.type == "message.updated"]
    assert update.data["message"]["link_preview"] == preview
    assert update.data["seq"] == shown["version_seq"]
    # Resuming clients get it from the changes feed too.
    changes = await client.get(
        f"/api/v1/conversations/{cid}/changes", params={"after_seq": sent["seq"]}, headers=bob.headers
    )
    assert [m["link_preview"] for m in changes.json()["messages"]] == [preview]

    # The picture: re-encoded by Parley, served by Parley with a signed URL.
    image_url = preview["image"]["url"]
    assert image_url.startswith(f"/api/v1/link-previews/{preview['id']}/image?exp=")
    picture = await client.get(image_url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(picture.content)) as decoded:
        assert decoded.size == (preview["image"]["width"], preview["image"]["height"]) == (800, 420)
    forged = await client.get(image_url.replace("sig=", "sig=x"))
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "URL_SIGNATURE_INVALID"
    # Without a signature: members with their token; anyone else 404, anonymous 401.
    path = f"/api/v1/link-previews/{preview['id']}/image"
    assert (await client.get(path, headers=bob.headers)).content == picture.content
    stranger = await make_user(client, "stranger")
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    assert (await client.get(path)).status_code == 401

    # Cached per URL: another message linking there fetches nothing more.
    other = await send(client, bob, cid, f"again {site.url('/article')}")
    await settle(container)
    assert (await message(client, alice, other["id"]))["link_preview"]["id"] == preview["id"]
    assert site.hits["/article"] == 1 and site.hits["/pic.png"] == 1

    # Links in code are not previewed; a page without a picture has a card without one.
    quoted = await send(client, alice, cid, f"`{site.url('/title-only')}`")
    titled = await send(client, alice, cid, f"{site.url('/title-only')}")
    await settle(container)
    assert (await message(client, alice, quoted["id"]))["link_preview"] is None
    only_title = (await message(client, alice, titled["id"]))["link_preview"]
    assert only_title["title"] == "Just a title" and only_title["image"] is None
    assert only_title["site_name"] == "127.0.0.1"

    # An edit that removes the link removes the preview, with a new version.
    edited = await client.patch(
        f"/api/v1/messages/{sent['id']}", json={"content": "never mind"}, headers=alice.headers
    )
    assert edited.status_code == 200
    await settle(container)
    after = await message(client, bob, sent["id"])
    assert after["link_preview"] is None and after["version_seq"] > edited.json()["message"]["version_seq"]
    # Deleted messages carry none.
    await client.delete(f"/api/v1/messages/{other['id']}", headers=bob.headers)
    assert (await message(client, bob, other["id"]))["link_preview"] is None


@pytest.mark.settings(**ALLOW_PRIVATE)
async def test_limits_redirects_and_what_is_not_a_page(
    client: httpx.AsyncClient, container: Container, site: Site
) -> None:
    alice = await make_user(client, "alice")
    cid = (await open_group(client, alice, [], name="Limits"))["id"]
    sent = {
        path: await send(client, alice, cid, f"link {site.url(path)}")
        for path in ("/moved", "/plain", "/missing", "/huge", "/slow", "/bomb-page")
    }
    await settle(container)
    previews = {path: (await message(client, alice, m["id"]))["link_preview"] for path, m in sent.items()}
    assert previews["/moved"]["title"] == "Parley & friends ship 2.0"  # the redirect's target
    assert previews["/moved"]["url"] == site.url("/moved")
    for path in ("/plain", "/missing", "/huge", "/slow"):
        assert previews[path] is None, path
    # A picture declaring 10 gigapixels is never decoded: the card has no picture.
    assert previews["/bomb-page"]["title"] == "Bomb" and previews["/bomb-page"]["image"] is None
    # Failures are cached too: a dead link is not fetched again for every message.
    await send(client, alice, cid, f"again {site.url('/missing')}")
    await settle(container)
    assert site.hits["/missing"] == 1


@pytest.mark.settings(**NO_SEND_LIMITS)
async def test_private_and_loopback_addresses_are_refused_by_default(
    client: httpx.AsyncClient, container: Container, site: Site
) -> None:
    alice = await make_user(client, "alice")
    cid = (await open_group(client, alice, [], name="SSRF"))["id"]
    links = [
        site.url("/article"),
        site.url("/article", host="localhost"),
        site.url("/article", host="[::1]"),
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
    ]
    sent = [await send(client, alice, cid, f"try {url}") for url in links]
    await settle(container)
    for m in sent:
        assert (await message(client, alice, m["id"]))["link_preview"] is None
    assert sum(site.hits.values()) == 0  # not one request reached the loopback site


@pytest.mark.settings(**ALLOW_PRIVATE, link_previews=False)
async def test_previews_can_be_switched_off(
    client: httpx.AsyncClient, container: Container, site: Site
) -> None:
    alice = await make_user(client, "alice")
    cid = (await open_group(client, alice, [], name="Off"))["id"]
    sent = await send(client, alice, cid, site.url("/article"))
    await settle(container)
    assert (await message(client, alice, sent["id"]))["link_preview"] is None
    assert sum(site.hits.values()) == 0


@pytest.mark.settings(**ALLOW_PRIVATE)
async def test_never_for_ciphertext(client: httpx.AsyncClient, container: Container, site: Site) -> None:
    encrypted = {
        "id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "kind": "text",
        "content": "",
        "ciphertext": f"opaque {site.url('/article')}",
        "e2ee": {"v": 1},
        "deleted": False,
    }
    await container.link_previews.on_events([Event("message.created", {"message": encrypted})])
    stats = await container.jobs.stats()
    assert stats.queued == 0 and stats.in_flight == 0
    # Even a payload that also has text: an encrypted conversation's messages are never read.
    await container.link_previews.on_events(
        [Event("message.created", {"message": {**encrypted, "content": site.url("/article")}})]
    )
    await settle(container)
    assert sum(site.hits.values()) == 0
