"""``POST /api/v1/uploads`` on both databases: what is accepted, how it is stored, and
every way an upload is refused."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from parley.container import Container
from tests.conftest import make_user
from tests.support.attachment_helpers import (
    animated_gif,
    jpeg_with_exif,
    mp4_bytes,
    office_zip,
    pdf_bytes,
    png_bytes,
    png_claiming_size,
    upload,
    upload_ok,
    webm_bytes,
)
from tests.support.chat_helpers import code

pytestmark = pytest.mark.usefixtures("backend")


async def fetch(client: httpx.AsyncClient, url: str, **headers: str) -> httpx.Response:
    return await client.get(url, headers=headers)


async def test_image_upload_is_cleaned_rotated_and_thumbnailed(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    attachment = await upload_ok(client, alice, jpeg_with_exif(), "holiday.jpg", "image/jpeg")
    assert attachment["kind"] == "image" and attachment["content_type"] == "image/jpeg"
    assert attachment["name"] == "holiday.jpg"
    # EXIF orientation 6 (rotate 90° clockwise) applied: 400x200 becomes 200x400.
    assert (attachment["width"], attachment["height"]) == (200, 400)
    assert set(attachment["variants"]) == {"original", "thumb320", "thumb1280"}

    served = await fetch(client, attachment["variants"]["original"]["url"])
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"].startswith("inline")
    image = Image.open(io.BytesIO(served.content))
    assert image.size == (200, 400)
    assert not image.getexif()  # no orientation, camera, GPS ...
    assert image.getexif().get_ifd(0x8825) == {}
    assert "comment" not in image.info and b"TestCam" not in served.content
    # The blue corner (top-left before rotating) is now top-right.
    assert image.getpixel((190, 10))[2] > 200 and image.getpixel((10, 10))[0] > 200
    assert attachment["size"] == len(served.content)

    for name, box in (("thumb320", 320), ("thumb1280", 1280)):
        variant = attachment["variants"][name]
        thumb = await fetch(client, variant["url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        picture = Image.open(io.BytesIO(thumb.content))
        assert picture.format == "WEBP" and max(picture.size) <= box
        assert picture.size == (variant["width"], variant["height"])
    small = Image.open(io.BytesIO((await fetch(client, attachment["variants"]["thumb320"]["url"])).content))
    assert small.size == (160, 320)


async def test_animated_gif_keeps_animation_and_gets_a_static_thumbnail(
    client: httpx.AsyncClient,
) -> None:
    alice = await make_user(client, "alice")
    attachment = await upload_ok(client, alice, animated_gif(frames=5), "dance.gif", "image/gif")
    original = Image.open(io.BytesIO((await fetch(client, attachment["url"])).content))
    assert original.format == "GIF" and original.n_frames == 5
    thumb = Image.open(io.BytesIO((await fetch(client, attachment["variants"]["thumb320"]["url"])).content))
    assert thumb.format == "WEBP" and getattr(thumb, "n_frames", 1) == 1


async def test_documents_and_media_are_stored_as_sent(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    cases = [
        (pdf_bytes(), "report.pdf", "application/pdf", "document"),
        (office_zip("docx"), "letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document"),
        (office_zip("ods"), "sheet.ods", "application/vnd.oasis.opendocument.spreadsheet", "document"),
        (b"a,b\n1,2\n", "t.csv", "text/csv", "document"),
        (mp4_bytes(5000), "clip.mp4", "video/mp4", "video"),
        (webm_bytes(2, 500), "voice.webm", "audio/webm", "audio"),
    ]  # fmt: skip
    for data, name, content_type, kind in cases:
        attachment = await upload_ok(client, alice, data, name)
        assert (attachment["content_type"], attachment["kind"]) == (content_type, kind), name
        assert set(attachment["variants"]) == {"original"}
        served = await fetch(client, attachment["url"])
        assert served.content == data
        disposition = served.headers["content-disposition"]
        assert disposition.startswith("attachment" if kind == "document" else "inline"), name


async def test_bigger_than_the_json_body_limit_is_fine(client: httpx.AsyncClient) -> None:
    """The upload route has its own limit; the 1 MB JSON body limit does not apply."""
    alice = await make_user(client, "alice")
    data = mp4_bytes(3 * 1024 * 1024)
    attachment = await upload_ok(client, alice, data, "long.mp4")
    assert attachment["size"] == len(data)


@pytest.mark.parametrize(
    ("data", "name", "declared", "status", "error"),
    [
        (b"", "empty.txt", "text/plain", 400, "EMPTY_FILE"),
        (b"MZ\x90\x00" + b"\x00" * 200, "setup.exe", "application/x-msdownload", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "a.out", "", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"<html><script>alert(document.cookie)</script></html>", "cat.png", "image/png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "logo.svg", "image/svg+xml", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"#!/bin/sh\necho hi\n", "run.png", "image/png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (pdf_bytes(), "photo.png", "image/png", 415, "MEDIA_TYPE_MISMATCH"),
        (png_bytes(), "song.mp3", "audio/mpeg", 415, "MEDIA_TYPE_MISMATCH"),
        (png_claiming_size(100_000, 100_000), "bomb.png", "image/png", 413, "IMAGE_TOO_LARGE"),
        (png_claiming_size(8_000, 8_000), "big.png", "image/png", 413, "IMAGE_TOO_LARGE"),
        (jpeg_with_exif()[:700], "cut.jpg", "image/jpeg", 400, "IMAGE_UNREADABLE"),
        (b"GIF89a<script>alert(1)</script>", "poly.gif", "image/gif", 400, "IMAGE_UNREADABLE"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "bad.png", "image/png", 400, "IMAGE_UNREADABLE"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isupper() else "",
)
async def test_refused_uploads(
    client: httpx.AsyncClient,
    container: Container,
    data: bytes,
    name: str,
    declared: str,
    status: int,
    error: str,
) -> None:
    alice = await make_user(client, "alice")
    response = await upload(client, alice, data, name, declared or "application/octet-stream")
    assert response.status_code == status, response.text
    assert code(response) == error
    assert response.json()["error"]["message"]
    await assert_nothing_stored(container)


async def assert_nothing_stored(container: Container) -> None:
    from sqlalchemy import func, select

    from parley.store.tables.media import attachments

    async with container.db.read() as conn:
        count = (await conn.execute(select(func.count()).select_from(attachments))).scalar_one()
    assert count == 0
    media = container.settings.media_dir
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
    temp = container.settings.data_dir / "tmp" / "uploads"
    assert not temp.exists() or list(temp.iterdir()) == []


async def test_polyglot_png_with_html_appended_is_served_clean(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    payload = png_bytes() + b"<html><script>alert(1)</script></html>"
    attachment = await upload_ok(client, alice, payload, "poly.png", "image/png")
    served = await fetch(client, attachment["url"])
    assert b"<script>" not in served.content
    assert Image.open(io.BytesIO(served.content)).format == "PNG"


async def test_file_names_are_sanitised(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    for raw, expected in [
        ("../../../etc/passwd", "passwd.txt"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("evil\u202egnp.html", "evilgnp.html.txt"),
        # httpx, like browsers, sends CR LF as %0D%0A (decoded, then removed); it also
        # escapes NUL as %00, which then is just three harmless characters.
        ("line\r\nbreak\x00.txt", "linebreak%00.txt"),
        ("", "file.txt"),
    ]:
        attachment = await upload_ok(client, alice, b"plain words\n", raw, "text/plain")
        assert attachment["name"] == expected, raw
        served = await fetch(client, attachment["url"])
        assert served.headers["content-type"] == "text/plain; charset=utf-8"
        assert "\r" not in served.headers["content-disposition"]
    # Raw control characters in the part header itself (a hand-made client).
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="bell\x07\x1b[31mred\t.txt"'
        b"\r\nContent-Type: text/plain\r\n\r\nwords\r\n--b--\r\n"
    )
    response = await client.post(
        "/api/v1/uploads",
        content=body,
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["attachment"]["name"] == "bell[31mred.txt"


@pytest.mark.settings(max_attachment_bytes=1_000_000, max_image_bytes=200_000)
async def test_oversized_upload_is_stopped_while_streaming(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A chunked body (no Content-Length) of 50 MB: refused with 413 after about the limit,
    the rest never read from the client, nothing kept."""
    alice = await make_user(client, "alice")
    boundary = "parleyboundary"
    sent = 0
    chunk = b"\x00\x00\x00\x18ftypisom" + b"v" * (64 * 1024 - 12)

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"huge.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode()
        yield head
        for _ in range(800):  # 50 MB if it were all read
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        "/api/v1/uploads",
        content=body(),
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413 and code(response) == "PAYLOAD_TOO_LARGE"
    assert sent <= 1_000_000 + 2 * len(chunk), sent  # stopped right after the limit
    await assert_nothing_stored(container)

    # Images have the smaller limit, also enforced while streaming.
    big_png = png_bytes(1500, 1500) + b"\x00" * 300_000
    response = await upload(client, alice, big_png, "big.png", "image/png")
    assert response.status_code == 413 and "Images" in response.json()["error"]["message"]
    # A declared Content-Length over the route's cap is refused before reading anything.
    response = await client.post(
        "/api/v1/uploads",
        content=b"x",
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}",
                 "Content-Length": str(50 * 1024 * 1024)},
    )  # fmt: skip
    assert response.status_code == 413


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    response = await client.post("/api/v1/uploads", json={"file": "x"}, headers=alice.headers)
    assert response.status_code == 415 and code(response) == "UNSUPPORTED_MEDIA_TYPE"
    response = await client.post(
        "/api/v1/uploads", files={"other": ("a.txt", b"hi", "text/plain")}, headers=alice.headers
    )
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "file"
    response = await client.post(
        "/api/v1/uploads",
        files=[("file", ("a.txt", b"hi", "text/plain")), ("file", ("b.txt", b"yo", "text/plain"))],
        headers=alice.headers,
    )
    assert response.status_code == 400
    response = await client.post(
        "/api/v1/uploads",
        content=b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunfinished",
        headers={**alice.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400
    response = await client.post("/api/v1/uploads", files={"file": ("a.txt", b"hi")})
    assert response.status_code == 401


async def test_temp_files_are_removed(client: httpx.AsyncClient, container: Container) -> None:
    alice = await make_user(client, "alice")
    await upload_ok(client, alice, jpeg_with_exif(), "a.jpg")
    temp: Path = container.settings.data_dir / "tmp" / "uploads"
    assert list(temp.iterdir()) == []
