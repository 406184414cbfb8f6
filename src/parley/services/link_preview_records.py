"""Link previews as messages carry them: the payload, its signed picture URL, and the read
``message_records`` makes for a page of messages. (The fetching and caching:
``link_previews``.)

Payload: ``{"id", "url", "title", "description", "site_name", "image": {"url", "width",
"height"} | null}``. The picture URL is signed like attachment URLs (same signer, its own
"variant" namespace), so ``<img src>`` works without a header and only for a while.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, Row, select

from parley.services.attachment_urls import AttachmentUrls
from parley.store.one_of import one_of
from parley.store.tables.media import link_previews, message_link_previews

IMAGE_PATH = "/api/v1/link-previews"
# The signed URL's "variant": the same signer as attachment URLs, another namespace.
IMAGE_VARIANT = "link-preview"
OK = "ok"


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def image_url(urls: AttachmentUrls | None, preview_id: str) -> str:
    if urls is None:
        return f"{IMAGE_PATH}/{preview_id}/image"
    expires = urls.expiry()
    query = urlencode({"exp": expires, "sig": urls.signature(preview_id, IMAGE_VARIANT, expires)})
    return f"{IMAGE_PATH}/{preview_id}/image?{query}"


def preview_payload(row: Row[Any], urls: AttachmentUrls | None) -> dict[str, Any]:
    image = None
    if row.image_key:
        image = {"url": image_url(urls, row.id), "width": row.image_width, "height": row.image_height}
    return {
        "id": row.id,
        "url": row.url,
        "title": row.title,
        "description": row.description,
        "site_name": row.site_name,
        "image": image,
    }


_SHOWN_PREVIEWS = (  # built once: see message_records' lookups
    select(message_link_previews.c.message_id, link_previews)
    .join(link_previews, link_previews.c.id == message_link_previews.c.preview_id)
    .where(one_of(message_link_previews.c.message_id, "ids"), link_previews.c.status == OK)
)


def read_link_previews(
    conn: Connection, message_ids: Sequence[str], urls: AttachmentUrls | None
) -> dict[str, dict[str, Any]]:
    """The preview of each of these messages that has one (``message_records`` adds it to
    the payload). Synchronous: runs inside ``read_messages``."""
    if not message_ids:
        return {}
    rows = conn.execute(_SHOWN_PREVIEWS, {"ids": list(message_ids)})
    return {row.message_id: preview_payload(row, urls) for row in rows}
