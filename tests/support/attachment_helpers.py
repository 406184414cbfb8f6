"""Attachments in tests: files made on the spot (Pillow images, minimal media containers,
office ZIPs), the upload helper, and the blobs an attachment left in the store.
(S3 for the tests: ``tests/support/s3_stand_in.py``.)"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import select

from parley.container import Container
from parley.services.attachment_records import record_from_row
from parley.store.tables.media import attachments
from tests.conftest import UserHandle

# --- images


def png_bytes(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg_with_exif(width: int = 400, height: int = 200, orientation: int = 6) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90° clockwise", with GPS and a comment.
    The top-left quarter is blue so the rotation can be seen in the pixels."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, width // 4, height // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "TestCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), comment=b"taken at home")
    return out.getvalue()


def animated_gif(frames: int = 4, size: tuple[int, int] = (120, 80)) -> bytes:
    images = [Image.new("RGB", size, (60 * i % 256, 255 - 60 * i % 256, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return out.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header (with a correct CRC) claims ``width`` x ``height``:
    the classic decompression bomb shape, rejected before any pixel is decoded."""
    raw = bytearray(png_bytes(1, 1))
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])) & 0xFFFFFFFF)
    return bytes(raw)


# --- documents and media (just enough structure for the sniffer)


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def office_zip(kind: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        if kind in {"odt", "ods", "odp"}:
            full = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[kind]
            archive.writestr(
                zipfile.ZipInfo("mimetype"), f"application/vnd.oasis.opendocument.{full}"
            )
            archive.writestr("content.xml", "<office:document-content/>")
        elif kind == "zip":
            archive.writestr("notes/readme.txt", "hello")
        else:
            folder = {"docx": "word", "xlsx": "xl", "pptx": "ppt"}[kind]
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr(f"{folder}/document.xml", "<document/>")
    return out.getvalue()


def mp4_bytes(payload: int = 200_000, brand: bytes = b"isom") -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"mp41"
    body = os.urandom(payload)
    mdat = struct.pack(">I", 8 + len(body)) + b"mdat" + body
    return ftyp + mdat


def webm_bytes(track_type: int = 1, payload: int = 50_000) -> bytes:
    doc_type = b"\x42\x82\x84webm"
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(doc_type)]) + doc_type
    track_entry = b"\xae\x83" + b"\x83\x81" + bytes([track_type])
    tracks = b"\x16\x54\xae\x6b" + bytes([0x80 | len(track_entry)]) + track_entry
    cluster = b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff" + os.urandom(payload)
    return header + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + tracks + cluster


def mp3_bytes(frames: int = 50) -> bytes:
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
    return frame * frames


def ogg_bytes() -> bytes:
    return b"OggS\x00\x02" + b"\x00" * 20 + os.urandom(4000)


# --- HTTP


async def upload(
    client: httpx.AsyncClient,
    user: UserHandle,
    data: bytes,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        "/api/v1/uploads", files={"file": (name, data, content_type)}, headers=user.headers
    )


async def upload_ok(
    client: httpx.AsyncClient, user: UserHandle, data: bytes, name: str, content_type: str = ""
) -> dict[str, Any]:
    response = await upload(client, user, data, name, content_type or "application/octet-stream")
    assert response.status_code == 201, response.text
    attachment: dict[str, Any] = response.json()["attachment"]
    return attachment


# --- the blob store


async def blob_keys(container: Container, attachment: dict[str, Any]) -> list[str]:
    """The store keys of the attachment's original and every variant made of it."""
    async with container.db.read() as conn:
        row = (
            await conn.execute(select(attachments).where(attachments.c.id == attachment["id"]))
        ).first()
    assert row is not None
    return record_from_row(row).blob_keys()


async def stored(container: Container, keys: Sequence[str]) -> list[bool]:
    """For each key, whether the container's blob store holds it."""
    return [await container.blobs.exists(key) for key in keys]
