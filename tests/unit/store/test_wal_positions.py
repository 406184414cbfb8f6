"""``store.replicas.record_end``: the insert position PostgreSQL reports, less the page
header it stands past when the next record would open a page (where a replica that has
replayed everything stops)."""

from __future__ import annotations

from parley.store.replicas import record_end

SEGMENT = 16 * 1024 * 1024
BLOCK = 8192


def end(lsn: str) -> str:
    return record_end(lsn, segment_bytes=SEGMENT, block_bytes=BLOCK)


def test_past_a_segments_long_header_is_the_segment_boundary() -> None:
    assert end("0/3000028") == "0/3000000"
    assert end("1A/FF000028") == "1A/FF000000"


def test_past_a_pages_short_header_is_the_page_boundary() -> None:
    assert end("0/3002018") == "0/3002000"


def test_anywhere_else_is_unchanged() -> None:
    for lsn in ("0/0", "0/3000000", "0/3002000", "0/3002019", "0/3000029", "FFFFFFFF/FFFFFFFF", "5/1A2B3C"):
        assert end(lsn) == lsn
