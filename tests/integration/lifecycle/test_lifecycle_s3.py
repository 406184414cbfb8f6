"""The data lifecycle with S3 storage (moto's S3 server on loopback, as in
``tests/integration/media/test_attachments_s3.py``), on both databases: an export is built into the bucket,
downloaded from it and swept out of it; a retention archive lands in it; an erased user's
files leave it."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from parley.clock import utcnow
from parley.config import Settings
from parley.container import Container
from parley.lifecycle.archive import read_archive
from parley.media.blobstore import read_all
from tests.conftest import TEST_PASSWORD, make_user
from tests.support.attachment_helpers import pdf_bytes, upload_ok
from tests.support.chat_helpers import open_group, send
from tests.support.container_events import EventLog
from tests.support.lifecycle_helpers import export_ready
from tests.support.s3_stand_in import (
    bucket_keys,
    s3_endpoint,  # noqa: F401 (fixture)
    s3_settings,
)

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, s3_endpoint: str) -> Settings:  # noqa: F811
    return s3_settings(tmp_path, database_url, s3_endpoint, retention_archive=True)


async def test_lifecycle_on_s3(client: httpx.AsyncClient, container: Container) -> None:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob])
    document = await upload_ok(client, alice, pdf_bytes(), "plan.pdf")
    await send(client, alice, group["id"], "the plan", attachment_ids=[document["id"]])

    log = EventLog(container)
    response = await client.post("/api/v1/users/me/export", headers=alice.headers)
    export = await export_ready(log, response.json()["export"]["id"])
    assert f"parley/exports/{export['id']}.zip" in bucket_keys(container)
    download = await client.get(export["download_url"])
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    uploads = [n for n in archive.namelist() if n.startswith("uploads/")]
    assert [archive.read(n) for n in uploads] == [pdf_bytes()]
    await container.exports.sweep(now=utcnow() + timedelta(days=8))
    assert not any(key.startswith("parley/exports/") for key in bucket_keys(container))

    # Retention with the archive on: the batch goes to the bucket before it is deleted.
    await client.put(
        f"/api/v1/conversations/{group['id']}/retention", json={"retention_days": 1}, headers=alice.headers
    )
    report = await container.retention.run(as_of=utcnow() + timedelta(days=2))
    assert report.archives_written == 1
    key = next(k for k in bucket_keys(container) if k.startswith("parley/archive/retention/"))
    records = read_archive(await read_all(container.blobs, key.removeprefix("parley/")))
    assert "the plan" in [r["content"] for r in records]
    await container.attachments.sweep()
    assert not any(key.startswith("parley/attachments/") for key in bucket_keys(container))

    # Erasure takes the files a user uploaded out of the bucket.
    photo = await upload_ok(client, bob, pdf_bytes(), "bob.pdf")
    await send(client, bob, group["id"], "mine", attachment_ids=[photo["id"]])
    assert any(key.startswith("parley/attachments/") for key in bucket_keys(container))
    erased = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": TEST_PASSWORD}, headers=bob.headers
    )
    assert erased.status_code == 204
    await container.attachments.sweep()
    assert not any(key.startswith("parley/attachments/") for key in bucket_keys(container))
