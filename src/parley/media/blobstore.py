"""The ``BlobStore`` contract: immutable named blobs, written whole, read in ranges.

Keys are relative, slash-separated names (``attachments/7Q/<id>/original``) made of
``[A-Za-z0-9._-]`` segments; ``check_key`` rejects anything else, so no key can climb out
of a local directory or address another bucket prefix.

Guarantees every implementation gives (``tests/contract/test_blobstore.py`` checks them on each):
- ``put_file`` is atomic: a reader sees no blob or the whole new blob, never a part of it.
  Once it returns the blob is durable (fsync'd locally; acknowledged by S3).
- ``open`` streams a byte range without loading the blob into memory.
- ``delete`` is idempotent: deleting a missing key is not an error.
- Missing keys raise ``BlobNotFound`` from ``stat`` and ``open`` (before any byte is read).
- ``list_blobs`` yields every blob once, a page (or directory) at a time: a store of any
  size is listed in constant memory (``parley backup`` walks the whole store with it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Large enough to keep syscalls / HTTP reads few, small enough that a slow client costs little.
CHUNK_SIZE = 64 * 1024
MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class BlobNotFound(LookupError):
    """No blob under this key."""


class InvalidKey(ValueError):
    """The key is not a plain relative name (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int


class BlobStream(Protocol):
    """An open byte range of one blob. Iterate it once, then ``aclose`` it."""

    size: int  # size of the whole blob, not of the range

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class BlobStore(Protocol):
    async def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        """Store the bytes of the local file ``source`` under ``key`` (replacing any blob
        there). Atomic and durable when it returns; ``source`` is left in place."""
        ...

    async def stat(self, key: str) -> BlobInfo:
        """The blob's size; ``BlobNotFound`` when missing."""
        ...

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> BlobStream:
        """Stream bytes ``[start, end)`` (``end`` None: to the end). The caller keeps the
        range inside the blob. ``BlobNotFound`` is raised here, before any byte is sent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob. Idempotent."""
        ...

    async def exists(self, key: str) -> bool: ...

    def list_blobs(self) -> AsyncIterator[BlobInfo]:
        """Every blob in the store, each once, in no promised order, fetched a page at a
        time. Only names that are keys are listed (not temporary files, not foreign objects
        beside the store's own). A blob written or deleted meanwhile may or may not appear."""
        ...

    async def close(self) -> None:
        """Release connections / threads. The store is not used afterwards."""
        ...


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"blob key must be 1-{MAX_KEY_LENGTH} characters")
    segments = key.split("/")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in {".", ".."}:
            raise InvalidKey(f"bad blob key segment {segment!r}")
    return key


def is_key(name: str) -> bool:
    """Whether ``name`` is a valid key (``check_key`` accepts it)."""
    try:
        check_key(name)
    except InvalidKey:
        return False
    return True


async def read_all(store: BlobStore, key: str) -> bytes:
    """The whole blob in memory — for tests and small blobs only."""
    stream = await store.open(key)
    try:
        return b"".join([chunk async for chunk in stream])
    finally:
        await stream.aclose()
