"""``/api/v1/uploads`` and ``/api/v1/attachments``: upload a file, describe it, download it.

Downloads (issue #6):
- authorised by a signed URL (``?exp=&sig=``, what message payloads carry) or a member's
  bearer token; anyone else gets 404;
- ``Content-Type`` from the sniffed type, ``X-Content-Type-Options: nosniff``, a sandboxing
  CSP, and ``Content-Disposition: attachment`` for everything but raster images, audio and
  video (SVG and HTML are never accepted at all);
- ``ETag`` (the variant's SHA-256) with ``304`` on ``If-None-Match``; private caching;
- single byte ranges (``206`` / ``416``) for audio and video, streamed from the BlobStore
  (local file or S3 ranged GET), so seeking in a video never reads the whole file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from parley.api.byte_ranges import ByteRange, etag_matches, requested_range
from parley.api.deps import Caller, Services, current_principal
from parley.api.errors import error_response
from parley.api.upload_stream import receive_file
from parley.errors import E2eeDisabled, NotFound
from parley.fields import Id
from parley.ids import looks_like_id
from parley.media.blobstore import BlobNotFound, BlobStore
from parley.media.names import content_disposition
from parley.services.attachment_errors import RangeNotSatisfiable
from parley.services.attachment_gallery import DEFAULT_LIMIT as DEFAULT_GALLERY_LIMIT
from parley.services.attachment_gallery import MAX_LIMIT as MAX_GALLERY_LIMIT
from parley.services.attachments import ATTACHMENT_NOT_FOUND, Download

router = APIRouter(tags=["attachments"])

# Downloads never run as a page: no scripts, no plugins, no forms, even if opened directly.
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
CACHE_CONTROL = "private, max-age=3600"
UPLOAD_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post("/api/v1/uploads", status_code=201, openapi_extra=UPLOAD_BODY_SCHEMA)
async def upload(
    request: Request,
    caller: Caller,
    services: Services,
    encrypted: Annotated[bool, Query()] = False,
) -> Response:
    """Upload one file (multipart field ``file``). 201 ``{attachment}``: an upload of yours
    until a message lists it in ``attachment_ids``; removed after a day if none does.
    ``?encrypted=true``: an opaque client-encrypted blob for an encrypted conversation
    (DESIGN §6.1), stored as sent (size limit kept; no sniffing, no thumbnails)."""
    uploads = services.uploads
    if encrypted and services.settings.e2ee == "off":
        raise E2eeDisabled()
    async with uploads.open_sink() as sink:
        try:
            part = await receive_file(
                request.stream(), request.headers.get("content-type", ""), sink
            )
        except ClientDisconnect:  # the client gave up: nobody to answer, nothing kept
            return Response(status_code=400)
        received = await sink.finish()
        attachment = await uploads.create(
            caller.user_id,
            received,
            filename=part.filename,
            declared_type=part.declared_type,
            encrypted=encrypted,
        )
    return JSONResponse({"attachment": attachment}, status_code=201)


@router.get("/api/v1/conversations/{conversation_id}/attachments")
async def conversation_attachments(
    conversation_id: str,
    caller: Caller,
    services: Services,
    kind: Annotated[Literal["image", "file"] | None, Query()] = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_GALLERY_LIMIT)] = DEFAULT_GALLERY_LIMIT,
) -> dict[str, Any]:
    """The conversation's files and media, newest first: ``kind=image`` (pictures and
    videos) or ``kind=file`` (documents and audio), or both; ``before`` = the previous
    page's ``next_before``. Members only."""
    page = await services.attachments.gallery(
        caller.user_id, conversation_id, kind=kind, before=before, limit=limit
    )
    return page.to_public()


@router.get("/api/v1/attachments/{attachment_id}")
async def describe(attachment_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """The attachment with fresh signed URLs (when the ones a client holds have expired)."""
    return {"attachment": await services.attachments.describe(caller.user_id, attachment_id)}


@router.get("/api/v1/attachments/{attachment_id}/{variant}", response_model=None)
async def download(
    attachment_id: str,  # checked after authentication: anonymous callers learn nothing
    variant: str,
    request: Request,
    services: Services,
    exp: Annotated[str | None, Query(max_length=20)] = None,
    sig: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The file. ``variant``: ``original``, or ``thumb320`` / ``thumb1280`` for images."""
    if exp is None and sig is None:
        caller = await current_principal(request)
        if not looks_like_id(attachment_id):
            raise NotFound(ATTACHMENT_NOT_FOUND)
        target = await services.attachments.open_download(
            attachment_id, variant, user_id=caller.user_id
        )
    else:
        if not looks_like_id(attachment_id):
            raise NotFound(ATTACHMENT_NOT_FOUND)
        target = await services.attachments.open_download(
            attachment_id, variant, expires=exp, signature=sig
        )
    return await _file_response(request, services.attachments.store, target)


async def _file_response(request: Request, store: BlobStore, target: Download) -> Response:
    variant = target.variant
    etag = f'"{variant.sha256[:32]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Content-Disposition": content_disposition(
            "inline" if target.inline else "attachment", _download_name(target)
        ),
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    media = target.record.kind in {"audio", "video"}
    byte_range: ByteRange | None = None
    if media:
        headers["Accept-Ranges"] = "bytes"
        try:
            byte_range = requested_range(
                request.headers.get("range"),
                variant.size,
                if_range=request.headers.get("if-range"),
                etag=etag,
            )
        except RangeNotSatisfiable as exc:
            response = error_response(request, exc)
            response.headers["Content-Range"] = f"bytes */{variant.size}"
            return response
    else:
        headers["Accept-Ranges"] = "none"
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, variant.size)
    try:
        stream = await store.open(variant.key, start=start, end=end)
    except BlobNotFound:  # the row outlived its files (being swept): gone all the same
        raise NotFound(ATTACHMENT_NOT_FOUND) from None
    headers["Content-Length"] = str(end - start)
    if byte_range is not None:
        headers["Content-Range"] = byte_range.content_range(variant.size)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    content_type = variant.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"  # sniffing proved it is UTF-8
    return StreamingResponse(
        body(), status_code=206 if byte_range else 200, headers=headers, media_type=content_type
    )


def _download_name(target: Download) -> str:
    """Thumbnails are WebP whatever the original was: name them so."""
    name = target.record.name
    if target.variant.name == "original":
        return name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem}-{target.variant.name}.webp"
