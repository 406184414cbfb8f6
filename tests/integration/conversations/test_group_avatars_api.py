"""Group pictures on SQLite and PostgreSQL (DESIGN §6.3): a group's owner and admins set
and remove its picture (a square at 64 and 256 pixels, served publicly and immutably,
announced as ``conversation.updated``, in every member's view); members, outsiders and
direct conversations are refused; bad files and ids get a 4xx; a burst of uploads leaves
one picture and no orphaned blobs."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from PIL import Image

from parley.container import Container
from parley.services.events import Event
from tests.conftest import make_user
from tests.support.attachment_helpers import jpeg_with_exif, pdf_bytes, png_bytes
from tests.support.chat_helpers import open_direct, open_group

pytestmark = pytest.mark.usefixtures("backend")


def url(conversation_id: str) -> str:
    return f"/api/v1/conversations/{conversation_id}/avatar"


async def put(client: httpx.AsyncClient, conversation_id: str, headers: dict[str, str], data: bytes) -> httpx.Response:
    return await client.put(url(conversation_id), files={"file": ("g.jpg", data, "image/jpeg")}, headers=headers)


def stored(container: Container) -> list[str]:
    root = Path(container.settings.data_dir) / "media" / "group-avatars"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.webp")) if root.exists() else []


async def test_a_groups_admins_set_and_remove_its_picture(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    carol = await make_user(client, "carol")
    group = await open_group(client, alice, [bob], name="Team")
    assert group["avatar"] is None
    heard: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        heard.extend(e for e in events if e.type == "conversation.updated")

    container.events.add_listener(listen)
    # A member who is not an admin, an outsider, anonymous: refused, nothing stored.
    assert (await put(client, group["id"], bob.headers, jpeg_with_exif(300, 200))).status_code == 403
    assert (await put(client, group["id"], carol.headers, jpeg_with_exif(300, 200))).status_code == 404
    assert (await put(client, group["id"], {}, jpeg_with_exif(300, 200))).status_code == 401
    assert stored(container) == []

    answer = await put(client, group["id"], alice.headers, jpeg_with_exif(400, 200))
    assert answer.status_code == 200, answer.text
    avatar = answer.json()["conversation"]["avatar"]
    assert set(avatar) == {"small", "large"} and avatar["small"].startswith(f"/api/v1/group-avatars/{group['id']}/")
    assert [e.data["changes"] for e in heard] == [{"avatar": avatar}]
    # Every member sees it, in the list and alone; served publicly as a square.
    listed = (await client.get("/api/v1/conversations", headers=bob.headers)).json()["conversations"]
    assert [c["avatar"] for c in listed if c["id"] == group["id"]] == [avatar]
    picture = await client.get(avatar["large"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/webp"
    assert "immutable" in picture.headers["cache-control"]
    assert Image.open(io.BytesIO(picture.content)).size == (256, 256)
    assert Image.open(io.BytesIO((await client.get(avatar["small"])).content)).size == (64, 64)
    assert len(stored(container)) == 2

    # Replaced: the old URL is gone; then removed: back to the initial, no blobs left.
    replaced = (await put(client, group["id"], alice.headers, png_bytes())).json()["conversation"]["avatar"]
    assert replaced != avatar and (await client.get(avatar["large"])).status_code == 404
    assert (await client.delete(url(group["id"]), headers=bob.headers)).status_code == 403
    removed = await client.delete(url(group["id"]), headers=alice.headers)
    assert removed.status_code == 200 and removed.json()["conversation"]["avatar"] is None
    assert (await client.get(replaced["large"])).status_code == 404
    assert stored(container) == []
    again = await client.delete(url(group["id"]), headers=alice.headers)
    assert again.status_code == 404


async def test_group_picture_bad_input(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    direct = await open_direct(client, alice, bob)
    assert (await put(client, direct["id"], alice.headers, jpeg_with_exif(50, 50))).status_code == 403
    not_image = await client.put(url(group["id"]), files={"file": ("a.pdf", pdf_bytes(), "application/pdf")}, headers=alice.headers)
    assert 400 <= not_image.status_code < 500, not_image.text
    empty = await client.put(url(group["id"]), files={"file": ("a.jpg", b"", "image/jpeg")}, headers=alice.headers)
    assert 400 <= empty.status_code < 500, empty.text
    assert (await client.put(url(group["id"]), content=b"\x00" * 10, headers=alice.headers)).status_code in (400, 415)
    for target in ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "9" * 400):
        assert (await put(client, target, alice.headers, png_bytes())).status_code in (400, 404)
    for path in (
        f"/api/v1/group-avatars/{group['id']}/nokey/256",
        f"/api/v1/group-avatars/{group['id']}/nokey/99999999999999999999",
        f"/api/v1/group-avatars/{group['id']}/{'k' * 40}/64",
        "/api/v1/group-avatars/nope/nokey/64",
    ):
        assert (await client.get(path)).status_code in (400, 404), path
    assert stored(container) == []


async def test_a_burst_of_uploads_leaves_one_picture(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    group = await open_group(client, alice, [], name="Solo")
    answers = await asyncio.gather(*(put(client, group["id"], alice.headers, png_bytes()) for _ in range(5)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = (await client.get(f"/api/v1/conversations/{group['id']}", headers=alice.headers)).json()
    avatar = final["conversation"]["avatar"]
    assert (await client.get(avatar["small"])).status_code == 200
    key = avatar["small"].split("/")[-2]
    assert stored(container) == sorted([f"{group['id']}/{key}/256.webp", f"{group['id']}/{key}/64.webp"])
    # Deleting the group deletes its picture too.
    assert (await client.delete(f"/api/v1/conversations/{group['id']}", headers=alice.headers)).status_code == 204
    assert stored(container) == []
    assert (await client.get(avatar["small"])).status_code == 404
