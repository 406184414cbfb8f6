"""``GET /api/v1/conversations/{id}/attachments`` on both databases: a conversation's files
and media, newest first, by kind, in pages without gaps or duplicates; never unsent uploads
or files of deleted messages; members only; every bad parameter a clear 400."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.attachment_helpers import ogg_bytes, pdf_bytes, png_bytes, upload_ok
from tests.support.chat_helpers import code, open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def gallery(
    client: httpx.AsyncClient, user: UserHandle, cid: str, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/v1/conversations/{cid}/attachments", params=params, headers=user.headers)


async def names(client: httpx.AsyncClient, user: UserHandle, cid: str, **params: Any) -> list[str]:
    response = await gallery(client, user, cid, **params)
    assert response.status_code == 200, response.text
    return [a["name"] for a in response.json()["attachments"]]


async def test_files_and_media_newest_first_by_kind_and_page(client: httpx.AsyncClient) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    outsider = await make_user(client, "eve")
    cid = (await open_group(client, alice, [bob], name="Media"))["id"]
    other = (await open_group(client, alice, [bob], name="Elsewhere"))["id"]
    sent: list[str] = []
    for i in range(5):
        photo = await upload_ok(client, alice, png_bytes(40 + i, 30), f"photo-{i}.png")
        doc = await upload_ok(client, bob, pdf_bytes(), f"doc-{i}.pdf")
        await send(client, alice, cid, f"photo {i}", attachment_ids=[photo["id"]])
        message = await send(client, bob, cid, "", attachment_ids=[doc["id"]])
        sent += [f"photo-{i}.png", f"doc-{i}.pdf"]
    voice = await upload_ok(client, bob, ogg_bytes(), "voice.ogg")
    await send(client, bob, cid, "", attachment_ids=[voice["id"]])
    await upload_ok(client, alice, png_bytes(), "never-sent.png")  # not in any gallery
    elsewhere = await upload_ok(client, alice, png_bytes(), "elsewhere.png")
    await send(client, alice, other, "", attachment_ids=[elsewhere["id"]])

    everything = await names(client, bob, cid, limit=100)
    assert everything == ["voice.ogg", *reversed(sent)]
    assert await names(client, bob, cid, kind="image") == [f"photo-{i}.png" for i in reversed(range(5))]
    assert await names(client, bob, cid, kind="file") == ["voice.ogg", *[f"doc-{i}.pdf" for i in reversed(range(5))]]

    first = (await gallery(client, alice, cid, limit=4)).json()
    item = first["attachments"][0]
    assert item["name"] == "voice.ogg" and item["kind"] == "audio"
    assert item["sender_id"] == bob.id and item["seq"] > 0 and item["message_id"]
    assert item["url"].startswith(f"/api/v1/attachments/{item['id']}/original?exp=")
    assert first["has_more"] is True and first["next_before"] == first["attachments"][-1]["id"]
    pages = [a["name"] for a in first["attachments"]]
    before = first["next_before"]
    while before:
        page = (await gallery(client, alice, cid, limit=4, before=before)).json()
        pages += [a["name"] for a in page["attachments"]]
        before = page["next_before"]
    assert pages == everything

    # A deleted message's file leaves the gallery at once.
    deleted = await client.delete(f"/api/v1/messages/{message['id']}", headers=bob.headers)
    assert deleted.status_code == 200
    assert "doc-4.pdf" not in await names(client, alice, cid, limit=100)

    # Not a member: the same 404 as a conversation that does not exist.
    assert code(await gallery(client, outsider, cid)) == "NOT_FOUND"
    assert (await gallery(client, outsider, cid)).status_code == 404
    missing = await gallery(client, alice, "0" * 26)
    assert missing.status_code == 404


async def test_bad_parameters(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    cid = (await open_group(client, alice, [], name="Solo"))["id"]
    for params, field in (
        ({"kind": "video"}, "kind"),
        ({"kind": "\x00"}, "kind"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": 2**63}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before": "not-an-id"}, "before"),
        ({"before": "x" * 65}, "before"),
    ):
        response = await gallery(client, alice, cid, **params)
        assert response.status_code == 400, (params, response.text)
        assert code(response) == "VALIDATION_ERROR"
        assert any(field in d["field"] for d in response.json()["error"]["details"]), response.text
    # A lone surrogate, as the UTF-8 bytes a client could send for it.
    raw = await client.get(
        f"/api/v1/conversations/{cid}/attachments?before=%ED%A0%80", headers=alice.headers
    )
    assert raw.status_code == 400 and code(raw) == "VALIDATION_ERROR", raw.text
    # Many at once: every one answered, none failing another.
    answers = await asyncio.gather(*(gallery(client, alice, cid, kind="image") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
