"""Profile and group pictures (``services.avatars``): ``PUT|DELETE /api/v1/users/me/avatar``
and ``/api/v1/conversations/{id}/avatar`` (a group's admins), and the public, immutable
``GET /api/v1/avatars/{user_id}/{avatar_key}/{size}`` and
``GET /api/v1/group-avatars/{conversation_id}/{avatar_key}/{size}``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from parley.api.deps import Caller, Services
from parley.api.ports import ApiServices
from parley.api.upload_stream import FilePart, receive_file
from parley.api.uploads import DOWNLOAD_CSP, UPLOAD_BODY_SCHEMA
from parley.errors import NotFound
from parley.fields import Id
from parley.media.blobstore import BlobNotFound, BlobStream
from parley.services.avatars import CONTENT_TYPE
from parley.services.upload_sink import ReceivedFile

router = APIRouter(prefix="/api/v1", tags=["users"])
T = TypeVar("T")

# The key changes with every new picture: a URL's content never changes.
IMMUTABLE = "public, max-age=31536000, immutable"


async def receive_picture(
    request: Request, services: ApiServices, store: Callable[[ReceivedFile, FilePart], Awaitable[T]]
) -> T | None:
    """Receive a picture upload (multipart field ``file``) into a sink and ``store`` it;
    None when the client went away mid-upload (answer 400)."""
    async with services.uploads.open_sink() as sink:
        try:
            part = await receive_file(request.stream(), request.headers.get("content-type", ""), sink)
        except ClientDisconnect:
            return None
        return await store(await sink.finish(), part)


@router.put("/users/me/avatar", openapi_extra=UPLOAD_BODY_SCHEMA)
async def set_avatar(request: Request, caller: Caller, services: Services) -> Response:
    """A new profile picture (multipart field ``file``: JPEG, PNG, GIF or WebP), cropped to
    a square; ``{user}`` with its ``avatar`` URLs. Everyone who knows the user gets
    ``user.updated``."""
    user = await receive_picture(
        request,
        services,
        lambda received, part: services.avatars.set_for_user(
            caller.user_id, received, filename=part.filename, declared_type=part.declared_type
        ),
    )
    if user is None:
        return Response(status_code=400)
    return JSONResponse({"user": user.to_private()})


@router.delete("/users/me/avatar")
async def remove_avatar(caller: Caller, services: Services) -> dict[str, Any]:
    """Back to initials."""
    user = await services.avatars.remove_for_user(caller.user_id)
    return {"user": user.to_private()}


@router.put("/conversations/{conversation_id}/avatar", openapi_extra=UPLOAD_BODY_SCHEMA)
async def set_group_avatar(
    conversation_id: Id, request: Request, caller: Caller, services: Services
) -> Response:
    """A group's new picture (its owner and admins; multipart field ``file``), cropped to
    a square; ``{conversation}`` with its ``avatar`` URLs. Members get
    ``conversation.updated``."""
    async def store(received: ReceivedFile, part: FilePart) -> bool:
        await services.avatars.set_for_group(
            caller.user_id, conversation_id, received, filename=part.filename, declared_type=part.declared_type
        )
        return True

    if await receive_picture(request, services, store) is None:
        return Response(status_code=400)
    view = await services.conversations.get(caller.user_id, conversation_id)
    return JSONResponse({"conversation": view.to_public()})


@router.delete("/conversations/{conversation_id}/avatar")
async def remove_group_avatar(conversation_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """Back to the initial."""
    await services.avatars.remove_for_group(caller.user_id, conversation_id)
    view = await services.conversations.get(caller.user_id, conversation_id)
    return {"conversation": view.to_public()}


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
    return _picture(stream)


@router.get("/group-avatars/{conversation_id}/{avatar_key}/{size}", response_class=Response)
async def group_avatar(
    conversation_id: Id,
    avatar_key: Annotated[str, Path(max_length=32)],
    size: Annotated[int, Path(ge=1, le=4096)],
    services: Services,
) -> Response:
    """A group's picture (WebP, ``size`` 64 or 256), public like a profile picture."""
    try:
        stream = await services.avatars.open_group(conversation_id, avatar_key, size)
    except BlobNotFound:
        raise NotFound("No such picture") from None
    return _picture(stream)


def _picture(stream: BlobStream) -> Response:
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
