"""``LocalBlobStore``: blobs as files under one directory (the default, ``data_dir/media``).

Atomic writes: the bytes go to a temporary file in the target's own directory, are
fsync'd, then ``os.replace``d over the final name (atomic on POSIX within one file system),
and the directory is fsync'd so the new name itself survives a power loss. Temporary names
start with ``.`` and can never collide with a key (keys' segments don't start with ``.``).

File I/O runs in worker threads (``asyncio.to_thread``) so a slow disk never stalls the
event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from parley.media.blobstore import CHUNK_SIZE, BlobInfo, BlobNotFound, check_key, is_key


class LocalBlobStream:
    def __init__(self, handle: BinaryIO, size: int, start: int, end: int) -> None:
        self.size = size
        self._handle = handle
        self._position = start
        self._end = end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._position < self._end:
            want = min(CHUNK_SIZE, self._end - self._position)
            chunk = await asyncio.to_thread(self._handle.read, want)
            if not chunk:  # the file shrank under us; blobs are immutable, so stop
                return
            self._position += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await asyncio.to_thread(self._handle.close)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        await asyncio.to_thread(self._put_file, self._path(key), source)

    def _put_file(self, target: Path, source: Path) -> None:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with source.open("rb") as reader, _create(temporary) as writer:
                shutil.copyfileobj(reader, writer, CHUNK_SIZE)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)

    async def stat(self, key: str) -> BlobInfo:
        path = self._path(key)
        try:
            result = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return BlobInfo(key, result.st_size)

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> LocalBlobStream:
        path = self._path(key)

        def open_at() -> tuple[BinaryIO, int]:
            handle = path.open("rb")
            size = os.fstat(handle.fileno()).st_size
            handle.seek(start)
            return handle, size

        try:
            handle, size = await asyncio.to_thread(open_at)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        stop = size if end is None else min(end, size)
        return LocalBlobStream(handle, size, start, stop)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self._path(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        # Remove directories left empty, so deleted attachments leave no trace behind.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            parent = parent.parent

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        # Depth first, one directory read (in a thread) at a time: memory holds one
        # directory's entries and the directories still to visit, never the whole tree.
        pending = [self.root]
        while pending:
            directory = pending.pop()
            folders, files = await asyncio.to_thread(_read_directory, directory)
            pending.extend(folders)
            for path, size in files:
                key = path.relative_to(self.root).as_posix()
                if is_key(key):  # temporary files (".name.tmp") are not blobs
                    yield BlobInfo(key, size)

    async def close(self) -> None:
        return None


def _read_directory(directory: Path) -> tuple[list[Path], list[tuple[Path, int]]]:
    """The subdirectories and the (file, size) pairs of one directory; nothing when it is
    gone (deleted since it was seen, or a store that never held a blob)."""
    folders: list[Path] = []
    files: list[tuple[Path, int]] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        files.append((Path(entry.path), entry.stat(follow_symlinks=False).st_size))
                except FileNotFoundError:  # deleted while listed
                    continue
    except FileNotFoundError:
        pass
    return folders, files


def _create(path: Path) -> BinaryIO:
    """Open a new file, creating its directories. Retried: a concurrent ``delete`` may
    remove an empty parent between our ``mkdir`` and ``open``."""
    for attempt in range(3):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return path.open("xb")
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
