"""Attachments in messages, on both databases: claiming uploads, payloads and events,
download access (members, signed URLs), HTTP caching and ranges, and removal of files."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from parley.clock import utcnow
from parley.container import Container
from parley.services.events import Event
from tests.conftest import make_user
from tests.support.attachment_helpers import (
    blob_keys,
    jpeg_with_exif,
    mp4_bytes,
    pdf_bytes,
    png_bytes,
    stored,
    upload_ok,
)
from tests.support.chat_helpers import code, open_direct, open_group, post_message, send

pytestmark = pytest.mark.usefixtures("backend")


def unsigned(url: str) -> str:
    return url.split("?", 1)[0]


def signed_parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["exp"][0], query["sig"][0]


async def test_message_with_attachments_payload_history_and_event(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    events: list[Event] = []

    async def listen(batch: Sequence[Event]) -> None:
        events.extend(batch)

    container.events.add_listener(listen)
    photo = await upload_ok(client, alice, jpeg_with_exif(), "photo.jpg")
    report = await upload_ok(client, alice, pdf_bytes(), "report.pdf")
    response = await post_message(
        client, alice, dm["id"], content="", attachment_ids=[report["id"], photo["id"]]
    )
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    assert message["content"] == ""
    files = message["attachments"]
    assert [f["id"] for f in files] == [report["id"], photo["id"]]  # the sender's order
    assert files[1]["name"] == "photo.jpg" and (files[1]["width"], files[1]["height"]) == (200, 400)
    assert files[0]["kind"] == "document" and files[0]["size"] == len(pdf_bytes())
    assert set(files[1]["variants"]) == {"original", "thumb320", "thumb1280"}
    assert files[1]["variants"]["thumb320"]["url"].startswith(f"/api/v1/attachments/{photo['id']}/thumb320?exp=")

    [created] = [e for e in events if e.type == "message.created"]
    assert [f["id"] for f in created.data["message"]["attachments"]] == [report["id"], photo["id"]]

    history = await client.get(f"/api/v1/conversations/{dm['id']}/messages", headers=bob.headers)
    [seen] = history.json()["messages"]
    assert [f["name"] for f in seen["attachments"]] == ["report.pdf", "photo.jpg"]
    # Bob opens both with the URLs from the payload, no Authorization header.
    picture = await client.get(seen["attachments"][1]["url"])
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size == (200, 400)
    document = await client.get(seen["attachments"][0]["url"])
    assert document.content == pdf_bytes()
    assert document.headers["content-type"] == "application/pdf"
    assert document.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    assert document.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in document.headers["content-security-policy"]
    assert document.headers["cache-control"].startswith("private")


async def test_search_has_attachment(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    upload = await upload_ok(client, alice, pdf_bytes(), "q3.pdf")
    with_file = await post_message(
        client, alice, dm["id"], content="quarterly report", attachment_ids=[upload["id"]]
    )
    await send(client, alice, dm["id"], "quarterly notes, no file")
    found = await client.get("/api/v1/search?q=quarterly&has=attachment", headers=bob.headers)
    assert found.status_code == 200, found.text
    assert [h["message_id"] for h in found.json()["results"]] == [with_file.json()["message"]["id"]]
    everything = await client.get("/api/v1/search?q=quarterly", headers=bob.headers)
    assert len(everything.json()["results"]) == 2


async def test_claiming_rules(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    mine = await upload_ok(client, alice, png_bytes(), "a.png")
    bobs = await upload_ok(client, bob, png_bytes(), "b.png")

    response = await post_message(client, alice, dm["id"], content="hi", attachment_ids=[bobs["id"]])
    assert response.status_code == 400 and code(response) == "INVALID_ATTACHMENT"
    response = await post_message(client, alice, dm["id"], content="hi", attachment_ids=["0" * 26])
    assert response.status_code == 400 and code(response) == "INVALID_ATTACHMENT"
    response = await post_message(client, alice, dm["id"], content="hi", attachment_ids=["01NOSUCHUPLOAD0000000000000"])
    assert response.status_code == 400 and code(response) == "VALIDATION_ERROR"  # not an id at all

    first = await post_message(client, alice, dm["id"], content="", attachment_ids=[mine["id"]], client_msg_id="c-1")
    assert first.status_code == 201
    # The same send again (a retry): the same message, not a conflict on the claimed upload.
    again = await post_message(client, alice, dm["id"], content="", attachment_ids=[mine["id"]], client_msg_id="c-1")
    assert again.status_code == 200 and again.json()["message"]["id"] == first.json()["message"]["id"]
    # The same client id with other attachments is a different message.
    other = await upload_ok(client, alice, png_bytes(), "c.png")
    clash = await post_message(client, alice, dm["id"], content="", attachment_ids=[other["id"]], client_msg_id="c-1")
    assert clash.status_code == 409 and code(clash) == "IDEMPOTENCY_CONFLICT"

    used = await post_message(client, alice, dm["id"], content="again", attachment_ids=[mine["id"]])
    assert used.status_code == 409 and code(used) == "ATTACHMENT_ALREADY_USED"

    many = [(await upload_ok(client, alice, png_bytes(), f"{i}.png"))["id"] for i in range(11)]
    response = await post_message(client, alice, dm["id"], content="", attachment_ids=many)
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "attachment_ids"
    response = await post_message(client, alice, dm["id"], content="", attachment_ids=[many[0], many[0]])
    assert response.status_code == 400
    response = await post_message(client, alice, dm["id"], content="", attachment_ids=[])
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "content"
    ten = await post_message(client, alice, dm["id"], content="ten", attachment_ids=many[:10])
    assert ten.status_code == 201 and len(ten.json()["message"]["attachments"]) == 10


async def test_concurrent_sends_cannot_share_an_upload(client: httpx.AsyncClient) -> None:
    """Many sends racing for one upload (one group-commit batch): exactly one wins."""
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    upload = await upload_ok(client, alice, png_bytes(), "one.png")
    responses = await asyncio.gather(
        *(
            post_message(client, alice, dm["id"], content=f"try {i}", attachment_ids=[upload["id"]])
            for i in range(8)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.text for r in responses]
    assert {code(r) for r in responses if r.status_code == 409} == {"ATTACHMENT_ALREADY_USED"}


async def test_download_access(client: httpx.AsyncClient) -> None:
    alice, bob, carol = [await make_user(client, n) for n in ("alice", "bob", "carol")]
    group = await open_group(client, alice, [bob], name="team")
    upload = await upload_ok(client, alice, pdf_bytes(), "plan.pdf")
    path = unsigned(upload["url"])

    # Unclaimed: only the uploader, not even future conversation members.
    assert (await client.get(path, headers=alice.headers)).status_code == 200
    for user in (bob, carol):
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 404 and code(response) == "NOT_FOUND"
    assert (await client.get(path)).status_code == 401

    message = (await post_message(client, alice, group["id"], content="plan", attachment_ids=[upload["id"]])).json()["message"]
    assert (await client.get(path, headers=bob.headers)).status_code == 200
    response = await client.get(path, headers=carol.headers)  # not a member
    assert response.status_code == 404 and code(response) == "NOT_FOUND"
    assert (await client.get(f"/api/v1/attachments/{upload['id']}", headers=carol.headers)).status_code == 404
    fresh = await client.get(f"/api/v1/attachments/{upload['id']}", headers=bob.headers)
    assert fresh.status_code == 200 and fresh.json()["attachment"]["name"] == "plan.pdf"
    assert (await client.get(path.replace("original", "thumb320"), headers=bob.headers)).status_code == 404

    # A former member loses bearer access at once.
    left = await client.delete(f"/api/v1/conversations/{group['id']}/members/{bob.id}", headers=bob.headers)
    assert left.status_code == 204
    response = await client.get(path, headers=bob.headers)
    assert response.status_code == 404 and code(response) == "NOT_FOUND"
    assert message["attachments"][0]["id"] == upload["id"]


async def test_signed_urls(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    upload = await upload_ok(client, alice, png_bytes(), "a.png")
    path, exp, sig = signed_parts(upload["url"])
    assert int(exp) - time.time() >= container.settings.attachment_url_ttl_seconds - 5
    assert (await client.get(f"{path}?exp={exp}&sig={sig}")).status_code == 200

    forged = [
        # Tampered (a signature that happens to end in "AA" gets "BB": it must differ).
        f"{path}?exp={exp}&sig={sig[:-2]}{'BB' if sig.endswith('AA') else 'AA'}",
        f"{path}?exp={int(exp) + 3600}&sig={sig}",  # extended expiry
        f"{path.replace('original', 'thumb320')}?exp={exp}&sig={sig}",  # another variant
        f"{path}?exp={exp}",
        f"{path}?sig={sig}",
        f"{path}?exp=soon&sig={sig}",
    ]
    for url in forged:
        response = await client.get(url, headers=alice.headers)  # a bearer does not rescue it
        assert response.status_code == 403 and code(response) == "URL_SIGNATURE_INVALID", url

    urls = container.attachments.urls
    past = int(time.time()) - 10
    expired = f"{path}?exp={past}&sig={urls.signature(upload['id'], 'original', past)}"
    response = await client.get(expired)
    assert response.status_code == 403 and code(response) == "URL_EXPIRED"
    # Another server's secret signs nothing here.
    from parley.services.attachment_urls import AttachmentUrls

    foreign = AttachmentUrls("another-secret-" + "y" * 40, ttl_seconds=3600).url(upload["id"], "original")
    response = await client.get(foreign)
    assert response.status_code == 403 and code(response) == "URL_SIGNATURE_INVALID"


async def test_caching_and_ranges(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    video = mp4_bytes(300_000)
    attachment = await upload_ok(client, alice, video, "clip.mp4")
    url = attachment["url"]

    full = await client.get(url)
    assert full.status_code == 200 and full.content == video
    assert full.headers["content-type"] == "video/mp4" and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-disposition"].startswith("inline")
    etag = full.headers["etag"]
    not_modified = await client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert (await client.get(url, headers={"If-None-Match": '"other"'})).status_code == 200

    cases = [
        ("bytes=0-99", 0, 100),
        ("bytes=1000-", 1000, len(video)),
        ("bytes=-500", len(video) - 500, len(video)),
        (f"bytes=100-{len(video) + 5000}", 100, len(video)),  # end clamped
    ]
    for header, start, end in cases:
        part = await client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == video[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{len(video)}"
        assert part.headers["content-length"] == str(end - start)

    for header in (f"bytes={len(video)}-", f"bytes={len(video) + 10}-{len(video) + 20}", "bytes=-0"):
        response = await client.get(url, headers={"Range": header})
        assert response.status_code == 416, header
        assert code(response) == "RANGE_NOT_SATISFIABLE"
        assert response.headers["content-range"] == f"bytes */{len(video)}"
    for header in ("bytes=5-1", "pages=1-2", "bytes=0-1,5-9", "bytes=abc"):
        response = await client.get(url, headers={"Range": header})
        assert response.status_code == 200 and len(response.content) == len(video), header
    stale = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"older"'})
    assert stale.status_code == 200
    fresh = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206

    # Documents are downloaded whole: no ranges.
    pdf = await upload_ok(client, alice, pdf_bytes(), "doc.pdf")
    response = await client.get(pdf["url"], headers={"Range": "bytes=0-3"})
    assert response.status_code == 200 and response.headers["accept-ranges"] == "none"


async def test_deleting_a_message_removes_its_files(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    upload = await upload_ok(client, alice, jpeg_with_exif(), "p.jpg")
    keys = await blob_keys(container, upload)
    assert await stored(container, keys) == [True, True, True]
    message = (await post_message(client, alice, dm["id"], content="look", attachment_ids=[upload["id"]])).json()["message"]
    url = message["attachments"][0]["url"]

    deleted = await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json()["message"]["attachments"] == []
    assert (await client.get(url)).status_code == 404  # at once, before the files go
    await drain(container)
    assert await stored(container, keys) == [False, False, False]
    changes = await client.get(f"/api/v1/conversations/{dm['id']}/changes?after_seq=0", headers=bob.headers)
    assert changes.json()["messages"][0]["attachments"] == []


async def drain(container: Container) -> None:
    drain_jobs = getattr(container.jobs, "drain", None)
    assert drain_jobs is not None, "the in-process job queue is expected in tests"
    await drain_jobs()


async def test_unclaimed_uploads_are_swept_after_a_day(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    unused = await upload_ok(client, alice, png_bytes(), "unused.png")
    used = await upload_ok(client, alice, png_bytes(), "used.png")
    await post_message(client, alice, dm["id"], content="x", attachment_ids=[used["id"]])
    unused_keys, used_keys = await blob_keys(container, unused), await blob_keys(container, used)

    soon = await container.attachments.sweep(now=utcnow() + timedelta(hours=23))
    assert (soon.marked, soon.removed) == (0, 0)
    later = await container.attachments.sweep(now=utcnow() + timedelta(hours=25))
    assert (later.marked, later.removed) == (1, 1)
    assert await stored(container, unused_keys) == [False] * 3
    assert await stored(container, used_keys) == [True] * 3
    assert (await client.get(unused["url"])).status_code == 404
    # A removed upload cannot be attached any more.
    response = await post_message(client, alice, dm["id"], content="late", attachment_ids=[unused["id"]])
    assert response.status_code == 400 and code(response) == "INVALID_ATTACHMENT"
    again = await container.attachments.sweep(now=utcnow() + timedelta(days=30))
    assert (again.marked, again.removed) == (0, 0)  # idempotent; claimed files stay


async def test_deleting_a_conversation_orphans_are_swept(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="temp")
    upload = await upload_ok(client, alice, pdf_bytes(), "x.pdf")
    await post_message(client, alice, group["id"], content="f", attachment_ids=[upload["id"]])
    keys = await blob_keys(container, upload)
    response = await client.delete(f"/api/v1/conversations/{group['id']}", headers=alice.headers)
    assert response.status_code == 204
    result = await container.attachments.sweep()
    assert result.removed == 1 and await stored(container, keys) == [False]


async def test_attachment_payloads_everywhere(client: httpx.AsyncClient) -> None:
    """Edits and reactions keep the attachments in the payload."""
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    upload = await upload_ok(client, alice, png_bytes(), "a.png")
    message = (await post_message(client, alice, dm["id"], content="x", attachment_ids=[upload["id"]])).json()["message"]
    edited = await client.patch(f"/api/v1/messages/{message['id']}", json={"content": "y"}, headers=alice.headers)
    assert [a["id"] for a in edited.json()["message"]["attachments"]] == [upload["id"]]
    reacted = await client.put(f"/api/v1/messages/{message['id']}/reactions/👍", headers=bob.headers)
    assert [a["id"] for a in reacted.json()["message"]["attachments"]] == [upload["id"]]
    plain = await send(client, alice, dm["id"], "no files")
    assert plain["attachments"] == []
