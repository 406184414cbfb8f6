"""Retention archives: expired messages as gzip'd JSON Lines in the media store.

One blob per deleted batch, named by conversation and seq range, so a retried batch (a crash
between the archive and the delete) rewrites the same key instead of adding a second copy.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parley.media.blobstore import BlobStore

ARCHIVE_PREFIX = "archive/retention"
CONTENT_TYPE = "application/x-ndjson+gzip"


def archive_key(conversation_id: str, first_seq: int, last_seq: int) -> str:
    # Zero-padded: keys sort in seq order in a listing of the conversation's folder.
    return f"{ARCHIVE_PREFIX}/{conversation_id}/{first_seq:020d}-{last_seq:020d}.jsonl.gz"


def _write(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")


async def write_archive(
    store: BlobStore, temp_dir: Path, key: str, records: Sequence[dict[str, Any]]
) -> None:
    """Store ``records`` under ``key``; durable when this returns (``put_file``)."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=temp_dir, suffix=".jsonl.gz") as handle:
        path = Path(handle.name)
        await asyncio.to_thread(_write, path, records)
        await store.put_file(key, path, content_type=CONTENT_TYPE)


def read_archive(data: bytes) -> list[dict[str, Any]]:
    """The records of an archive blob (operators and tests)."""
    text = gzip.decompress(data).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]
