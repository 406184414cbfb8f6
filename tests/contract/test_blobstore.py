"""The ``BlobStore`` contract, run against every implementation: the local directory and
S3 (through moto's S3 server on loopback — the stand-in for AWS S3 / MinIO, see
``tests/support/s3_stand_in.py``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest

from parley.media.blobstore import BlobNotFound, BlobStore, InvalidKey, read_all
from parley.media.local import LocalBlobStore
from tests.support.s3_stand_in import REGION, new_bucket_name, s3_endpoint  # noqa: F401 (fixture)


@pytest.fixture(params=["local", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        local = LocalBlobStore(tmp_path / "media")
        yield local
        await local.close()
        return
    from parley.media.s3 import S3BlobStore

    endpoint: str = request.getfixturevalue("s3_endpoint")
    s3 = S3BlobStore(new_bucket_name(), endpoint_url=endpoint, prefix="contract")
    await s3.ensure_bucket()
    yield s3
    await s3.close()


def write(tmp_path: Path, data: bytes, name: str = "source") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def test_put_then_read_whole_and_ranges(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(200_000)  # several chunks
    await store.put_file("a/b/blob", write(tmp_path, data), content_type="application/pdf")
    assert (await store.stat("a/b/blob")).size == len(data)
    assert await store.exists("a/b/blob")
    assert await read_all(store, "a/b/blob") == data
    for start, end in [(0, 1), (10, 70_000), (199_999, 200_000), (150_000, None)]:
        stream = await store.open("a/b/blob", start=start, end=end)
        try:
            assert stream.size == len(data)
            got = b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()
        assert got == data[start:end], (start, end)


async def test_put_replaces_and_leaves_the_source(store: BlobStore, tmp_path: Path) -> None:
    source = write(tmp_path, b"first")
    await store.put_file("k", source, content_type="text/plain")
    await store.put_file("k", write(tmp_path, b"second version", "other"), content_type="text/plain")
    assert await read_all(store, "k") == b"second version"
    assert source.read_bytes() == b"first"


async def test_missing_keys(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.stat("nope/never")
    with pytest.raises(BlobNotFound):
        await store.open("nope/never")
    assert not await store.exists("nope/never")
    await store.delete("nope/never")  # idempotent: no error


async def test_delete_is_idempotent(store: BlobStore, tmp_path: Path) -> None:
    await store.put_file("x/y", write(tmp_path, b"data"), content_type="image/png")
    await store.delete("x/y")
    await store.delete("x/y")
    assert not await store.exists("x/y")


@pytest.mark.parametrize(
    "key", ["", "../escape", "a/../b", "/absolute", "a//b", "a/./b", ".hidden", "sp ace", "a\\b"]
)
async def test_keys_cannot_escape(store: BlobStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_file(key, write(tmp_path, b"x"), content_type="text/plain")
    with pytest.raises(InvalidKey):
        await store.open(key)


async def test_concurrent_writers_each_see_a_whole_blob(store: BlobStore, tmp_path: Path) -> None:
    """Atomic puts: readers racing writers see one complete version, never a mix."""
    versions = [bytes([i]) * 150_000 for i in range(4)]
    sources = [write(tmp_path, v, f"v{i}") for i, v in enumerate(versions)]
    await store.put_file("race", sources[0], content_type="application/zip")

    async def read_once() -> bytes:
        return await read_all(store, "race")

    results = await asyncio.gather(
        *(store.put_file("race", s, content_type="application/zip") for s in sources),
        *(read_once() for _ in range(6)),
    )
    for seen in results[len(sources) :]:
        assert seen in versions


async def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    await store.put_file("d/e/f", write(tmp_path, b"abc"), content_type="text/plain")
    assert [p.name for p in (tmp_path / "media" / "d" / "e").iterdir()] == ["f"]
    await store.delete("d/e/f")
    assert list((tmp_path / "media").iterdir()) == []  # empty directories removed too


async def test_every_blob_is_listed_once(store: BlobStore, tmp_path: Path) -> None:
    assert [info async for info in store.list_blobs()] == []  # a store that never held a blob
    sizes = {"attachments/7Q/a1/original": 3, "attachments/7Q/a1/thumb": 1, "avatars/u/x": 70_000, "top": 0}
    for key, size in sizes.items():
        await store.put_file(key, write(tmp_path, b"z" * size), content_type="application/octet-stream")
    listed = [info async for info in store.list_blobs()]
    assert sorted((info.key, info.size) for info in listed) == sorted(sizes.items())
    await store.delete("attachments/7Q/a1/thumb")
    assert sorted([info.key async for info in store.list_blobs()]) == sorted(set(sizes) - {"attachments/7Q/a1/thumb"})


async def test_a_listing_of_many_blobs_spans_pages(store: BlobStore, tmp_path: Path) -> None:
    """More keys than one S3 page holds (1,000), in more directories than one."""
    source = write(tmp_path, b"x")
    keys = {f"many/{i % 7}/{i:04d}" for i in range(1_050)}
    await asyncio.gather(*(store.put_file(key, source, content_type="text/plain") for key in keys))
    assert sorted([info.key async for info in store.list_blobs()]) == sorted(keys)


async def test_local_listing_skips_what_is_not_a_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "media")
    await store.put_file("d/blob", write(tmp_path, b"abc"), content_type="text/plain")
    (tmp_path / "media" / "d" / ".blob.0a1b2c.tmp").write_bytes(b"half a wri")  # a put under way
    (tmp_path / "media" / "d" / "sp ace").write_bytes(b"not ours")
    assert [(info.key, info.size) async for info in store.list_blobs()] == [("d/blob", 3)]


async def test_s3_listing_keeps_to_the_stores_prefix(tmp_path: Path, s3_endpoint: str) -> None:  # noqa: F811
    from parley.media.s3 import S3BlobStore

    bucket = new_bucket_name()
    store = S3BlobStore(bucket, endpoint_url=s3_endpoint, prefix="parley")
    await store.ensure_bucket()
    try:
        await store.put_file("attachments/a", write(tmp_path, b"ours"), content_type="text/plain")
        raw = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
        raw.put_object(Bucket=bucket, Key="elsewhere/theirs", Body=b"another tool's")
        raw.put_object(Bucket=bucket, Key="parley/folder/", Body=b"")  # a console's "folder"
        raw.put_object(Bucket=bucket, Key="parley-other/x", Body=b"a neighbouring prefix")
        assert [(info.key, info.size) async for info in store.list_blobs()] == [("attachments/a", 4)]
    finally:
        await store.close()
