"""The media half of ``parley backup`` / ``parley restore``: every blob of the configured
``BlobStore`` — local directory or S3 — copied into the backup's ``media/`` folder, and back
into whichever store the restoring server is configured with (so a backup of a local
deployment restores into S3, and the other way round).

Only the ``BlobStore`` port is used: ``list_blobs`` a page at a time, ``open`` streamed in
chunks to a file, ``put_file`` from the file. Memory holds one listing page and one chunk,
whatever the store's size. ``media/<key>`` is the blob's key as a path, the layout the
local store itself has, so backups written before this module restore the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import BinaryIO

from parley.lifecycle.progress import Progress
from parley.media.blobstore import BlobNotFound, BlobStore, check_key

MEDIA = "media"
# A blob's content type is not kept in the backup: the local store has none to give, and
# Parley serves every blob with the type its database row records, never the store's.
RESTORED_CONTENT_TYPE = "application/octet-stream"


def blob_path(folder: Path, key: str) -> Path:
    return folder.joinpath(*check_key(key).split("/"))


def key_of(manifest_name: str) -> str:
    """The blob key of a backup file named ``media/<key>`` in the manifest."""
    return manifest_name.removeprefix(f"{MEDIA}/")


async def copy_out(store: BlobStore, folder: Path, progress: Progress) -> int:
    """Copy every blob of ``store`` into ``folder`` (``folder/<key>``); the number copied.
    A blob deleted between the listing and its copy is left out: a sweep took it, and the
    row that named it was going too."""
    copied = 0
    async for info in store.list_blobs():
        try:
            stream = await store.open(info.key)
        except BlobNotFound:
            continue
        target = blob_path(folder, info.key)
        try:
            handle = await asyncio.to_thread(_create, target)
            try:
                async for chunk in stream:
                    await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)
        finally:
            await stream.aclose()
        copied += 1
        progress.count("media", copied)
    progress.count("media", copied, finished=True)
    return copied


async def first_present(store: BlobStore, keys: Collection[str]) -> str | None:
    """A key of ``keys`` that ``store`` already holds (one pass over its listing)."""
    async for info in store.list_blobs():
        if info.key in keys:
            return info.key
    return None


async def copy_in(store: BlobStore, folder: Path, keys: Iterable[str], progress: Progress) -> None:
    """Put each blob of ``keys`` from ``folder/<key>`` into ``store`` (atomic and durable
    per blob, the store's guarantee), replacing what is there."""
    keys = list(keys)
    for index, key in enumerate(keys, 1):
        await store.put_file(key, blob_path(folder, key), content_type=RESTORED_CONTENT_TYPE)
        progress.show("media", index, len(keys))


def check_keys(names: Iterable[str]) -> list[str]:
    """The blob keys of the manifest's ``media/`` files; ``InvalidKey`` for a name that is
    no key (a damaged or forged manifest), before anything is written."""
    keys = [key_of(name) for name in names if name.startswith(f"{MEDIA}/")]
    for key in keys:
        check_key(key)
    return keys


def _create(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("xb")
