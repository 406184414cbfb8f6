"""The media half of backup and restore (``parley.lifecycle.backup_media``) between every
pair of stores — local directory and S3 (moto's S3 server on loopback,
``tests/support/s3_stand_in.py``): every blob out into a backup folder and back into another
store, byte for byte, through the ``BlobStore`` port alone; blobs that vanish mid-copy, blobs
already present, and keys no blob may have."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley.lifecycle.backup_media import check_keys, copy_in, copy_out, first_present
from parley.lifecycle.progress import Progress
from parley.media.blobstore import BlobInfo, BlobStore, InvalidKey, read_all
from parley.media.local import LocalBlobStore
from tests.support.s3_stand_in import new_bucket_name, s3_endpoint  # noqa: F401 (fixture)

KINDS = ["local", "s3"]


async def new_store(kind: str, request: pytest.FixtureRequest, root: Path) -> BlobStore:
    if kind == "local":
        return LocalBlobStore(root)
    from parley.media.s3 import S3BlobStore

    store = S3BlobStore(new_bucket_name(), endpoint_url=request.getfixturevalue("s3_endpoint"), prefix="parley")
    await store.ensure_bucket()
    return store


@pytest.fixture(params=KINDS)
async def source(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store = await new_store(request.param, request, tmp_path / "source-media")
    yield store
    await store.close()


@pytest.fixture(params=KINDS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    store = await new_store(request.param, request, tmp_path / "target-media")
    yield store
    await store.close()


async def fill(store: BlobStore, tmp_path: Path, blobs: dict[str, bytes]) -> None:
    for index, (key, data) in enumerate(blobs.items()):
        path = tmp_path / f"blob-{index}"
        path.write_bytes(data)
        await store.put_file(key, path, content_type="image/webp")


def quiet() -> Progress:
    return Progress(io.StringIO())


BLOBS = {
    "attachments/7Q/01J9ZXATTACH7Q/original": os.urandom(300_000),  # several chunks
    "attachments/7Q/01J9ZXATTACH7Q/thumb320": os.urandom(2_000),
    "avatars/01J9ZXUSER/k1/256": os.urandom(5_000),
    "group-avatars/01J9ZXGROUP/k2/64": b"",
    "exports/01J9ZXEXPORT.zip": os.urandom(70_000),
}


async def test_every_blob_goes_out_and_back_in(source: BlobStore, target: BlobStore, tmp_path: Path) -> None:
    await fill(source, tmp_path, BLOBS)
    folder = tmp_path / "backup" / "media"
    assert await copy_out(source, folder, quiet()) == len(BLOBS)
    copied = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert copied == BLOBS

    keys = check_keys(f"media/{key}" for key in copied)
    assert await first_present(target, set(keys)) is None
    await copy_in(target, folder, keys, quiet())
    assert {key: await read_all(target, key) for key in BLOBS} == BLOBS
    assert sorted([info.key async for info in target.list_blobs()]) == sorted(BLOBS)
    assert await first_present(target, set(keys)) in BLOBS  # a second restore would overwrite


async def test_an_empty_store_backs_up_to_nothing(source: BlobStore, tmp_path: Path) -> None:
    progress = io.StringIO()
    assert await copy_out(source, tmp_path / "media", Progress(progress)) == 0
    assert not (tmp_path / "media").exists()
    assert progress.getvalue() == "media: 0\n"


class Vanishing:
    """A store whose listing names a blob that a sweep deletes before it is opened."""

    def __init__(self, store: BlobStore, gone: str) -> None:
        self.store, self.gone = store, gone

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        async for info in self.store.list_blobs():
            if info.key == self.gone:
                await self.store.delete(self.gone)
            yield info


async def test_a_blob_deleted_while_listed_is_left_out(source: BlobStore, tmp_path: Path) -> None:
    await fill(source, tmp_path, BLOBS)
    gone = "avatars/01J9ZXUSER/k1/256"
    folder = tmp_path / "media"
    assert await copy_out(Vanishing(source, gone), folder, quiet()) == len(BLOBS) - 1  # type: ignore[arg-type]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(
        set(BLOBS) - {gone}
    )


@pytest.mark.parametrize("name", ["media/../secret.key", "media//x", "media/a/./b", "media/.hidden", "media/"])
def test_a_manifest_naming_no_key_is_refused(name: str) -> None:
    with pytest.raises(InvalidKey):
        check_keys(["parley.db", "media/attachments/ok", name])


def test_files_outside_media_are_not_blobs() -> None:
    assert check_keys(["parley.db", "secret.key", "media/a/b", "mediaeval/x"]) == ["a/b"]


async def test_a_big_blob_is_streamed_not_held(tmp_path: Path) -> None:
    """A 32 MB blob goes out in chunks: what Python holds at once stays a small fraction of it."""
    store = LocalBlobStore(tmp_path / "media")
    big = tmp_path / "big"
    with big.open("wb") as handle:
        for _ in range(32):
            handle.write(os.urandom(1024 * 1024))
    await store.put_file("exports/big.zip", big, content_type="application/zip")
    tracemalloc.start()
    try:
        assert await copy_out(store, tmp_path / "backup", quiet()) == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "backup" / "exports" / "big.zip").read_bytes() == big.read_bytes()
    assert peak < 4 * 1024 * 1024, f"{peak} bytes held at once"
