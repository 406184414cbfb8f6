"""A ZIP archive written piece by piece from async code, never whole in memory.

Each piece (a JSON array page, an HTML chunk, a blob's chunks) is handed to a thread to be
compressed and written, so the event loop never waits on zlib or the disk.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str)


class ZipSink:
    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED)

    async def close(self) -> None:
        await asyncio.to_thread(self._zip.close)

    async def write_json(self, name: str, value: Any) -> None:
        await asyncio.to_thread(self._zip.writestr, name, dumps(value))

    async def write_text(self, name: str, text: str) -> None:
        await asyncio.to_thread(self._zip.writestr, name, text)

    async def write_json_pages(
        self, name: str, pages: AsyncIterator[Sequence[dict[str, Any]]]
    ) -> int:
        """A JSON array from pages of items; returns how many items were written."""
        entry = await asyncio.to_thread(self._zip.open, name, "w", force_zip64=True)
        count = 0
        try:
            await _write(entry, "[")
            async for page in pages:
                if not page:
                    continue
                text = ",\n".join(dumps(item) for item in page)
                await _write(entry, ("\n" if count == 0 else ",\n") + text)
                count += len(page)
            await _write(entry, "\n]\n")
        finally:
            await asyncio.to_thread(entry.close)
        return count

    async def write_chunks(self, name: str, chunks: AsyncIterator[bytes | str]) -> None:
        entry = await asyncio.to_thread(self._zip.open, name, "w", force_zip64=True)
        try:
            async for chunk in chunks:
                await _write(entry, chunk)
        finally:
            await asyncio.to_thread(entry.close)


async def _write(entry: IO[bytes], data: bytes | str) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    await asyncio.to_thread(entry.write, raw)
