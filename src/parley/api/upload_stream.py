"""Streaming ``multipart/form-data`` reader for uploads: the ``file`` part goes straight to
an ``UploadSink`` chunk by chunk as the request body arrives.

Why not FastAPI's ``UploadFile``: it parses the whole body first (spooling it to a
temporary file of its own) before the route runs, so a size limit could only be checked
after everything was received. Here the sink sees each chunk as it comes and raises 413 at
the first byte over its limit; the rest of the body is never read. Memory stays at one
network chunk plus the parser's small buffers, whatever the upload's size.

Accepted shape: exactly one part named ``file`` (a file name is optional; its
``Content-Type`` is the client's *declared* type, checked against the sniffed one later).
Other small text fields are tolerated and ignored; a second file part is an error.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from parley.errors import UnsupportedMediaType, ValidationFailed
from parley.services.upload_sink import UploadSink

FILE_FIELD = "file"
MAX_OTHER_FIELD_BYTES = 4096
MAX_PARTS = 10


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    is_file: bool = False
    other_bytes: int = 0


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str | None
    declared_type: str


# Browsers escape exactly these three in multipart file names (WHATWG HTML, "multipart/
# form-data encoding algorithm"); any other "%xx" is part of the name as typed.
_BROWSER_ESCAPES = {b"%0a": b"\n", b"%0d": b"\r", b"%22": b'"'}
_BROWSER_ESCAPE = re.compile(rb"%0[aAdD]|%22")


def _browser_filename(raw: bytes) -> str:
    """The name as the user's file system had it (``names.clean_name`` then cleans it)."""
    unescaped = _BROWSER_ESCAPE.sub(lambda m: _BROWSER_ESCAPES[m.group(0).lower()], raw)
    return unescaped.decode("utf-8", "replace")


def multipart_boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data with the file in a part named 'file'"
        )
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise ValidationFailed.field("file", "the multipart boundary is missing or invalid")
    return boundary


async def receive_file(
    body: AsyncIterator[bytes], content_type: str, sink: UploadSink
) -> FilePart:
    """Feed ``body`` through the multipart parser; the ``file`` part's bytes into ``sink``."""
    boundary = multipart_boundary(content_type)
    parts: list[_Part] = []
    pending: list[bytes] = []  # file bytes parsed from the current chunk, written after it
    header_name = bytearray()
    header_value = bytearray()
    found: list[FilePart] = []
    ended: list[bool] = []

    def current() -> _Part:
        return parts[-1]

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise ValidationFailed.field("file", f"at most {MAX_PARTS} form fields")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current().headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        part = current()
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename*") or options.get(b"filename")
        part.filename = _browser_filename(raw_filename) if raw_filename else None
        if part.name == FILE_FIELD:
            if found:
                raise ValidationFailed.field("file", "send exactly one file per upload")
            part.is_file = True
            declared = part.headers.get(b"content-type", b"").decode("latin-1")
            found.append(FilePart(part.filename, declared.split(";")[0].strip().lower()))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = current()
        if part.is_file:
            pending.append(data[start:end])
            return
        part.other_bytes += end - start
        if part.other_bytes > MAX_OTHER_FIELD_BYTES:
            raise ValidationFailed.field(part.name or "form", "this form field is too large")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_end": lambda: ended.append(True),
        },
    )
    try:
        async for chunk in body:
            parser.write(chunk)
            for piece in pending:
                await sink.write(piece)
            pending.clear()
        parser.finalize()
    except FormParserError as exc:
        raise ValidationFailed.field("file", f"the multipart body is malformed ({exc})") from None
    if not ended:
        raise ValidationFailed.field("file", "the multipart body ended before its last boundary")
    if not found:
        raise ValidationFailed.field("file", "is required (a multipart part named 'file')")
    return found[0]
