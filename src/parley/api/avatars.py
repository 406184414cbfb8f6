"""Profile pictures (``services.avatars``): ``PUT|DELETE /api/v1/users/me/avatar`` and the
public, immutable ``GET /api/v1/avatars/{user_id}/{avatar_key}/{size}``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from parley.api.deps import Caller, Services
from parley.api.upload_stream import receive_file
from parley.api.uploads import DOWNLOAD_CSP, UPLOAD_BODY_SCHEMA
from parley.errors import NotFound
from parley.fields import Id
from parley.media.blobstore import BlobNotFound
from parley.services.avatars import CONTENT_TYPE

router = APIRouter(prefix="/api/v1", tags=["users"])

# The key changes with every new picture: a URL's content never changes.
IMMUTABLE = "public, max-age=31536000, immutable"


@router.put("/users/me/avatar", openapi_extra=UPLOAD_BODY_SCHEMA)
async def set_avatar(request: Request, caller: Caller, services: Services) -> Response:
    """A new profile picture (multipart field ``file``: JPEG, PNG, GIF or WebP), cropped to
    a square; ``{user}`` with its ``avatar`` URLs. Everyone who knows the user gets
    ``user.updated``."""
    async with services.uploads.open_sink() as sink:
        try:
            part = await receive_file(request.stream(), request.headers.get("content-type", ""), sink)
        except ClientDisconnect:
            return Response(status_code=400)
        received = await sink.finish()
        user = await services.avatars.set_for_user(
            caller.user_id, received, filename=part.filename, declared_type=part.declared_type
        )
    return JSONResponse({"user": user.to_private()})


@router.delete("/users/me/avatar")
async def remove_avatar(caller: Caller, services: Services) -> dict[str, Any]:
    """Back to initials."""
    user = await services.avatars.remove_for_user(caller.user_id)
    return {"user": user.to_private()}


@router.get("/avatars/{user_id}/{avatar_key}/{size}", response_class=Response)
async def avatar(
    user_id: Id,
    avatar_key: Annotated[str, Path(max_length=32)],
    size: Annotated[int, Path(ge=1, le=4096)],
    services: Services,
) -> Response:
    """The picture (WebP, ``size`` 64 or 256), public: its URL is unguessable and changes
    with every new picture. 404 once replaced or removed."""
    try:
        stream = await services.avatars.open(user_id, avatar_key, size)
    except BlobNotFound:
        raise NotFound("No such picture") from None

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    headers = {
        "Cache-Control": IMMUTABLE,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP,
        "Content-Length": str(stream.size),
    }
    return StreamingResponse(body(), headers=headers, media_type=CONTENT_TYPE)
