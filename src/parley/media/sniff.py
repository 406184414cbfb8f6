"""What an uploaded file is, decided from its bytes (magic numbers) — never from the name
or the Content-Type the client sent.

Accepted (DESIGN §1 "attachments"):
    images     JPEG, PNG, GIF, WebP
    documents  PDF, plain text (valid UTF-8, no NUL, not markup), CSV, ZIP, OOXML
               (docx / xlsx / pptx, found inside the ZIP), ODF (odt / ods / odp)
    audio      Ogg, MP3, M4A, WebM (audio only)
    video      MP4, WebM
Everything else — executables, HTML, SVG, XML, scripts, unknown binaries — is ``None``.

``sniff_head`` looks at the first ``HEAD_BYTES`` only (used while the upload is still
streaming, to pick the size limit); ``sniff_file`` decides for good, reading the whole file
when it must (text must be valid UTF-8 throughout; ZIPs are opened to look inside).
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class MediaKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    AUDIO = "audio"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class MediaType:
    content_type: str
    kind: MediaKind
    extensions: tuple[str, ...]  # the first is the canonical one
    pillow_format: str | None = None  # images only: the one decoder Pillow may use

    @property
    def inline(self) -> bool:
        """Displayed in the page (raster images, audio, video); else downloaded."""
        return self.kind is not MediaKind.DOCUMENT

    @property
    def is_text(self) -> bool:
        return self.content_type.startswith("text/")


_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"

JPEG = MediaType("image/jpeg", MediaKind.IMAGE, ("jpg", "jpeg", "jpe"), "JPEG")
PNG = MediaType("image/png", MediaKind.IMAGE, ("png",), "PNG")
GIF = MediaType("image/gif", MediaKind.IMAGE, ("gif",), "GIF")
WEBP = MediaType("image/webp", MediaKind.IMAGE, ("webp",), "WEBP")
PDF = MediaType("application/pdf", MediaKind.DOCUMENT, ("pdf",))
TEXT = MediaType("text/plain", MediaKind.DOCUMENT, ("txt",))
CSV = MediaType("text/csv", MediaKind.DOCUMENT, ("csv",))
ZIP = MediaType("application/zip", MediaKind.DOCUMENT, ("zip",))
DOCX = MediaType(f"{_OOXML}.wordprocessingml.document", MediaKind.DOCUMENT, ("docx",))
XLSX = MediaType(f"{_OOXML}.spreadsheetml.sheet", MediaKind.DOCUMENT, ("xlsx",))
PPTX = MediaType(f"{_OOXML}.presentationml.presentation", MediaKind.DOCUMENT, ("pptx",))
ODT = MediaType(f"{_ODF}.text", MediaKind.DOCUMENT, ("odt",))
ODS = MediaType(f"{_ODF}.spreadsheet", MediaKind.DOCUMENT, ("ods",))
ODP = MediaType(f"{_ODF}.presentation", MediaKind.DOCUMENT, ("odp",))
OGG = MediaType("audio/ogg", MediaKind.AUDIO, ("ogg", "oga", "opus"))
MP3 = MediaType("audio/mpeg", MediaKind.AUDIO, ("mp3",))
M4A = MediaType("audio/mp4", MediaKind.AUDIO, ("m4a", "m4b"))
WEBM_AUDIO = MediaType("audio/webm", MediaKind.AUDIO, ("weba", "webm"))
MP4 = MediaType("video/mp4", MediaKind.VIDEO, ("mp4", "m4v"))
WEBM = MediaType("video/webm", MediaKind.VIDEO, ("webm",))

ALL_TYPES = (
    JPEG, PNG, GIF, WEBP, PDF, TEXT, CSV, ZIP, DOCX, XLSX, PPTX, ODT, ODS, ODP,
    OGG, MP3, M4A, WEBM_AUDIO, MP4, WEBM,
)  # fmt: skip

HEAD_BYTES = 4096
# Text is checked in pieces of this size, so a 25 MB file never sits in memory at once.
TEXT_CHUNK = 256 * 1024
# A ZIP with more entries than this is not opened further: it is a plain ZIP.
MAX_ZIP_ENTRIES_INSPECTED = 10_000

_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_MP4_VIDEO_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
    b"avc1", b"M4V ", b"M4VH", b"M4VP", b"dash", b"mmp4", b"MSNV",
}  # fmt: skip
_ODF_TYPES = {ODT.content_type: ODT, ODS.content_type: ODS, ODP.content_type: ODP}

# Formats refused with a specific reason (clearer errors; the default refusal is generic).
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE
    b"\x7fELF",  # Linux / BSD
    b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",  # Mach-O
    b"\xca\xfe\xba\xbe",  # Mach-O universal / Java class
)  # fmt: skip

# Markup a browser could render as a page (HTML, SVG, XML). Text that starts with a tag, or
# mentions one of these anywhere in its head, is refused: served as text/plain with nosniff
# it would be harmless, but it is never what a "text file" attachment is for.
_LEADING_TAG = re.compile(rb"^\s*<\s*[!?a-zA-Z]")
_MARKUP_ANYWHERE = re.compile(
    rb"<\s*(!doctype\s+html|html|head|body|script|svg|iframe|object|embed|xml|\?xml)[\s/>]",
    re.IGNORECASE,
)


class Refusal(StrEnum):
    UNKNOWN = "an unsupported file type"
    EXECUTABLE = "an executable or script"
    MARKUP = "HTML, SVG or XML markup"


@dataclass(frozen=True, slots=True)
class Sniffed:
    media_type: MediaType | None
    refusal: Refusal | None = None


def sniff_head(head: bytes) -> MediaType | None:
    """A best guess from the first bytes alone (binary formats; text and ZIP-based formats
    need the whole file). Used to choose the size limit while the upload streams."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"OggS"):
        return OGG
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_AUDIO_BRANDS:
            return M4A
        if brand in _MP4_VIDEO_BRANDS:
            return MP4
        return None
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_webm(head)
    if head.startswith(b"ID3") or _is_mp3_frame(head):
        return MP3
    return None


def sniff_file(path: Path, *, name_hint: str = "") -> Sniffed:
    """The file's type, or why it is refused. ``name_hint`` (the client's file name) only
    tells CSV from other text — both are text/* documents served as downloads."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        return Sniffed(None, Refusal.UNKNOWN)
    found = sniff_head(head)
    if found is WEBM:  # the head may end before the tracks: look further to tell audio
        with path.open("rb") as handle:
            found = _sniff_webm(handle.read(1024 * 1024))
    if found is not None:
        return Sniffed(found)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        zipped = _sniff_zip(path)
        return Sniffed(zipped) if zipped else Sniffed(None, Refusal.UNKNOWN)
    text_head = head.removeprefix(b"\xef\xbb\xbf")
    if _LEADING_TAG.match(text_head) or _MARKUP_ANYWHERE.search(head):
        return Sniffed(None, Refusal.MARKUP)
    if text_head.startswith(b"#!"):  # a script, whatever its name says
        return Sniffed(None, Refusal.EXECUTABLE)
    if _is_utf8_text(path):
        return Sniffed(CSV if name_hint.lower().endswith(".csv") else TEXT)
    if head.startswith(_EXECUTABLE_MAGIC):
        return Sniffed(None, Refusal.EXECUTABLE)
    return Sniffed(None, Refusal.UNKNOWN)


def _is_mp3_frame(head: bytes) -> bool:
    """An MPEG audio layer III frame header: 11 sync bits, a valid version, layer III, a
    valid bitrate and sample rate. (Other layers and AAC are not accepted.)"""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in (0, 0xF) and sample_rate != 0b11


# DocType (ID 0x4282), its size as an EBML variable-length integer, then the name.
_EBML_DOCTYPE = re.compile(rb"\x42\x82[\x01-\xff]{1,8}?webm", re.DOTALL)
_CLUSTER_ID = b"\x1f\x43\xb6\x75"


def _sniff_webm(data: bytes) -> MediaType | None:
    """WebM is EBML with DocType "webm" (Matroska ``.mkv`` is refused). A TrackType element
    (0x83) with value 1 means a video track; only audio tracks (2) means audio/webm."""
    if not _EBML_DOCTYPE.search(data[:64]):
        return None
    tracks = data.split(_CLUSTER_ID, 1)[0]  # track headers come before the first cluster
    if b"\x83\x81\x01" in tracks:
        return WEBM
    if b"\x83\x81\x02" in tracks:
        return WEBM_AUDIO
    return WEBM


def _sniff_zip(path: Path) -> MediaType | None:
    """OOXML by ``[Content_Types].xml`` and its part folders; ODF by its ``mimetype`` entry
    (stored first and uncompressed, as the ODF spec requires); else a plain ZIP."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES_INSPECTED:
                return ZIP
            names = {info.filename for info in infos}
            if "[Content_Types].xml" in names:
                for prefix, media_type in (("word/", DOCX), ("xl/", XLSX), ("ppt/", PPTX)):
                    if any(name.startswith(prefix) for name in names):
                        return media_type
            if infos and infos[0].filename == "mimetype" and infos[0].file_size < 100:
                declared = archive.read(infos[0]).decode("ascii", "replace").strip()
                if declared in _ODF_TYPES:
                    return _ODF_TYPES[declared]
            return ZIP
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        return None


def _is_utf8_text(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        while chunk := handle.read(TEXT_CHUNK):
            if b"\x00" in chunk:
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
