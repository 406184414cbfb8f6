"""The attachment flow end to end with S3 storage (moto's S3 server on loopback standing in
for AWS S3 / MinIO — see ``tests/support/s3_stand_in.py``), on both databases."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from parley.clock import utcnow
from parley.config import Settings
from parley.container import Container
from tests.conftest import make_user
from tests.support.attachment_helpers import jpeg_with_exif, mp4_bytes, pdf_bytes, png_bytes, upload, upload_ok
from tests.support.chat_helpers import code, open_direct
from tests.support.s3_stand_in import (
    REGION,
    bucket_keys,
    s3_endpoint,  # noqa: F401 (fixture)
    s3_settings,
)

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:  # noqa: F811
    return s3_settings(tmp_path, database_url, s3_endpoint)


async def test_attachments_on_s3(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    dm = await open_direct(client, alice, bob)
    photo = await upload_ok(client, alice, jpeg_with_exif(), "photo.jpg")
    video_bytes = mp4_bytes(250_000)
    video = await upload_ok(client, alice, video_bytes, "clip.mp4")
    assert len(bucket_keys(container)) == 4  # 3 image variants + 1 video
    assert all(key.startswith("parley/attachments/") for key in bucket_keys(container))

    response = await client.post(
        f"/api/v1/conversations/{dm['id']}/messages",
        json={"content": "", "attachment_ids": [photo["id"], video["id"]]},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    image_url, video_url = (a["url"] for a in message["attachments"])

    served = await client.get(image_url)
    picture = Image.open(io.BytesIO(served.content))
    assert picture.size == (200, 400) and not picture.getexif()
    thumb = await client.get(message["attachments"][0]["variants"]["thumb320"]["url"])
    assert Image.open(io.BytesIO(thumb.content)).size == (160, 320)

    part = await client.get(video_url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == video_bytes[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(video_bytes)}"
    assert (await client.get(video_url, headers={"Range": "bytes=99999999-"})).status_code == 416
    etag = part.headers["etag"]
    assert (await client.get(video_url, headers={"If-None-Match": etag})).status_code == 304

    pdf = await upload_ok(client, alice, pdf_bytes(), "doc.pdf")
    assert (await client.get(pdf["url"])).headers["content-disposition"].startswith("attachment")
    refused = await upload(client, alice, b"<html><script></script></html>", "x.png", "image/png")
    assert refused.status_code == 415 and code(refused) == "UNSUPPORTED_MEDIA_TYPE"

    deleted = await client.delete(f"/api/v1/messages/{message['id']}", headers=alice.headers)
    assert deleted.status_code == 200
    await container.jobs.drain()  # type: ignore[attr-defined]
    assert bucket_keys(container) == [f"parley/attachments/{pdf['id'][-2:]}/{pdf['id']}/original"]
    result = await container.attachments.sweep(now=utcnow() + timedelta(days=2))
    assert result.removed == 1 and bucket_keys(container) == []
    assert (await client.get(image_url)).status_code == 404


async def test_failed_storage_leaves_nothing(client: httpx.AsyncClient, container: Container) -> None:
    """The bucket is gone: the upload fails with 503 and no row is left behind."""
    alice = await make_user(client, "alice")
    s3 = boto3.client("s3", endpoint_url=container.settings.s3_endpoint_url, region_name=REGION)
    s3.delete_bucket(Bucket=container.settings.s3_bucket)
    response = await upload(client, alice, png_bytes(), "a.png", "image/png")
    assert response.status_code == 503 and code(response) == "UNAVAILABLE"
    from sqlalchemy import func, select

    from parley.store.tables.media import attachments

    async with container.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(attachments))).scalar_one() == 0
