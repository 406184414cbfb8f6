"""Data lifecycle routes (DESIGN §6.4): retention settings and the legal hold, exports,
and erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.errors import NotFound
from parley.fields import Id
from parley.lifecycle.exports import EXPORT_NOT_FOUND
from parley.lifecycle.retention import MAX_RETENTION_DAYS
from parley.media.blobstore import BlobNotFound
from parley.media.names import content_disposition

router = APIRouter(prefix="/api/v1", tags=["lifecycle"])


class RetentionBody(RequestModel):
    # None: follow the site policy (PARLEY_RETENTION_DAYS).
    retention_days: int | None = Field(ge=1, le=MAX_RETENTION_DAYS)


class LegalHoldBody(RequestModel):
    legal_hold: bool


class EraseBody(RequestModel):
    password: str = Field(min_length=1, max_length=1000)
    # The second factor, for accounts that have one (DESIGN §6.3).
    code: str | None = Field(default=None, max_length=64)


# --- retention


@router.put("/conversations/{conversation_id}/retention")
async def set_retention(
    conversation_id: Id, body: RetentionBody, caller: Caller, services: Services
) -> dict[str, Any]:
    """A group's owner or admins set how long its messages are kept."""
    await services.retention.set_conversation_days(
        caller.user_id, conversation_id, body.retention_days
    )
    return {"conversation": (await services.conversations.get(caller.user_id, conversation_id)).to_public()}


@router.put("/conversations/{conversation_id}/legal-hold", status_code=204)
async def set_legal_hold(
    conversation_id: Id, body: LegalHoldBody, caller: Caller, services: Services
) -> Response:
    """Site administrators: suspend (or resume) retention deletes in a conversation."""
    await services.retention.set_legal_hold(caller.user_id, conversation_id, body.legal_hold)
    return Response(status_code=204)


# --- exports


@router.post("/users/me/export", status_code=202)
async def request_personal_export(caller: Caller, services: Services) -> JSONResponse:
    export = await services.exports.request(caller.user_id)
    return JSONResponse({"export": export}, status_code=202)


@router.post("/conversations/{conversation_id}/export", status_code=202)
async def request_conversation_export(
    conversation_id: Id, caller: Caller, services: Services
) -> JSONResponse:
    export = await services.exports.request(caller.user_id, conversation_id)
    return JSONResponse({"export": export}, status_code=202)


@router.get("/users/me/exports")
async def list_exports(caller: Caller, services: Services) -> dict[str, Any]:
    return {"exports": await services.exports.list_for(caller.user_id)}


@router.get("/users/me/exports/{export_id}")
async def get_export(export_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """The export; once ``ready`` its ``download_url`` is a signed, short-lived link."""
    return {"export": await services.exports.get(caller.user_id, export_id)}


@router.get("/exports/{export_id}/download", response_model=None)
async def download_export(
    export_id: Id,
    services: Services,
    exp: Annotated[str, Query(max_length=20)] = "",
    sig: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The ZIP, for whoever holds the signed link (no Authorization: a plain link works)."""
    key, name = await services.exports.open_download(export_id, exp, sig)
    try:
        stream = await services.exports.blobs.open(key)
    except BlobNotFound:
        raise NotFound(EXPORT_NOT_FOUND) from None

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    headers = {
        "Content-Length": str(stream.size),
        "Content-Disposition": content_disposition("attachment", name),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(body(), headers=headers, media_type="application/zip")


# --- erasure


@router.delete("/users/me", status_code=204)
async def erase_me(body: EraseBody, caller: Caller, services: Services) -> Response:
    """Erase the caller's account (docs/lifecycle.md "Erasure"). Needs the password."""
    await services.erasure.erase_self(caller.user_id, body.password)
    return Response(status_code=204)


@router.delete("/admin/users/{user_id}", status_code=204)
async def erase_user(user_id: Id, caller: Caller, services: Services) -> Response:
    """Site administrators erase an account."""
    await services.erasure.erase_by_admin(caller.user_id, user_id)
    return Response(status_code=204)
