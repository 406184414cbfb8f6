"""File names that are safe to show, store and put in a ``Content-Disposition`` header.

A client's file name is display text, never a path: directories are dropped (both ``/`` and
``\\``), control and bidirectional-formatting characters removed (``U+202E`` can make
``gpj.exe`` look like ``exe.jpg``), characters that are special in headers or on common file
systems replaced, the length capped, and the extension made to match the sniffed type, so
the saved file opens as what it really is. The storage key never uses the name.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from parley.media.sniff import MediaType

MAX_NAME_CHARS = 200
MAX_EXTENSION_CHARS = 16
FALLBACK_STEM = "file"
# Text may keep its own extension (notes.md, app.log) unless it would open as something
# active — a page, a script, a shortcut — once saved to disk.
_ACTIVE_EXTENSIONS = frozenset(
    "htm html xhtml shtml mht mhtml svg svgz xml xsl xslt js mjs cjs jsx ts vbs vbe wsf wsh hta "
    "ps1 psm1 bat cmd com exe scr msi msc lnk url desktop sh bash zsh command app jar reg "
    "php phtml jsp asp aspx swf pdf".split()
)
_RESERVED_WINDOWS = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(1, 10)] + [f"lpt{i}" for i in range(1, 10)]
)
_UNSAFE = re.compile(r'["*:<>?|\x7f]')
_SPACES = re.compile(r"\s+")


def clean_name(raw: str | None) -> str:
    """The client's name made safe, extension untouched (may be empty)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co"})
    name = _UNSAFE.sub("_", name)
    name = _SPACES.sub(" ", name).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if stem.lower() in _RESERVED_WINDOWS:
        stem = f"_{stem}"
    if len(extension) > MAX_EXTENSION_CHARS:
        stem, extension = f"{stem}.{extension}" if stem else extension, ""
    room = MAX_NAME_CHARS - (len(extension) + 1 if extension else 0)
    stem = stem[:room].rstrip(" .")
    if not stem:
        return ""
    return f"{stem}.{extension}" if extension else stem


def safe_name(raw: str | None, media_type: MediaType) -> str:
    """The display / download name for a file sniffed as ``media_type``."""
    name = clean_name(raw) or f"{FALLBACK_STEM}.{media_type.extensions[0]}"
    stem, dot, extension = name.rpartition(".")
    extension = extension.lower() if dot else ""
    if media_type.is_text:
        acceptable = bool(extension) and extension not in _ACTIVE_EXTENSIONS
        if media_type.extensions[0] == "csv":
            acceptable = extension == "csv"
    else:
        acceptable = extension in media_type.extensions
    if acceptable:
        return name
    name = name[: MAX_NAME_CHARS - MAX_EXTENSION_CHARS - 1].rstrip(" .")
    return f"{name}.{media_type.extensions[0]}"


def content_disposition(disposition: str, name: str) -> str:
    """``inline`` / ``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F else "_" for ch in name)
    fallback = fallback.replace("\\", "_").replace('"', "_") or FALLBACK_STEM
    encoded = quote(name, safe="")
    if encoded == name:
        return f'{disposition}; filename="{name}"'
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
