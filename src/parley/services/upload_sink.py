"""``UploadSink``: one incoming file, written to a private temporary file as it streams.

The byte limit is enforced per chunk, so an oversized upload is stopped (413) at the first
byte past its limit, with nothing but that chunk in memory. The limit depends on what the
file is, and the file's first bytes say that: as soon as they are in, the sink sniffs
them (``media.sniff.sniff_head``) and applies the image limit to images and the attachment
limit to everything else. The SHA-256 is computed on the way through.

The temporary file lives under the data directory (same file system as local media, and
never world-readable: ``mkstemp`` creates it 0600). ``discard`` removes it; callers use the
sink as an async context manager so it is removed whatever happens.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from parley.errors import PayloadTooLarge
from parley.media.sniff import MediaKind, sniff_head

# Enough bytes to recognise every accepted binary format by its magic number.
SNIFF_BYTES = 16


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_attachment_bytes: int
    max_image_bytes: int
    max_image_pixels: int  # one frame
    max_image_total_pixels: int  # every frame of an animation together


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    path: Path
    size: int
    sha256: str


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


class UploadSink:
    def __init__(self, directory: Path, limits: UploadLimits) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._limits = limits
        self._limit = limits.max_attachment_bytes
        self._limit_known = False
        self._head = bytearray()
        self._digest = hashlib.sha256()
        self.size = 0

    async def __aenter__(self) -> UploadSink:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.discard()

    def _choose_limit(self) -> None:
        media_type = sniff_head(bytes(self._head))
        if media_type is not None and media_type.kind is MediaKind.IMAGE:
            self._limit = min(self._limits.max_image_bytes, self._limits.max_attachment_bytes)
        self._limit_known = True

    def _check(self, size: int) -> None:
        if size <= self._limit:
            return
        if self._limit < self._limits.max_attachment_bytes:
            raise PayloadTooLarge(f"Images can be at most {_megabytes(self._limit)}")
        raise PayloadTooLarge(f"Attachments can be at most {_megabytes(self._limit)}")

    async def write(self, data: bytes) -> None:
        """Append ``data``; ``PayloadTooLarge`` (nothing written) past the limit."""
        if not data:
            return
        if not self._limit_known:
            self._head.extend(data[: SNIFF_BYTES - len(self._head)])
            if len(self._head) >= SNIFF_BYTES:
                self._choose_limit()
        self._check(self.size + len(data))
        await asyncio.to_thread(self._append, data)
        self.size += len(data)

    def _append(self, data: bytes) -> None:
        self._digest.update(data)
        self._file.write(data)

    async def finish(self) -> ReceivedFile:
        """Close the file and describe it (the sink still owns it: ``discard`` removes it)."""
        if not self._limit_known:
            self._choose_limit()
            self._check(self.size)
        await asyncio.to_thread(self._file.close)
        return ReceivedFile(self.path, self.size, self._digest.hexdigest())

    async def discard(self) -> None:
        await asyncio.to_thread(self._remove)

    def _remove(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)
