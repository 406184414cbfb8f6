"""Profile pictures on SQLite and PostgreSQL (DESIGN §6.3): a landscape photo with EXIF
becomes a centred square at 64 and 256 pixels (WebP, no metadata), served publicly and
immutably, announced as ``user.updated``; replaced and removed pictures are gone (404, no
blobs left); refusals for non-images, bombs, corrupt files, empty and oversized uploads; a
burst of uploads leaves one picture and no orphaned blobs."""

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
from tests.support.attachment_helpers import (
    animated_gif,
    jpeg_with_exif,
    pdf_bytes,
    png_bytes,
    png_claiming_size,
)

pytestmark = pytest.mark.usefixtures("backend")
URL = "/api/v1/users/me/avatar"


async def put(client: httpx.AsyncClient, headers: dict[str, str], data: bytes, name: str = "me.jpg", kind: str = "image/jpeg") -> httpx.Response:
    return await client.put(URL, files={"file": (name, data, kind)}, headers=headers)


def stored(container: Container) -> list[str]:
    root = Path(container.settings.data_dir) / "media" / "avatars"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.webp")) if root.exists() else []


async def test_a_photo_becomes_a_square_picture(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    bob = await make_user(client, "bob")
    await client.post("/api/v1/conversations", json={"type": "direct", "user_id": bob.id}, headers=alice.headers)
    heard: list[Event] = []

    async def listen(events: Sequence[Event]) -> None:
        heard.extend(e for e in events if e.type == "user.updated")

    container.events.add_listener(listen)
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["user"]["avatar"] is None

    answer = await put(client, alice.headers, jpeg_with_exif(400, 200))
    assert answer.status_code == 200, answer.text
    avatar = answer.json()["user"]["avatar"]
    assert set(avatar) == {"small", "large"} and avatar["small"].startswith(f"/api/v1/avatars/{alice.id}/")
    # Everyone sees it: bob's view of alice, and the event to both.
    seen = await client.get(f"/api/v1/users/{alice.id}", headers=bob.headers)
    assert seen.json()["user"]["avatar"] == avatar
    assert heard and {bob.id, alice.id} <= set(heard[-1].user_ids) and heard[-1].data["user"]["avatar"] == avatar

    for name, side in (("small", 64), ("large", 256)):
        picture = await client.get(avatar[name])  # no token: an <img> sends none
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/webp"
        assert "immutable" in picture.headers["cache-control"]
        assert picture.headers["x-content-type-options"] == "nosniff"
        with Image.open(io.BytesIO(picture.content)) as image:
            assert image.format == "WEBP" and image.size == (side, side)
            assert not image.info.get("exif")
    assert len(stored(container)) == 2

    replaced = await put(client, alice.headers, png_bytes(300, 500), "me.png", "image/png")
    new_avatar = replaced.json()["user"]["avatar"]
    assert new_avatar != avatar
    assert (await client.get(avatar["large"])).status_code == 404
    assert (await client.get(new_avatar["large"])).status_code == 200
    assert len(stored(container)) == 2

    removed = await client.delete(URL, headers=alice.headers)
    assert removed.status_code == 200 and removed.json()["user"]["avatar"] is None
    assert (await client.get(new_avatar["small"])).status_code == 404
    assert stored(container) == []
    again = await client.delete(URL, headers=alice.headers)
    assert again.status_code == 404


async def test_animated_pictures_keep_their_first_frame(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    answer = await put(client, alice.headers, animated_gif(frames=3, size=(90, 60)), "a.gif", "image/gif")
    assert answer.status_code == 200, answer.text
    picture = await client.get(answer.json()["user"]["avatar"]["large"])
    with Image.open(io.BytesIO(picture.content)) as image:
        assert image.size == (256, 256) and getattr(image, "n_frames", 1) == 1


async def test_bad_pictures_are_refused(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    cases = [
        (pdf_bytes(), "doc.pdf", "application/pdf", 400, "IMAGE_UNREADABLE"),
        (b"not an image at all\n", "me.png", "image/png", 400, None),
        (png_claiming_size(50_000, 50_000), "bomb.png", "image/png", 413, "IMAGE_TOO_LARGE"),
        (png_bytes()[:60], "cut.png", "image/png", 400, "IMAGE_UNREADABLE"),
        (b"", "empty.png", "image/png", 400, "EMPTY_FILE"),
    ]
    for data, name, kind, status, code in cases:
        answer = await put(client, alice.headers, data, name, kind)
        assert answer.status_code in (status, 415), (name, answer.status_code, answer.text)
        if code is not None and answer.status_code == status:
            assert answer.json()["error"]["code"] == code, (name, answer.text)
    no_file = await client.put(URL, files={"other": ("x.png", png_bytes(), "image/png")}, headers=alice.headers)
    assert no_file.status_code == 400
    too_big = await client.put(
        URL, content=b"x" * (container.settings.max_image_bytes + 200 * 1024),
        headers={**alice.headers, "content-type": "multipart/form-data; boundary=x"},
    )
    assert too_big.status_code == 413
    assert (await client.put(URL, files={"file": ("a.png", png_bytes(), "image/png")})).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).json()["user"]["avatar"] is None
    assert stored(container) == []
    for path in (
        f"/api/v1/avatars/{alice.id}/nokey/256",
        f"/api/v1/avatars/{alice.id}/nokey/99999",
        "/api/v1/avatars/not-an-id/nokey/256",
        f"/api/v1/avatars/{alice.id}/{'k' * 33}/256",
        f"/api/v1/avatars/{alice.id}/nokey/{10**30}",
    ):
        assert (await client.get(path)).status_code in (400, 404), path


async def test_a_burst_of_uploads_leaves_one_picture(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    answers = await asyncio.gather(
        *(put(client, alice.headers, png_bytes(80 + i, 60, (i * 40, 0, 0)), "p.png", "image/png") for i in range(4))
    )
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = (await client.get("/api/v1/users/me", headers=alice.headers)).json()["user"]["avatar"]
    assert (await client.get(final["large"])).status_code == 200
    assert len(stored(container)) == 2  # the losers' pictures were deleted, not orphaned
