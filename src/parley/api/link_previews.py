"""``/api/v1/link-previews``: the picture of a link preview, served by Parley so readers'
browsers never fetch it from the linked site (``services.link_previews``).

Authorised by the signed URL the message payload carries (as attachments' ``<img src>``) —
a wrong or expired signature is 403 (``URL_SIGNATURE_INVALID`` / ``URL_EXPIRED``) — or by
the bearer token of a member of a conversation where a message shows the preview. Anyone
else, and a preview without a picture, get 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from parley.api.byte_ranges import etag_matches
from parley.api.deps import Services, current_principal
from parley.errors import NotFound
from parley.media.blobstore import BlobNotFound, read_all

router = APIRouter(tags=["attachments"])

CACHE_CONTROL = "private, max-age=3600"
IMAGE_CSP = "default-src 'none'; img-src 'self'; sandbox"


@router.get(
    "/api/v1/link-previews/{preview_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
)
async def preview_image(
    preview_id: str,
    request: Request,
    services: Services,
    exp: Annotated[str | None, Query(max_length=20)] = None,
    sig: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The preview picture (WebP, re-encoded by Parley): a signed URL, or a member's token."""
    user_id = None if exp is not None or sig is not None else (await current_principal(request)).user_id
    row = await services.link_previews.open_image(
        preview_id, urls=services.attachments.urls, expires=exp, signature=sig, user_id=user_id
    )
    etag = f'"{row.image_key.rsplit("-", 1)[-1].removesuffix(".webp")}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": IMAGE_CSP,
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    try:
        body = await read_all(services.blobs, row.image_key)
    except BlobNotFound:
        raise NotFound("No such preview image") from None
    return Response(body, media_type="image/webp", headers=headers)
