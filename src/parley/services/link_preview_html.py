"""What a web page says about itself, for a link preview: Open Graph first (``og:title``,
``og:description``, ``og:image``, ``og:site_name``), then Twitter cards, then the plain
``<title>`` and ``<meta name="description">``.

Parsed with the standard library's ``html.parser`` (a tolerant tokenizer: broken markup
yields what it can, never an exception), reading only until ``<body>`` content would start
to matter — the head is where these tags live. Also: the first ``http(s)`` link of a
message's text, the one a preview is made for.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from parley.services.markup import CODE_SPANS

MAX_TITLE_CHARS = 300
MAX_DESCRIPTION_CHARS = 600
MAX_SITE_NAME_CHARS = 100
MAX_URL_CHARS = 2048

# As the web client's autolinks (markdown.js): http(s) at a word start, up to whitespace,
# quotes, angle brackets or backticks; trailing punctuation is not part of it.
_URL = re.compile(r"(?<![\w@/])https?://[^\s<>\"`]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*_~"
_SPACES = re.compile(r"\s+")


def first_link(content: str) -> str | None:
    """The first http(s) URL written in ``content`` outside code, or None."""
    if "://" not in content:  # most messages: no regex at all
        return None
    for match in _URL.finditer(CODE_SPANS.sub(" ", content)):
        url = _trim(match.group(0))
        if len(url) <= MAX_URL_CHARS and urlsplit(url).hostname:
            return url
    return None


def _trim(url: str) -> str:
    end = len(url)
    while end > 0:
        ch = url[end - 1]
        if ch in _TRAILING:
            end -= 1
        elif ch == ")" and "(" not in url[:end]:
            end -= 1
        elif ch == "]" and "[" not in url[:end]:
            end -= 1
        else:
            break
    return url[:end]


@dataclass(frozen=True, slots=True)
class PageSummary:
    title: str | None
    description: str | None
    site_name: str | None
    image_url: str | None  # absolute, http(s) only

    @property
    def empty(self) -> bool:
        return not (self.title or self.description)


class _HeadReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title_parts: list[str] = []
        self._in_title = False
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "meta":
            values = {name.lower(): value or "" for name, value in attrs}
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key and "content" in values and key not in self.meta:
                self.meta[key] = values["content"]
        elif tag == "title":
            self._in_title = True
        elif tag == "body":
            self.done = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "head":
            self.done = True

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.done:
            self.title_parts.append(data)


def _clean(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = _SPACES.sub(" ", html.unescape(value)).strip()
    text = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summarise(document: str, page_url: str) -> PageSummary:
    """Title, description, site name and picture of the page at ``page_url``."""
    reader = _HeadReader()
    reader.feed(document)
    reader.close()
    meta = reader.meta

    def first(*keys: str) -> str | None:
        for key in keys:
            if meta.get(key, "").strip():
                return meta[key]
        return None

    title = first("og:title", "twitter:title") or "".join(reader.title_parts) or None
    image = first("og:image:secure_url", "og:image", "og:image:url", "twitter:image", "twitter:image:src")
    image_url = None
    if image:
        joined = urljoin(page_url, image.strip())
        if urlsplit(joined).scheme in ("http", "https") and len(joined) <= MAX_URL_CHARS:
            image_url = joined
    site = first("og:site_name") or urlsplit(page_url).hostname
    return PageSummary(
        title=_clean(title, MAX_TITLE_CHARS),
        description=_clean(first("og:description", "twitter:description", "description"), MAX_DESCRIPTION_CHARS),
        site_name=_clean(site, MAX_SITE_NAME_CHARS),
        image_url=image_url,
    )
