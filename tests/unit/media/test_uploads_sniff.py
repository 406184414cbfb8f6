"""Type sniffing and file-name cleaning: pure functions, no server."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from parley.media import sniff
from parley.media.names import clean_name, content_disposition, safe_name
from tests.support.attachment_helpers import (
    animated_gif,
    jpeg_with_exif,
    mp3_bytes,
    mp4_bytes,
    office_zip,
    ogg_bytes,
    pdf_bytes,
    png_bytes,
    webm_bytes,
)


def webp_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, format="WEBP")
    return out.getvalue()


ACCEPTED = [
    (jpeg_with_exif(), "x", sniff.JPEG),
    (png_bytes(), "x", sniff.PNG),
    (animated_gif(), "x", sniff.GIF),
    (webp_bytes(), "x", sniff.WEBP),
    (pdf_bytes(), "x", sniff.PDF),
    ("héllo, wörld\nline two\n".encode(), "notes.txt", sniff.TEXT),
    (b"\xef\xbb\xbfa,b,c\n1,2,3\n", "table.csv", sniff.CSV),
    (office_zip("zip"), "x", sniff.ZIP),
    (office_zip("docx"), "x", sniff.DOCX),
    (office_zip("xlsx"), "x", sniff.XLSX),
    (office_zip("pptx"), "x", sniff.PPTX),
    (office_zip("odt"), "x", sniff.ODT),
    (office_zip("ods"), "x", sniff.ODS),
    (office_zip("odp"), "x", sniff.ODP),
    (ogg_bytes(), "x", sniff.OGG),
    (mp3_bytes(), "x", sniff.MP3),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00" + mp3_bytes(), "x", sniff.MP3),
    (mp4_bytes(100, b"M4A "), "x", sniff.M4A),
    (mp4_bytes(100), "x", sniff.MP4),
    (webm_bytes(1, 100), "x", sniff.WEBM),
    (webm_bytes(2, 100), "x", sniff.WEBM_AUDIO),
]

REFUSED = [
    (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, sniff.Refusal.EXECUTABLE),  # Windows PE
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, sniff.Refusal.EXECUTABLE),
    (b"#!/bin/sh\nrm -rf /\n", sniff.Refusal.EXECUTABLE),
    (b"<!DOCTYPE html><html><script>alert(1)</script></html>", sniff.Refusal.MARKUP),
    (b"  \n<html><body>hi</body></html>", sniff.Refusal.MARKUP),
    (b"\xef\xbb\xbf<svg xmlns='http://www.w3.org/2000/svg'/>", sniff.Refusal.MARKUP),
    (b"<?xml version='1.0'?><svg/>", sniff.Refusal.MARKUP),
    (b"some notes\n<script src=//evil></script>", sniff.Refusal.MARKUP),
    (b"BM" + b"\x00" * 60, sniff.Refusal.UNKNOWN),  # BMP: not an accepted image type
    (b"\x00\x00\x01\x00" + b"\x00" * 60, sniff.Refusal.UNKNOWN),  # ICO
    (b"text with a NUL \x00 byte", sniff.Refusal.UNKNOWN),
    (b"\xff\xfe l\x00a\x00t\x00i\x00n\x00", sniff.Refusal.UNKNOWN),  # UTF-16: not UTF-8
    (b"caf\xe9 latin-1", sniff.Refusal.UNKNOWN),
    (b"PK\x03\x04 but not really a zip", sniff.Refusal.UNKNOWN),
    (mp4_bytes(100, b"heic"), sniff.Refusal.UNKNOWN),  # HEIC image in an ftyp box
    (b"\x1a\x45\xdf\xa3\x88\x42\x82\x88matroska", sniff.Refusal.UNKNOWN),  # .mkv, not WebM
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", sniff.Refusal.UNKNOWN),
]


@pytest.mark.parametrize(("data", "name", "expected"), ACCEPTED, ids=lambda v: getattr(v, "content_type", ""))
def test_accepted_types(tmp_path: Path, data: bytes, name: str, expected: sniff.MediaType) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    assert sniff.sniff_file(path, name_hint=name).media_type == expected


@pytest.mark.parametrize(("data", "reason"), REFUSED)
def test_refused_types(tmp_path: Path, data: bytes, reason: sniff.Refusal) -> None:
    path = tmp_path / "f"
    path.write_bytes(data)
    result = sniff.sniff_file(path, name_hint="innocent.png")
    assert result.media_type is None and result.refusal == reason


def test_text_is_checked_to_the_end(tmp_path: Path) -> None:
    """UTF-8 must hold across the whole file, chunk boundaries included."""
    path = tmp_path / "f"
    body = ("é" * (sniff.TEXT_CHUNK // 2 + 1)).encode()  # a 2-byte char straddles the chunk
    path.write_bytes(body)
    assert sniff.sniff_file(path).media_type == sniff.TEXT
    path.write_bytes(body + b"\x00")
    assert sniff.sniff_file(path).media_type is None


def test_zip_entries_decide_office_types(tmp_path: Path) -> None:
    path = tmp_path / "f"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<x/>")  # no [Content_Types].xml: plain ZIP
    path.write_bytes(out.getvalue())
    assert sniff.sniff_file(path).media_type == sniff.ZIP


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf"),
        ("/var/www/../report.pdf", "report.pdf"),
        ("a\x00b\x07c\r\nd.txt", "abcd.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override removed
        ('quo"te<>|?*:.txt', "quo_te______.txt"),
        ("  ..  ", ""),
        ("..", ""),
        ("CON.txt", "_CON.txt"),
        ("x" * 500 + ".pdf", "x" * 196 + ".pdf"),
        ("Ünïcödé 文件.txt", "Ünïcödé 文件.txt"),
        (None, ""),
    ],
)
def test_clean_name(raw: str | None, expected: str) -> None:
    assert clean_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "media_type", "expected"),
    [
        ("photo.JPG", sniff.JPEG, "photo.JPG"),
        ("photo.png", sniff.JPEG, "photo.png.jpg"),  # extension made to match the content
        ("report.pdf", sniff.PNG, "report.pdf.png"),
        ("page.html", sniff.TEXT, "page.html.txt"),
        ("notes.md", sniff.TEXT, "notes.md"),
        ("data.txt", sniff.CSV, "data.txt.csv"),
        ("", sniff.PDF, "file.pdf"),
        ("../", sniff.PNG, "file.png"),
        ("noext", sniff.ZIP, "noext.zip"),
    ],
)
def test_safe_name(raw: str, media_type: sniff.MediaType, expected: str) -> None:
    assert safe_name(raw, media_type) == expected


def test_content_disposition() -> None:
    assert content_disposition("attachment", "a.pdf") == 'attachment; filename="a.pdf"'
    header = content_disposition("inline", "résumé 1.pdf")
    assert header == "inline; filename=\"r_sum_ 1.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf"
