"""HTTP byte ranges (RFC 9110 §14) for one representation: parse ``Range`` / ``If-Range``.

One range per request. A multi-range or malformed header is ignored — the whole file is
sent with 200, which the RFC allows — rather than answering ``multipart/byteranges`` that
media players never ask for. A well-formed range that starts past the end is 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parley.services.attachment_errors import RangeNotSatisfiable

_SINGLE_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


def requested_range(
    range_header: str | None, size: int, *, if_range: str | None = None, etag: str = ""
) -> ByteRange | None:
    """The range to send, None for the whole file, ``RangeNotSatisfiable`` for 416."""
    if not range_header:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None  # the client's copy is of another version: send it all
    match = _SINGLE_RANGE.match(range_header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # "bytes=-N": the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable()
        return ByteRange(max(size - suffix, 0), size)
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None  # "bytes=9-3" is invalid syntax: ignored, as the RFC says
    if start >= size:
        raise RangeNotSatisfiable()
    return ByteRange(start, min(end, size))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` (weak comparison, as RFC 9110 §13.1.2 requires)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in if_none_match.split(","))
